package main

import (
	"bytes"
	"encoding/json"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/p2pd/p2pd/config"
	"github.com/p2pd/p2pd/identity"
)

// p2pdCmd runs the command line in-process and returns its exit code, stdout
// and stderr.
func p2pdCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// isolate clears every variable config.Load reads and points the XDG
// directories at fresh ones, so that the host's environment cannot leak into
// a test.
func isolate(t *testing.T) {
	t.Helper()
	for _, e := range os.Environ() {
		if k, _, _ := strings.Cut(e, "="); strings.HasPrefix(k, "P2PD_") {
			t.Setenv(k, "")
			os.Unsetenv(k) // t.Setenv restores it
		}
	}
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	t.Setenv("NOTIFY_SOCKET", "")
}

// shortDir is a fresh directory with a short path: Unix socket paths are
// limited to 107 bytes, which t.TempDir can exceed.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "p2pd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// nodeDir writes a config in a fresh directory, makes its key with
// `p2pd init` and returns the config's path and the node's peer ID.
func nodeDir(t *testing.T, extra string) (string, string) {
	t.Helper()
	dir := shortDir(t)
	path := filepath.Join(dir, "p2pd.toml")
	writeConfig(t, path, extra)
	code, out, errOut := p2pdCmd(t, "init", "--config", path)
	if code != 0 {
		t.Fatalf("p2pd init: exit %d, stderr %q", code, errOut)
	}
	return path, strings.TrimSpace(out)
}

