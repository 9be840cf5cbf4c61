package main

import (
	"github.com/spf13/cobra"

	"github.com/p2pd/p2pd/config"
)

// offlineAnnotation marks a command that never talks to the daemon
// (version): no socket is looked up or checked for it.
const offlineAnnotation = "p2pctl/offline"

// prepare runs before every subcommand: it picks the control socket and
// checks it. Commands that need no daemon skip both; so does the hidden
// __complete, whose completion functions do the same quietly (see
// completion.go).
func (a *app) prepare(cmd *cobra.Command, _ []string) error {
	if offline(cmd) {
		return nil
	}
	if err := a.resolveSocket(cmd); err != nil {
		return err
	}
	return checkSocket(a.socket)
}

// offline reports whether cmd needs no daemon: version, help, cobra's
// completion scripts and its __complete requests.
func offline(cmd *cobra.Command) bool {
	for c := cmd; c != nil; c = c.Parent() {
		if c.Annotations[offlineAnnotation] != "" {
			return true
		}
		switch c.Name() {
		case "help", "completion", cobra.ShellCompRequestCmd, cobra.ShellCompNoDescRequestCmd:
			return true
		}
	}
	return false
}

// resolveSocket applies --config: the socket is that config's
// node.control_socket, a relative path taken from the config file's
// directory and P2PD_NODE_CONTROL_SOCKET applied, exactly as `p2pd run
// --config FILE` reads it. A config that does not load is a usage error
// (exit 2) with config's message, which names the file and the fix (and
// no pointer to --help: the command line is right).
func (a *app) resolveSocket(cmd *cobra.Command) error {
	if a.config == "" {
		return nil
	}
	if cmd.Flags().Changed("socket") {
		return usageError("--socket and --config both name the control socket; give one of them")
	}
	cfg, err := config.Load(a.config)
	if err != nil {
		return refusal(err)
	}
	a.socket = cfg.Node.ControlSocket
	return nil
}
