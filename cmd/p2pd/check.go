package main

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/p2pd/p2pd/config"
	"github.com/p2pd/p2pd/identity"
	"github.com/spf13/cobra"
)

// newCheckCmd is `p2pd check`: everything `p2pd run` checks before it opens
// a socket, and nothing more. Exit 0 and one "config OK" line, or the
// problems and exit 2. A unit's ExecStartPre or a deploy script can run it
// before a restart or a reload.
func newCheckCmd(configPath *string) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "check the config and the key file, as `p2pd run` would, and exit",
		Long: "check loads and validates the config and the key file (present, owned by this user,\n" +
			"mode 0600, a p2pd key) and checks that no [[peers]] entry holds this node's own ID.\n" +
			"It prints \"config OK: FILE (N peers, M services, K forwards)\" and exits 0, or\n" +
			"prints every problem and exits 2.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(*configPath)
			if err != nil {
				return err
			}
			for _, w := range cfg.Warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
			}
			key, err := readKey(cfg)
			switch {
			case errors.Is(err, fs.ErrNotExist) && cfg.Path == "":
				// On defaults `p2pd run` makes the key itself.
				fmt.Fprintf(cmd.ErrOrStderr(), "no key yet at %s; `p2pd run` will make it\n", cfg.Node.KeyFile)
			case err != nil:
				return err
			default:
				if err := checkOwnID(cfg, key.PeerID()); err != nil {
					return err
				}
			}
			file := cfg.Path
			if file == "" {
				file = "defaults (no config file)"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "config OK: %s (%s, %s, %s)\n", file,
				plural(len(cfg.Peers), "peer"), plural(len(cfg.Services), "service"), plural(len(cfg.Forwards), "forward"))
			return nil
		},
	}
}

// readKey loads the node's key without making one. A missing, unreadable
// or malformed key is a configuration error (exit 2) whose message names the
// file and the fix; a missing key's error also wraps fs.ErrNotExist.
func readKey(cfg *config.Config) (identity.PrivateKey, error) {
	key, err := identity.LoadKeyFile(cfg.Node.KeyFile)
	switch {
	case err == nil:
		return key, nil
	case errors.Is(err, fs.ErrNotExist):
		fix := "p2pd init"
		if cfg.Path != "" {
			fix += " --config " + cfg.Path
		}
		return identity.PrivateKey{}, usageError{fmt.Errorf("no key at %s (%w); make one with: %s", cfg.Node.KeyFile, fs.ErrNotExist, fix)}
	default:
		return identity.PrivateKey{}, keyFileError(err)
	}
}

// keyFileError makes a key file the user must fix (its mode, owner or
// content, or no permission to read it) a configuration error, exit 2.
func keyFileError(err error) error {
	if errors.Is(err, identity.ErrKeyFileMode) || errors.Is(err, identity.ErrKeyFileOwner) ||
		errors.Is(err, identity.ErrKeyFileFormat) || errors.Is(err, fs.ErrPermission) {
		return usageError{err}
	}
	return err
}

// checkOwnID refuses a config that lists this node's own ID as a peer: a
// node does not connect to itself, and the entry is always a copy-and-paste
// slip.
func checkOwnID(cfg *config.Config, self identity.PeerID) error {
	for i, p := range cfg.Peers {
		if p.ID == self {
			where := "config"
			if cfg.Path != "" {
				where += ": " + cfg.Path
			}
			return usageError{fmt.Errorf("%s: peers[%d] %q has this node's own peer ID %s; remove that entry, or give it the other host's ID (`p2pd id` there)",
				where, i, p.Name, self)}
		}
	}
	return nil
}

// plural formats a count and a noun: "1 peer", "2 peers".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
