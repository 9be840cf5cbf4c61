package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/p2pd/p2pd/control"
	"github.com/p2pd/p2pd/control/controltest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	idDB  = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
	idWeb = "12D3KooWHHzSeKaY8xuZVzkLbKFfvNgPPeKhFBGrMbNzbm5akpqu"
)

func fixture() *controltest.Backend {
	hs := time.Now().Add(-12 * time.Second)
	return &controltest.Backend{
		Node: control.Status{ID: "12D3KooWSelf", Name: "alpha", Version: "p2pd/1 test",
			Listen: []string{"0.0.0.0:4242"}, StartedAt: time.Now().Add(-time.Hour), UptimeSeconds: 3600,
			Peers: 2, Connected: 1, Services: 1, Forwards: 1},
		PeerList: []control.Peer{
			{Name: "db", ID: idDB, State: control.PeerConnected, Addresses: []string{"203.0.113.7:4242"},
				Endpoint: "203.0.113.7:4242", LastHandshake: &hs, Sources: []string{"static"}, Path: "direct"},
			{Name: "web1", ID: idWeb, State: control.PeerDisconnected, LastError: "handshake timed out", Origin: "trust"},
		},
		SessionList: []control.Session{{Peer: "db", PeerID: idDB, Remote: "203.0.113.7:4242", Carrier: "quic", State: "established",
			AgeSeconds: 195, RTTMillis: 1.25, Streams: 3, Conns: 2, BytesSent: 3 << 20, BytesReceived: 1536,
			PacketsSent: 2000, PacketsReceived: 1900, PacketsLost: 3, GSO: true}},
		ServiceList: []control.Service{{Name: "postgres", Target: "127.0.0.1:5432", Protocol: "tcp",
			Allow: []string{"web1", "db"}, Active: 1, Total: 7}},
		ForwardList: []control.Forward{{Listen: "127.0.0.1:15432", Peer: "db", Service: "postgres",
			MaxConnections: 1024, Active: 2, Total: 9, Refused: 4, AcceptErrors: 17,
			Errors: map[string]uint64{"peer_unreachable": 2, "access_denied": 3}}},
		PingRTTMillis: 1.234,
	}
}

// p2pctl runs the command line and returns its exit code, stdout and stderr.
func p2pctl(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// mustRun runs args and fails unless they exit 0 with nothing on stderr.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := p2pctl(t, args...)
	if code != 0 || errOut != "" {
		t.Fatalf("p2pctl %q: exit %d, stderr %q", args, code, errOut)
	}
	return out
}

// rowsMatch checks that every pattern matches some line of the table.
func rowsMatch(t *testing.T, out string, patterns ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	for _, p := range patterns {
		re := regexp.MustCompile(p)
		found := false
		for _, l := range lines {
			found = found || re.MatchString(l)
		}
		if !found {
			t.Errorf("no line matches %q in:\n%s", p, out)
		}
	}
}

