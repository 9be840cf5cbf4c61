package main

import "github.com/spf13/cobra"

// Shell completion: cobra's `p2pd completion bash|zsh|fish|powershell`
// prints the script. p2pd's commands take no arguments; --config completes
// to .toml files.

// completeTOML completes --config with .toml files.
func completeTOML(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return []string{"toml"}, cobra.ShellCompDirectiveFilterFileExt
}
