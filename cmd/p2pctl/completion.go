package main

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/p2pd/p2pd/control"
)

// Shell completion: cobra's `p2pctl completion bash|zsh|fish|powershell`
// prints the script; the script asks `p2pctl __complete ARGS...` for
// candidates. Peer names come from the running daemon. With no
// daemon, a socket that fails its checks or a slow answer, nothing is
// completed and nothing is printed: a completion never shows an error.

// completionTimeout bounds one question to the daemon while the user waits
// at a prompt.
const completionTimeout = 2 * time.Second

// completionClient returns a client for the daemon that cmd's flags name
// (--socket or --config, parsed by now), or false when there is none to ask.
func (a *app) completionClient(cmd *cobra.Command) (*control.Client, bool) {
	if a.resolveSocket(cmd) != nil || control.CheckSocket(a.socket) != nil {
		return nil, false
	}
	return a.client(), true
}

// completePeers completes the first argument with the names of the
// daemon's peers, each described by its state.
func (a *app) completePeers(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	c, ok := a.completionClient(cmd)
	if !ok {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
	defer cancel()
	peers, err := c.Peers(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, p := range peers {
		if strings.HasPrefix(p.Name, toComplete) {
			out = append(out, p.Name+"\t"+p.State)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeTOML completes --config with .toml files.
func completeTOML(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return []string{"toml"}, cobra.ShellCompDirectiveFilterFileExt
}