func TestTables(t *testing.T) {
	sock := controltest.Serve(t, fixture())
	ws := `\s{2,}`
	rowsMatch(t, mustRun(t, "--socket", sock, "peers"),
		`^NAME`+ws+`ID`+ws+`STATE`+ws+`PATH`+ws+`ENDPOINT`+ws+`LAST-HANDSHAKE`+ws+`FOUND-BY`+ws+`ADDRESSES`+ws+`ORIGIN$`,
		`^db`+ws+idDB+ws+`connected`+ws+`direct`+ws+`203\.0\.113\.7:4242`+ws+`1[2-9]s ago`+ws+`static`+ws+`203\.0\.113\.7:4242`+ws+`-$`,
		`^web1`+ws+idWeb+ws+`disconnected`+ws+`-`+ws+`-`+ws+`-`+ws+`-`+ws+`-`+ws+`trust$`,
		`^web1: handshake timed out$`)
	rowsMatch(t, mustRun(t, "--socket", sock, "sessions"),
		`^PEER`+ws+`CARRIER`+ws+`REMOTE`+ws+`AGE`+ws+`RTT`+ws+`STREAMS`+ws+`CONNS`+ws+`SENT`+ws+`RECEIVED`+ws+`LOST`+ws+`GSO$`,
		`^db`+ws+`quic`+ws+`203\.0\.113\.7:4242`+ws+`3m15s`+ws+`1\.25ms`+ws+`3`+ws+`2`+ws+`3\.0 MiB`+ws+`1\.5 KiB`+ws+`3 \(0\.1%\)`+ws+`on$`)
	rowsMatch(t, mustRun(t, "--socket", sock, "services"),
		`^NAME`+ws+`PROTOCOL`+ws+`TARGET`+ws+`ALLOW`+ws+`ACTIVE`+ws+`TOTAL$`,
		`^postgres`+ws+`tcp`+ws+`127\.0\.0\.1:5432`+ws+`web1,db`+ws+`1`+ws+`7$`)
	rowsMatch(t, mustRun(t, "forwards", "--socket", sock),
		`^LISTEN`+ws+`PEER`+ws+`SERVICE`+ws+`ACTIVE`+ws+`MAX`+ws+`TOTAL`+ws+`REFUSED`+ws+`ACCEPT-ERRORS`+ws+`ERRORS$`,
		`^127\.0\.0\.1:15432`+ws+`db`+ws+`postgres`+ws+`2`+ws+`1024`+ws+`9`+ws+`4`+ws+`17`+ws+`access_denied=3 peer_unreachable=2$`)
	rowsMatch(t, mustRun(t, "--socket", sock, "status"),
		`^id: +12D3KooWSelf$`, `^name: +alpha$`, `^peers: +2 configured, 1 connected$`,
		`\(up 1h00m\)$`, `^socket: +`+regexp.QuoteMeta(sock)+`$`)
	if out := mustRun(t, "--socket", sock, "id"); out != "12D3KooWSelf\n" {
		t.Errorf("id printed %q, want the peer ID alone", out)
	}
	if out := mustRun(t, "--socket", sock, "reload"); out != "configuration reloaded\n" {
		t.Errorf("reload printed %q", out)
	}
}

func TestJSON(t *testing.T) {
	b := fixture()
	sock := controltest.Serve(t, b)
	decode := func(args ...string) map[string]json.RawMessage {
		t.Helper()
		var m map[string]json.RawMessage
		out := mustRun(t, append([]string{"--socket", sock, "--json"}, args...)...)
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("%q printed invalid JSON %q: %v", args, out, err)
		}
		return m
	}
	var peers []control.Peer
	if err := json.Unmarshal(decode("peers")["peers"], &peers); err != nil || len(peers) != 2 || peers[0].ID != idDB {
		t.Errorf(`peers --json: %+v, %v`, peers, err)
	}
	var sessions []control.Session
	if err := json.Unmarshal(decode("sessions")["sessions"], &sessions); err != nil ||
		len(sessions) != 1 || sessions[0].BytesSent != 3<<20 {
		t.Errorf(`sessions --json: %+v, %v`, sessions, err)
	}
	var services []control.Service
	if err := json.Unmarshal(decode("services")["services"], &services); err != nil || len(services) != 1 {
		t.Errorf(`services --json: %+v, %v`, services, err)
	}
	var forwards []control.Forward
	if err := json.Unmarshal(decode("forwards")["forwards"], &forwards); err != nil || len(forwards) != 1 ||
		forwards[0].AcceptErrors != 17 || forwards[0].Refused != 4 || forwards[0].MaxConnections != 1024 {
		t.Errorf(`forwards --json: %+v, %v`, forwards, err)
	}
	if id := string(decode("id")["id"]); id != `"12D3KooWSelf"` {
		t.Errorf(`id --json: id %s`, id)
	}
	var st control.Status
	if err := json.Unmarshal([]byte(mustRun(t, "--json", "--socket", sock, "status")), &st); err != nil ||
		st.ID != "12D3KooWSelf" || st.Connected != 1 {
		t.Errorf("status --json: %+v, %v", st, err)
	}
	var pr control.PingResult
	if err := json.Unmarshal([]byte(mustRun(t, "--json", "--socket", sock, "ping", "db")), &pr); err != nil ||
		pr != (control.PingResult{Peer: "db", RTTMillis: 1.234, Remote: "203.0.113.7:4242"}) {
		t.Errorf("ping --json: %+v, %v", pr, err)
	}
}

