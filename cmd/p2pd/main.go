// Command p2pd runs a p2pd node: `p2pd init`, `p2pd run` (plain `p2pd`
// does the same), `p2pd id`, `p2pd check` and `p2pd version`. Exit codes:
// 0 ok, 1 runtime failure, 2 usage or configuration error.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/p2pd/p2pd/internal/buildinfo"
	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitOK      = 0
	exitRuntime = 1
	exitUsage   = 2
)

// usageError marks errors that exit with code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func main() {
	// transport raises the UDP buffers itself and warns through the
	// daemon's log, with the fix, when it cannot; quic-go's own warning
	// (on the standard logger) would say it a second time.
	os.Setenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING", "true")
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs p2pd with args and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(append([]string{}, args...)) // never nil: cobra would read os.Args
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "p2pd:", err)
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitRuntime
}

func newRoot() *cobra.Command {
	var configPath string
	root := &cobra.Command{
		Use:           "p2pd",
		Short:         "p2pd: a peer-to-peer encrypted overlay for unmodified TCP clients",
		Args:          cobra.NoArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDaemon(cmd.Context(), configPath)
		},
	}
	root.Version = buildinfo.Text("p2pd")
	root.SetVersionTemplate("{{.Version}}")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.PersistentFlags().StringVar(&configPath, "config", "", "config file (default: $P2PD_CONFIG or the state directory's p2pd.toml)")
	root.RegisterFlagCompletionFunc("config", completeTOML)
	root.AddCommand(newInitCmd(&configPath), newRunCmd(&configPath), newIDCmd(&configPath),
		newCheckCmd(&configPath), newVersionCmd(), newInviteCmd(&configPath))
	for _, c := range root.Commands() {
		c.Args = wrapArgs(c.Args)
	}
	root.Args = wrapArgs(root.Args)
	return root
}

// wrapArgs makes argument-count errors usage errors (exit 2).
func wrapArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if check == nil {
			return nil
		}
		if err := check(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

func newRunCmd(configPath *string) *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "run the daemon",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDaemon(cmd.Context(), *configPath)
		},
	}
}
