// Command p2pctl inspects and steers a running p2pd through its control
// socket.
//
//	p2pctl [--socket PATH | --config FILE] [--json] status | peers | sessions | services | forwards | proxies | ping PEER [-c N] | reload | id | whois ADDR
//	       | invite | trust add NAME ID|INVITE [--allow SERVICE...] | trust rm NAME | pending
//
// It prints aligned tables for people and, with --json, the same data as JSON
// for programs. Exit codes: 0 ok, 1 runtime failure (no daemon, daemon
// error), 2 usage error (with a pointer to --help), a trust change the
// daemon refused, or a --config file that does not load.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/p2pd/p2pd/control"
	"github.com/p2pd/p2pd/internal/buildinfo"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// requestTimeout bounds one call to the daemon.
const requestTimeout = 30 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// app holds the global flags and the output streams of one run.
type app struct {
	socket string
	config string // --config: take the socket from this config file
	json   bool
	out    io.Writer
	errOut io.Writer
}

func (a *app) client() *control.Client { return control.NewClient(a.socket) }

// exitError carries an exit code with an error; errors without one are
// cobra's own (unknown command, bad flag, wrong arguments): usage errors.
type exitError struct {
	code int
	err  error
	// usage: the command line itself is wrong, and p2pctl points to
	// --help. A refused change or a config that does not load exits 2
	// too, but its message says what to fix.
	usage bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageError(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...), usage: true}
}

// refusal exits 2 without the pointer to --help: the daemon refused a
// change, or a config file does not load; err says why.
func refusal(err error) error { return &exitError{code: exitUsage, err: err} }

// action adapts a subcommand body to cobra, marking its errors as runtime
// failures unless they already carry an exit code.
func (a *app) action(fn func(ctx context.Context, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := fn(cmd.Context(), args)
		var ee *exitError
		if err != nil && !errors.As(err, &ee) {
			err = &exitError{code: exitFailure, err: err}
		}
		return err
	}
}

// run runs p2pctl with args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{out: stdout, errOut: stderr}
	root := newRoot(a)
	root.SetArgs(append([]string{}, args...)) // never nil: cobra would read os.Args
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code, usage := exitUsage, true // cobra's own errors are usage errors
	var ee *exitError
	if errors.As(err, &ee) {
		code, usage = ee.code, ee.usage
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "p2pctl: ") {
		msg = "p2pctl: " + msg
	}
	fmt.Fprintln(stderr, msg)
	if usage {
		fmt.Fprintln(stderr, "Run 'p2pctl --help' for usage.")
	}
	return code
}

func newRoot(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:           "p2pctl",
		Short:         "Inspect and steer a running p2pd",
		Long:          "p2pctl inspects and steers a running p2pd through its control socket.",
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(a.errOut)
			cmd.Usage()
			return usageError("missing subcommand")
		},
	}
	root.SetFlagErrorFunc(flagError)
	root.Version = buildinfo.Text("p2pctl")
	root.SetVersionTemplate("{{.Version}}")
	root.PersistentPreRunE = a.prepare
	root.PersistentFlags().StringVar(&a.socket, "socket", defaultSocket(os.Getenv),
		"control socket of the p2pd to talk to (env P2PD_NODE_CONTROL_SOCKET)")
	root.PersistentFlags().StringVar(&a.config, "config", "",
		"talk to the p2pd that runs this config file (its node.control_socket)")
	root.RegisterFlagCompletionFunc("config", completeTOML)
	root.AddCommand(versionCmd(a))
	root.PersistentFlags().BoolVar(&a.json, "json", false, "print JSON instead of tables")
	root.AddCommand(
		statusCmd(a), peersCmd(a), sessionsCmd(a), servicesCmd(a),
		forwardsCmd(a), proxiesCmd(a), flowsCmd(a), pingCmd(a), reloadCmd(a), idCmd(a), whoisCmd(a),
	)
	root.AddCommand(trustCmd(a), inviteCmd(a), pendingCmd(a)) // trust.go, invite.go, pending.go
	return root
}

// flagError says which flag value does not parse, and what the flag takes,
// instead of pflag's `invalid argument "abc" for "-c, --count" flag:
// strconv.ParseInt: parsing "abc": invalid syntax`. Other flag errors
// (unknown flag, missing value) are cobra's as they are. All are usage
// errors.
func flagError(cmd *cobra.Command, err error) error {
	var ive *pflag.InvalidValueError
	if !errors.As(err, &ive) {
		return err
	}
	f := ive.GetFlag()
	name := "--" + f.Name
	if f.Shorthand != "" {
		name = "-" + f.Shorthand + "/--" + f.Name
	}
	var what string
	switch typ := f.Value.Type(); {
	case errors.Is(err, strconv.ErrRange):
		what = "out of range"
	case strings.HasPrefix(typ, "int") || strings.HasPrefix(typ, "uint"):
		what = "not a whole number"
	case typ == "duration":
		what = "not a duration; write it like 500ms, 10s or 1m"
	case typ == "bool":
		what = "want true or false"
	default:
		what = ive.Unwrap().Error()
	}
	return usageError("%s: %s %q: %s", cmd.Name(), name, ive.GetValue(), what)
}