func TestEmptyListJSON(t *testing.T) {
	sock := controltest.Serve(t, &controltest.Backend{})
	if out := mustRun(t, "--socket", sock, "--json", "sessions"); out != "{\n  \"sessions\": []\n}\n" {
		t.Errorf("sessions --json on an idle daemon printed %q", out)
	}
}

func TestPing(t *testing.T) {
	b := fixture()
	sock := controltest.Serve(t, b)
	out := mustRun(t, "--socket", sock, "ping", "db", "-c", "3", "-i", "0")
	want := strings.Repeat("pong from db (203.0.113.7:4242) in 1.234ms\n", 3) + "--- db: 3 sent, 3 received\n"
	if out != want {
		t.Errorf("ping -c 3 printed %q, want %q", out, want)
	}
	if n := len(b.Pinged()); n != 3 {
		t.Errorf("backend saw %d pings, want 3", n)
	}

	// Every ping fails: exit 1.
	code, out, errOut := p2pctl(t, "--socket", sock, "ping", "web1", "-c", "2", "-i", "0")
	if code != 1 || strings.Count(errOut, "is disconnected") != 2 || !strings.Contains(errOut, "no pong in 2 pings") {
		t.Errorf("ping of a disconnected peer: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// An unknown peer: one error line, exit 1, no retries.
	before := len(b.Pinged())
	code, _, errOut = p2pctl(t, "--socket", sock, "ping", "nobody", "-c", "5", "-i", "0")
	if code != 1 || errOut != "p2pctl: controltest: unknown peer \"nobody\": control: not found\n" {
		t.Errorf("ping nobody: exit %d, stderr %q", code, errOut)
	}
	if n := len(b.Pinged()) - before; n != 1 {
		t.Errorf("ping of an unknown peer was sent %d times, want 1", n)
	}
}

func TestReloadFailure(t *testing.T) {
	b := fixture()
	b.ReloadErr = errors.New(`config: peers[1].id "x": not a peer ID`)
	code, out, errOut := p2pctl(t, "--socket", controltest.Serve(t, b), "reload")
	if code != 1 || out != "" || errOut != "p2pctl: config: peers[1].id \"x\": not a peer ID\n" {
		t.Errorf("failed reload: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestReloadRestartNeeded: reload says which changes wait for a restart,
// and prints the new config's warnings on stderr.
func TestReloadRestartNeeded(t *testing.T) {
	b := fixture()
	b.ReloadResult = control.ReloadResult{RestartNeeded: []string{"node", "metrics"}, Warnings: []string{"config: a warning"}}
	sock := controltest.Serve(t, b)
	code, out, errOut := p2pctl(t, "--socket", sock, "reload")
	if want := "configuration reloaded; [node] and [metrics] changes take effect after a restart of p2pd\n"; code != 0 || out != want ||
		errOut != "warning: config: a warning\n" {
		t.Errorf("reload: exit %d, stdout %q, stderr %q; want 0, %q and the warning", code, out, errOut, want)
	}
	b = fixture()
	b.ReloadResult = control.ReloadResult{RestartNeeded: []string{"metrics"}, Warnings: []string{"config: a warning"}}
	sock = controltest.Serve(t, b)
	if code, out, _ := p2pctl(t, "--socket", sock, "reload"); code != 0 ||
		out != "configuration reloaded; [metrics] changes take effect after a restart of p2pd\n" {
		t.Errorf("reload: exit %d, stdout %q", code, out)
	}
	want := "{\n  \"reloaded\": true,\n  \"restart_needed\": [\n    \"metrics\"\n  ],\n  \"warnings\": [\n    \"config: a warning\"\n  ]\n}\n"
	if out := mustRun(t, "--socket", sock, "--json", "reload"); out != want {
		t.Errorf("--json reload printed %q, want %q", out, want)
	}
}

func TestNotRunning(t *testing.T) {
	sock := controltest.SocketPath(t)
	for _, cmd := range []string{"status", "peers", "sessions", "services", "forwards", "reload", "id", "ping"} {
		args := []string{"--socket", sock, cmd}
		if cmd == "ping" {
			args = append(args, "db", "-c", "3")
		}
		code, out, errOut := p2pctl(t, args...)
		want := "p2pctl: no p2pd is running at " + sock + " (is the daemon started? see --socket)\n"
		if code != 1 || out != "" || errOut != want {
			t.Errorf("%s with no daemon: exit %d, stdout %q, stderr %q; want exit 1 and %q", cmd, code, out, errOut, want)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	sock := controltest.Serve(t, fixture())
	for _, args := range [][]string{
		{},
		{"bogus"},
		{"status", "extra"},
		{"ping"},
		{"ping", "a", "b"},
		{"ping", "db", "-c", "0"},
		{"ping", "db", "-c", "x"},
		{"--no-such-flag", "status"},
		{"peers", "--socket"},
	} {
		code, out, errOut := p2pctl(t, append([]string{"--socket", sock}, args...)...)
		if code != 2 || !strings.HasPrefix(errOut, "p2pctl: ") && !strings.HasPrefix(errOut, "Usage:") {
			t.Errorf("p2pctl %q: exit %d, stdout %q, stderr %q; want exit 2 and an error", args, code, out, errOut)
		}
	}
	if code, out, _ := p2pctl(t, "--help"); code != 0 || !strings.Contains(out, "Available Commands") {
		t.Errorf("--help: exit %d, %q", code, out)
	}
}

func TestDefaultSocket(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_STATE_HOME", dir)
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	t.Setenv("P2PD_CONFIG", "")
	none := func(string) string { return "" }
	if got := defaultSocket(func(k string) string {
		if k == "P2PD_NODE_CONTROL_SOCKET" {
			return "/x/y.sock"
		}
		return ""
	}); got != "/x/y.sock" {
		t.Errorf("with P2PD_NODE_CONTROL_SOCKET: %q", got)
	}
	if got := defaultSocket(none); got != "/run/user/1000/p2pd.sock" {
		t.Errorf("without a config: %q, want the daemon's default", got)
	}
	// A config at the default path names the socket the daemon will use.
	cfgDir := filepath.Join(dir, "p2pd")
	os.MkdirAll(cfgDir, 0o700)
	os.WriteFile(filepath.Join(cfgDir, "p2pd.toml"), []byte("[node]\ncontrol_socket = \"ctl.sock\"\n"), 0o600)
	if got, want := defaultSocket(none), filepath.Join(cfgDir, "ctl.sock"); got != want {
		t.Errorf("with a default config: %q, want %q", got, want)
	}
}

func TestHumanFormats(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{humanBytes(0), "0 B"}, {humanBytes(1023), "1023 B"}, {humanBytes(1536), "1.5 KiB"},
		{humanBytes(5 << 30), "5.0 GiB"},
		{humanDuration(45 * time.Second), "45s"}, {humanDuration(192 * time.Second), "3m12s"},
		{humanDuration(2*time.Hour + 5*time.Minute), "2h05m"}, {humanDuration(99 * time.Hour), "4d03h"},
		{humanMillis(0.5), "0.50ms"}, {humanMillis(123.45), "123.5ms"}, {humanMillis(2500), "2.50s"},
		{humanMillis(0), ""},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