func writeConfig(t *testing.T, path, extra string) {
	t.Helper()
	cfg := `[node]
name = "alpha"
key_file = "identity.key"
listen = ["127.0.0.1:0"]
control_socket = "p2pd.sock"

[discovery]
mdns = false
dht = false

[log]
level = "warn"
` + extra
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A real peer ID that is not any test node's.
const otherID = "12D3KooWGiyFz16HvwohCWjtg5XjjbzYAVJWtQyfLPvJuMjeerrR"

var versionRE = regexp.MustCompile(`^p2pd \d+\.\d+\.\d+ \(protocol p2pd/1\)\n` +
	`commit: (unknown|[0-9a-f]{40}(-dirty)?)\n` +
	`go:     go1\.\d+\S* [a-z0-9]+/[a-z0-9]+\n$`)

func TestVersion(t *testing.T) {
	code, flag, errOut := p2pdCmd(t, "--version")
	if code != 0 || errOut != "" || !versionRE.MatchString(flag) {
		t.Fatalf("--version: exit %d, stdout %q, stderr %q; want the shape %s", code, flag, errOut, versionRE)
	}
	code, sub, errOut := p2pdCmd(t, "version")
	if code != 0 || errOut != "" || sub != flag {
		t.Fatalf("version: exit %d, stdout %q, stderr %q; want what --version printed, %q", code, sub, errOut, flag)
	}
}

func TestCheck(t *testing.T) {
	isolate(t)
	path, id := nodeDir(t, `
[[peers]]
name = "db"
id = "`+otherID+`"

[[services]]
name = "ssh"
target = "127.0.0.1:22"
allow = ["db"]

[[forwards]]
listen = "15432"
peer = "db"
service = "postgres"
`)
	code, out, errOut := p2pdCmd(t, "check", "--config", path)
	if want := "config OK: " + path + " (1 peer, 1 service, 1 forward)\n"; code != 0 || out != want || errOut != "" {
		t.Fatalf("check of a good config: exit %d, stdout %q, stderr %q; want exit 0 and %q", code, out, errOut, want)
	}

	fail := func(name, wantErr string) {
		t.Helper()
		code, out, errOut := p2pdCmd(t, "check", "--config", path)
		if code != 2 || out != "" || !strings.Contains(errOut, wantErr) {
			t.Errorf("check, %s: exit %d, stdout %q, stderr %q; want exit 2 and %q", name, code, out, errOut, wantErr)
		}
	}
	key := filepath.Join(filepath.Dir(path), "identity.key")
	os.Chmod(key, 0o644)
	fail("key readable by others", "fix with: chmod 600 "+key)
	os.Chmod(key, 0o600)

	writeConfig(t, path, "[[peers]]\nname = \"self\"\nid = \""+id+"\"\n")
	fail("own ID in [[peers]]", `config: `+path+`: peers[0] "self" has this node's own peer ID `+id+`; remove that entry`)

	writeConfig(t, path, "[[peers]]\nname = \"db\"\nid = \"nope\"\nbogus = 1\n")
	fail("bad peer", `peers[0].id "nope"`)
	fail("unknown key", "peers[0].bogus")

	writeConfig(t, path, "")
	os.Remove(key)
	fail("no key", "p2pd: no key at "+key+" (file does not exist); make one with: p2pd init --config "+path+"\n")

	code, out, errOut = p2pdCmd(t, "check", "--config", filepath.Join(filepath.Dir(path), "missing.toml"))
	if code != 2 || out != "" || !strings.Contains(errOut, "p2pd init --config") {
		t.Errorf("check of a missing file: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	dir := filepath.Dir(path)
	code, out, errOut = p2pdCmd(t, "check", "--config", dir)
	want := "p2pd: config: " + dir + " is a directory, not a regular file; point --config at the config file in it, e.g. " + path + "\n"
	if code != 2 || out != "" || errOut != want {
		t.Errorf("check of a directory: exit %d, stdout %q, stderr %q; want exit 2 and %q", code, out, errOut, want)
	}
}

// TestCheckDefaults: without a config file there is nothing to get wrong,
// and no key yet is fine (`p2pd run` makes it).
func TestCheckDefaults(t *testing.T) {
	isolate(t)
	code, out, errOut := p2pdCmd(t, "check")
	if code != 0 || out != "config OK: defaults (no config file) (0 peers, 0 services, 0 forwards)\n" ||
		!strings.Contains(errOut, "`p2pd run` will make it") {
		t.Fatalf("check on defaults: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestInit(t *testing.T) {
	isolate(t)
	dir := shortDir(t)
	path := filepath.Join(dir, "p2pd.toml")
	code, id, errOut := p2pdCmd(t, "init", "--config", path, "--name", "db")
	if code != 0 || !strings.HasPrefix(id, "12D3KooW") {
		t.Fatalf("init: exit %d, stdout %q, stderr %q", code, id, errOut)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The README's configs say control_socket = "p2pd.sock", beside the file.
	if !regexp.MustCompile(`(?m)^control_socket = "p2pd.sock"`).Match(data) {
		t.Errorf("init wrote no uncommented control_socket = \"p2pd.sock\":\n%s", data)
	}
	cfg, err := config.Load(path)
	if err != nil || cfg.Node.ControlSocket != filepath.Join(dir, "p2pd.sock") {
		t.Fatalf("control socket of the new config: %v, %v", cfg, err)
	}

	// Again with the same name: the same key, nothing changed.
	if code, again, errOut := p2pdCmd(t, "init", "--config", path, "--name", "db"); code != 0 || again != id {
		t.Errorf("init again: exit %d, stdout %q (first %q), stderr %q", code, again, id, errOut)
	}
	if code, again, _ := p2pdCmd(t, "init", "--config", path); code != 0 || again != id {
		t.Errorf("init again without --name: exit %d, stdout %q", code, again)
	}
	// Another name: refused, naming the file and the name it has.
	code, out, errOut := p2pdCmd(t, "init", "--config", path, "--name", "web")
	want := "p2pd: init: " + path + ` already exists with name "db", not "web"; edit node.name there, or choose another --config` + "\n"
	if code != 2 || out != "" || errOut != want {
		t.Errorf("init --name web on db's config: exit %d, stdout %q, stderr %q; want exit 2 and %q", code, out, errOut, want)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, data) {
		t.Errorf("the refused init changed the config")
	}
}

func TestIDMissingKey(t *testing.T) {
	isolate(t)
	dir := shortDir(t)
	path := filepath.Join(dir, "p2pd.toml")
	writeConfig(t, path, "")
	code, out, errOut := p2pdCmd(t, "id", "--config", path)
	want := "p2pd: no key at " + filepath.Join(dir, "identity.key") + " (file does not exist); make one with: p2pd init --config " + path + "\n"
	if code != 2 || out != "" || errOut != want {
		t.Errorf("id without a key: exit %d, stdout %q, stderr %q; want exit 2 and %q", code, out, errOut, want)
	}
}

// TestRunOwnID: a [[peers]] entry with the node's own ID stops `p2pd run`
// before it opens any socket, with exit 2.
func TestRunOwnID(t *testing.T) {
	isolate(t)
	path, id := nodeDir(t, "")
	writeConfig(t, path, "[[peers]]\nname = \"me\"\nid = \""+id+"\"\n")
	code, _, errOut := p2pdCmd(t, "run", "--config", path)
	if code != 2 || !strings.Contains(errOut, `peers[0] "me" has this node's own peer ID `+id) {
		t.Errorf("run with its own ID as a peer: exit %d, stderr %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), "p2pd.sock")); !os.IsNotExist(err) {
		t.Errorf("the refused daemon made its control socket: %v", err)
	}
}

func TestKeyFileErrorsAreConfigErrors(t *testing.T) {
	isolate(t)
	path, _ := nodeDir(t, "")
	key := filepath.Join(filepath.Dir(path), "identity.key")
	if err := os.WriteFile(key, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"id", "init", "check", "run"} {
		code, _, errOut := p2pdCmd(t, cmd, "--config", path)
		if code != 2 || !strings.Contains(errOut, key) {
			t.Errorf("%s with a malformed key: exit %d, stderr %q; want exit 2 naming %s", cmd, code, errOut, key)
		}
	}
	if _, err := identity.LoadKeyFile(key); err == nil {
		t.Fatal("the test's malformed key loads")
	}
}

// TestLogConfig: `p2pd run` says which config it loaded, and the next step
// while no peer is trusted.
func TestLogConfig(t *testing.T) {
	logTo := func(cfg *config.Config) string {
		var buf bytes.Buffer
		noTime := func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
		logConfig(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: noTime})), cfg)
		return buf.String()
	}
	want := `level=INFO msg="config loaded" file="defaults (no config file)" peers=0 services=0 forwards=0` + "\n" +
		"level=INFO msg=\"no peers yet: run `p2pd id` on the other host and add it with `p2pctl trust add NAME ID`\"\n"
	if got := logTo(&config.Config{}); got != want {
		t.Errorf("on defaults without peers, logged\n%s\nwant\n%s", got, want)
	}
	want = `level=INFO msg="config loaded" file=/etc/p2pd/p2pd.toml peers=1 services=0 forwards=0` + "\n"
	if got := logTo(&config.Config{Path: "/etc/p2pd/p2pd.toml", Peers: []config.Peer{{Name: "db"}}}); got != want {
		t.Errorf("with a file and a peer, logged\n%s\nwant\n%s", got, want)
	}
}

// TestStdLogRouted: a library's line on the standard log package (the mDNS
// library's "[ERR] zeroconf: ...") comes out in the daemon's format.
func TestStdLogRouted(t *testing.T) {
	oldDefault, oldFlags := slog.Default(), log.Flags()
	t.Cleanup(func() {
		slog.SetDefault(oldDefault)
		log.SetOutput(os.Stderr)
		log.SetFlags(oldFlags)
	})
	var buf bytes.Buffer
	l := slog.New(slog.NewJSONHandler(&buf, nil))
	routeForeignLogs(l)
	log.Printf("[ERR] zeroconf: failed to join multicast group on %s", "eth0")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("std log line not in the daemon's JSON format: %q (%v)", buf.String(), err)
	}
	if rec["level"] != "WARN" || rec["msg"] != "[ERR] zeroconf: failed to join multicast group on eth0" {
		t.Errorf("std log line came out as %q", buf.String())
	}
}

func TestCompletion(t *testing.T) {
	for shell, marker := range map[string]string{
		"bash": "__start_p2pd", "zsh": "#compdef p2pd", "fish": "complete -c p2pd",
	} {
		code, out, errOut := p2pdCmd(t, "completion", shell)
		if code != 0 || errOut != "" || !strings.Contains(out, marker) {
			t.Errorf("completion %s: exit %d, stderr %q, no %q in the script", shell, code, errOut, marker)
		}
	}
	// --config completes to .toml files (cobra.ShellCompDirectiveFilterFileExt).
	if code, out, _ := p2pdCmd(t, "__complete", "run", "--config", ""); code != 0 || out != "toml\n:8\n" {
		t.Errorf("run --config <TAB>: exit %d, %q", code, out)
	}
	if code, out, _ := p2pdCmd(t, "__complete", ""); code != 0 || !strings.Contains(out, "check\t") || !strings.Contains(out, "version\t") {
		t.Errorf("p2pd <TAB>: exit %d, %q", code, out)
	}
}
