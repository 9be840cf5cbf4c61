package main

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/p2pd/p2pd/control"
	"github.com/p2pd/p2pd/control/controltest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// clearEnv keeps the host's P2PD_* variables out of a test.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, e := range os.Environ() {
		if k, _, _ := strings.Cut(e, "="); strings.HasPrefix(k, "P2PD_") {
			t.Setenv(k, "")
			os.Unsetenv(k) // t.Setenv restores it
		}
	}
}

var versionRE = regexp.MustCompile(`^p2pctl \d+\.\d+\.\d+ \(protocol p2pd/1\)\n` +
	`commit: (unknown|[0-9a-f]{40}(-dirty)?)\n` +
	`go:     go1\.\d+\S* [a-z0-9]+/[a-z0-9]+\n$`)

func TestVersion(t *testing.T) {
	code, flagOut, errOut := p2pctl(t, "--version")
	if code != 0 || errOut != "" || !versionRE.MatchString(flagOut) {
		t.Fatalf("--version: exit %d, stdout %q, stderr %q; want the shape %s", code, flagOut, errOut, versionRE)
	}
	// No daemon is needed, and a socket that fails its checks does not matter.
	code, sub, errOut := p2pctl(t, "--socket", "/nonexistent/p2pd.sock", "version")
	if code != 0 || errOut != "" || sub != flagOut {
		t.Fatalf("version: exit %d, stdout %q, stderr %q; want what --version printed", code, sub, errOut)
	}
}

// pathBackend adds the path to the fixture's pongs, as p2pd reports it.
type pathBackend struct{ *controltest.Backend }

func (b pathBackend) Ping(ctx context.Context, peer string) (control.PingResult, error) {
	res, err := b.Backend.Ping(ctx, peer)
	if err == nil {
		res.Path, res.Carrier = "direct", "quic"
	}
	return res, err
}

// TestPingUntilDirect: with -c N, ping stops at the first pong over a
// direct path unless --until-direct=false.
func TestPingUntilDirect(t *testing.T) {
	sock := controltest.Serve(t, pathBackend{fixture()})
	out := mustRun(t, "--socket", sock, "ping", "db", "-c", "5", "-i", "0")
	if n := strings.Count(out, "pong from"); n != 1 || !strings.Contains(out, "1 sent, 1 received") {
		t.Fatalf("ping -c 5 on a direct path printed:\n%s\nwant one pong, then the summary", out)
	}
}

// TestPingNDJSON: `--json ping -c N` prints one compact JSON object per
// pong, one line each (NDJSON), with the path and the RTT.
func TestPingNDJSON(t *testing.T) {
	sock := controltest.Serve(t, pathBackend{fixture()})
	out := mustRun(t, "--socket", sock, "--json", "ping", "db", "-c", "3", "-i", "0", "--until-direct=false")
	golden := filepath.Join("testdata", "ping-json.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("--json ping -c 3 printed\n%s\nwant (%s)\n%s", out, golden, want)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want one per pong (3)", len(lines))
	}
	for _, l := range lines {
		var res control.PingResult
		if err := json.Unmarshal([]byte(l), &res); err != nil || res.Path != "direct" || res.RTTMillis != 1.234 {
			t.Errorf("line %q: %+v, %v", l, res, err)
		}
	}

	// For people: the path beside the address.
	out = mustRun(t, "--socket", sock, "ping", "db")
	if want := "pong from db (203.0.113.7:4242, direct) in 1.234ms\n"; out != want {
		t.Errorf("ping printed %q, want %q", out, want)
	}
}

func TestPingPath(t *testing.T) {
	for _, tt := range []struct {
		res  control.PingResult
		want string
	}{
		{control.PingResult{Remote: "192.0.2.1:4242"}, "192.0.2.1:4242"},
		{control.PingResult{Remote: "192.0.2.1:4242", Path: "direct", Carrier: "quic"}, "192.0.2.1:4242, direct"},
		{control.PingResult{Remote: "192.0.2.1:4242", Path: "direct", Carrier: "tcp"}, "192.0.2.1:4242, direct (tcp)"},
		{control.PingResult{Remote: "/ip4/192.0.2.1/udp/4001/quic-v1", Path: "direct", Carrier: "libp2p"}, "/ip4/192.0.2.1/udp/4001/quic-v1, direct (libp2p)"},
		{control.PingResult{Remote: "198.51.100.9:4242", Path: "relayed", Relay: "12D3KooWRelay"}, "relayed via 12D3KooWRelay"},
	} {
		if got := pingPath(tt.res); got != tt.want {
			t.Errorf("pingPath(%+v) = %q, want %q", tt.res, got, tt.want)
		}
	}
}

