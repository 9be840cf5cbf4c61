package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/p2pd/p2pd/config"
	"github.com/p2pd/p2pd/identity"
	"github.com/spf13/cobra"
)

func newInitCmd(configPath *string) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "make this node's key, and a commented config if there is none; print the peer ID",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := *configPath
			if path == "" {
				path = config.DefaultPath()
			}
			_, err := os.Stat(path)
			existed := !errors.Is(err, fs.ErrNotExist)
			if !existed {
				if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
					return fmt.Errorf("init: %w", err)
				}
				if err := config.WriteInitial(path, name); err != nil {
					return usageError{err}
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", path)
			}
			cfg, err := loadConfig(path)
			if err != nil {
				return err
			}
			if existed && name != "" && cfg.Node.Name != name {
				return usageError{fmt.Errorf("init: %s already exists with name %q, not %q; edit node.name there, or choose another --config",
					cfg.Path, cfg.Node.Name, name)}
			}
			key, created, err := identity.LoadOrCreateKeyFile(cfg.Node.KeyFile)
			if err != nil {
				return keyFileError(err)
			}
			if created {
				fmt.Fprintf(cmd.ErrOrStderr(), "created key %s\n", cfg.Node.KeyFile)
			}
			fmt.Fprintln(cmd.OutOrStdout(), key.PeerID())
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "node name written into a new config (default: the host name)")
	return cmd
}

func newIDCmd(configPath *string) *cobra.Command {
	var base36 bool
	cmd := &cobra.Command{
		Use:   "id",
		Short: "print this node's peer ID",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, key, err := loadConfigAndKey(*configPath)
			if err != nil {
				return err
			}
			if base36 {
				fmt.Fprintln(cmd.OutOrStdout(), key.PeerID().Base36())
				return nil
			}
			fmt.Fprintln(cmd.OutOrStdout(), key.PeerID())
			return nil
		},
	}
	cmd.Flags().BoolVar(&base36, "base36", false, "print the ID as a base36 CIDv1 (k51…), the form for <service>.<peer>.p2p names")
	return cmd
}

// loadConfig loads and validates; every failure is a configuration error.
func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, usageError{err}
	}
	if err := cfg.Validate(); err != nil {
		return nil, usageError{err}
	}
	return cfg, nil
}

// loadConfigAndKey loads the config and the node's key, for the commands
// that need an existing key and make none.
func loadConfigAndKey(path string) (*config.Config, identity.PrivateKey, error) {
	cfg, err := loadConfig(path)
	if err != nil {
		return nil, identity.PrivateKey{}, err
	}
	key, err := readKey(cfg)
	return cfg, key, err
}