// TestConfigFlag: --config FILE talks to the daemon at that config's
// control_socket, a relative path taken from the file's directory.
func TestConfigFlag(t *testing.T) {
	clearEnv(t)
	sock := controltest.Serve(t, fixture())
	cfg := filepath.Join(filepath.Dir(sock), "p2pd.toml")
	if err := os.WriteFile(cfg, []byte("[node]\ncontrol_socket = \"p2pd.sock\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rowsMatch(t, mustRun(t, "--config", cfg, "status"), `^id: +12D3KooWSelf$`, `^socket: +`+regexp.QuoteMeta(sock)+`$`)
	if out := mustRun(t, "id", "--config", cfg); out != "12D3KooWSelf\n" {
		t.Errorf("id --config: %q", out)
	}

	// Giving both is a usage error, which points to --help; a config that
	// does not load is not: its message says what to fix.
	const help = "Run 'p2pctl --help' for usage.\n"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--config", cfg, "--socket", sock, "status"}, "p2pctl: --socket and --config both name the control socket; give one of them\n" + help},
		{[]string{"--config", filepath.Join(filepath.Dir(sock), "nope.toml"), "status"}, "; create it with `p2pd init --config " + filepath.Join(filepath.Dir(sock), "nope.toml") + "`\n"},
	} {
		code, out, errOut := p2pctl(t, c.args...)
		if code != 2 || out != "" || !strings.HasSuffix(errOut, c.want) {
			t.Errorf("p2pctl %q: exit %d, stdout %q, stderr %q; want exit 2 and stderr ending %q", c.args, code, out, errOut, c.want)
		}
	}
}

func TestStatusConfigAndHint(t *testing.T) {
	b := fixture()
	b.Node.Config = "/etc/p2pd/p2pd.toml"
	out := mustRun(t, "--socket", controltest.Serve(t, b), "status")
	rowsMatch(t, out, `^config: +/etc/p2pd/p2pd\.toml$`)
	if strings.Contains(out, "no peers yet") {
		t.Errorf("status of a node with peers gives the no-peers hint:\n%s", out)
	}

	lonely := &controltest.Backend{Node: control.Status{ID: "12D3KooWSelf", Name: "alpha"}}
	out = mustRun(t, "--socket", controltest.Serve(t, lonely), "status")
	rowsMatch(t, out, `^config: +defaults \(no config file\)$`, `^peers: +0 configured, 0 connected$`)
	if !strings.HasSuffix(out, "\nno peers yet: run `p2pd id` on the other host and add it with `p2pctl trust add NAME ID`\n") {
		t.Errorf("status of a node without peers does not end with the next step:\n%s", out)
	}
}

// TestCompletion: shell completion asks the running daemon for peer names;
// with no daemon it completes nothing and says nothing.
func TestCompletion(t *testing.T) {
	clearEnv(t)
	sock := controltest.Serve(t, fixture())
	complete := func(args ...string) (string, string) {
		t.Helper()
		code, out, errOut := p2pctl(t, append([]string{"__complete"}, args...)...)
		if code != 0 {
			t.Fatalf("__complete %q: exit %d, stderr %q", args, code, errOut)
		}
		return out, errOut
	}
	const noFiles = ":4\n" // cobra.ShellCompDirectiveNoFileComp
	if out, _ := complete("--socket", sock, "ping", ""); out != "db\tconnected\nweb1\tdisconnected\n"+noFiles {
		t.Errorf("ping <TAB>: %q", out)
	}
	if out, _ := complete("ping", "--socket", sock, "w"); out != "web1\tdisconnected\n"+noFiles {
		t.Errorf("ping w<TAB>: %q", out)
	}
	if out, _ := complete("--socket", sock, "ping", "db", ""); out != noFiles {
		t.Errorf("ping db <TAB>: %q, want nothing (one PEER only)", out)
	}
	cfg := filepath.Join(filepath.Dir(sock), "p2pd.toml")
	os.WriteFile(cfg, []byte("[node]\ncontrol_socket = \"p2pd.sock\"\n"), 0o600)
	if out, _ := complete("--config", cfg, "ping", "d"); out != "db\tconnected\n"+noFiles {
		t.Errorf("--config FILE ping d<TAB>: %q", out)
	}
	// No daemon: nothing, and no error for the shell to show.
	out, errOut := complete("--socket", controltest.SocketPath(t), "ping", "")
	if out != noFiles || errOut != "Completion ended with directive: ShellCompDirectiveNoFileComp\n" {
		t.Errorf("ping <TAB> without a daemon: stdout %q, stderr %q", out, errOut)
	}

	for shell, marker := range map[string]string{
		"bash": "__start_p2pctl", "zsh": "#compdef p2pctl", "fish": "complete -c p2pctl",
	} {
		code, out, errOut := p2pctl(t, "--socket", "/nonexistent/p2pd.sock", "completion", shell)
		if code != 0 || errOut != "" || !strings.Contains(out, marker) {
			t.Errorf("completion %s: exit %d, stderr %q, no %q in the script", shell, code, errOut, marker)
		}
	}
}

// TestPingFlagErrors: a ping flag that is wrong is named, with its value
// and what it takes; the others are not mentioned.
func TestPingFlagErrors(t *testing.T) {
	sock := controltest.Serve(t, fixture())
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--timeout", "60s"}, "p2pctl: ping: --timeout 1m0s: must be between 1ms and 50s\n"},
		{[]string{"--timeout", "0s"}, "p2pctl: ping: --timeout 0s: must be between 1ms and 50s\n"},
		{[]string{"-i", "-1s"}, "p2pctl: ping: -i/--interval -1s: must not be negative\n"},
		{[]string{"-c", "0"}, "p2pctl: ping: -c/--count 0: must be at least 1\n"},
		{[]string{"-c", "abc"}, "p2pctl: ping: -c/--count \"abc\": not a whole number\n"},
		{[]string{"--count=99999999999999999999"}, "p2pctl: ping: -c/--count \"99999999999999999999\": out of range\n"},
		{[]string{"--timeout", "5"}, "p2pctl: ping: --timeout \"5\": not a duration; write it like 500ms, 10s or 1m\n"},
		{[]string{"--until-direct=maybe"}, "p2pctl: ping: --until-direct \"maybe\": want true or false\n"},
	} {
		code, out, errOut := p2pctl(t, append([]string{"--socket", sock, "ping", "db"}, c.args...)...)
		if want := c.want + "Run 'p2pctl --help' for usage.\n"; code != 2 || out != "" || errOut != want {
			t.Errorf("ping %q: exit %d, stdout %q, stderr %q; want exit 2 and %q", c.args, code, out, errOut, want)
		}
	}
}
