package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/p2pd/p2pd/config"
	"github.com/p2pd/p2pd/control"
)

// listenNotify listens on a Unix datagram socket at name (a path, or
// "@name" for the abstract namespace) and returns the datagrams it receives.
func listenNotify(t *testing.T, name string) <-chan string {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	msgs := make(chan string, 16)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			select {
			case msgs <- string(buf[:n]):
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() { close(stop); c.Close(); <-done })
	return msgs
}

// next returns the next datagram, failing the test after 20 s.
func next(t *testing.T, msgs <-chan string, daemonErr <-chan error) string {
	t.Helper()
	select {
	case m := <-msgs:
		return m
	case err := <-daemonErr:
		t.Fatalf("the daemon returned %v before notifying", err)
	case <-time.After(20 * time.Second):
		t.Fatal("no notification in 20 s")
	}
	return ""
}

// TestNotify runs the daemon with NOTIFY_SOCKET set, as a Type=notify unit
// does, and reads what it tells systemd: READY=1 once the control socket
// answers, RELOADING=1 with MONOTONIC_USEC and READY=1 around a reload,
// STOPPING=1 on shutdown.
func TestNotify(t *testing.T) {
	for _, abstract := range []bool{false, true} {
		t.Run(fmt.Sprintf("abstract=%v", abstract), func(t *testing.T) {
			isolate(t)
			path, _ := nodeDir(t, "")
			name := filepath.Join(filepath.Dir(path), "notify")
			if abstract {
				name = fmt.Sprintf("@p2pd-test-%d-%d", os.Getpid(), time.Now().UnixNano())
			}
			msgs := listenNotify(t, name)
			t.Setenv("NOTIFY_SOCKET", name)

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			daemonErr := make(chan error, 1)
			go func() { daemonErr <- runDaemon(ctx, path) }()

			if m := next(t, msgs, daemonErr); m != "READY=1\n" {
				t.Fatalf("first notification %q, want READY=1", m)
			}
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			client := control.NewClient(cfg.Node.ControlSocket)
			if _, err := client.Status(ctx); err != nil {
				t.Fatalf("control socket after READY=1: %v", err)
			}
			before := monotonicUsec(t)
			if err := client.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			m := next(t, msgs, daemonErr)
			sub := regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=(\d+)\n$`).FindStringSubmatch(m)
			if sub == nil {
				t.Fatalf("reload notification %q, want RELOADING=1 and MONOTONIC_USEC", m)
			}
			var usec int64
			fmt.Sscan(sub[1], &usec)
			if after := monotonicUsec(t); usec < before || usec > after {
				t.Errorf("MONOTONIC_USEC=%d is not between %d and %d (CLOCK_MONOTONIC around the reload)", usec, before, after)
			}
			if m := next(t, msgs, daemonErr); m != "READY=1\n" {
				t.Fatalf("after the reload %q, want READY=1", m)
			}
			cancel()
			if m := next(t, msgs, nil); m != "STOPPING=1\n" {
				t.Fatalf("on shutdown %q, want STOPPING=1", m)
			}
			if err := <-daemonErr; err != nil {
				t.Fatalf("daemon: %v", err)
			}
		})
	}
}

func monotonicUsec(t *testing.T) int64 {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano() / 1000
}

// TestNotifyOff: without NOTIFY_SOCKET, or with a name that is neither a
// path nor abstract, notifications do nothing and fail nothing.
func TestNotifyOff(t *testing.T) {
	for _, v := range []string{"", "relative/sock", "@"} {
		t.Setenv("NOTIFY_SOCKET", v)
		n := newNotifier()
		if n.enabled() || n.ready() != nil || n.reloading() != nil || n.stopping() != nil {
			t.Errorf("NOTIFY_SOCKET=%q: notifier enabled or failing", v)
		}
	}
	// A socket nobody listens on: an error naming it, for the daemon to log.
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "gone"))
	if err := newNotifier().ready(); err == nil || !strings.Contains(err.Error(), "NOTIFY_SOCKET") {
		t.Errorf("notify to a missing socket: %v", err)
	}
}

// TestSystemdUnit checks contrib/systemd/p2pd.service with
// `systemd-analyze verify`, which insists that ExecStart's binary exists:
// the test copies the unit into a temporary directory with its commands
// pointed at a p2pd built for the test.
func TestSystemdUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (apt-get install systemd)")
	}
	unit, err := os.ReadFile("../../contrib/systemd/p2pd.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Type=notify", "DynamicUser=yes", "StateDirectory=p2pd", "RuntimeDirectory=p2pd", "ConfigurationDirectory=p2pd",
		"LimitNOFILE=65536", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
		"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK", "CapabilityBoundingSet=\n",
		"ExecReload=/bin/kill -HUP $MAINPID",
	} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("the unit lacks %q", want)
		}
	}
	bin := buildP2PD(t)
	dir := t.TempDir()
	copyPath := filepath.Join(dir, "p2pd.service")
	if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/p2pd", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", copyPath).CombinedOutput()
	// verify exits 0 on unknown keys and only warns: any line about the
	// unit is a failure.
	if err != nil || strings.Contains(string(out), "p2pd.service") {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestServiceConfig: contrib/systemd/p2pd.toml loads and validates, and
// puts the key, the state and the control socket in the directories the
// unit gives the service (everything else is read-only to it).
func TestServiceConfig(t *testing.T) {
	isolate(t)
	cfg, err := config.Load("../../contrib/systemd/p2pd.toml")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	unit, err := os.ReadFile("../../contrib/systemd/p2pd.service")
	if err != nil {
		t.Fatal(err)
	}
	dirs := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(unit)))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			dirs[k] = v
		}
	}
	state, runtime := "/var/lib/"+dirs["StateDirectory"], "/run/"+dirs["RuntimeDirectory"]
	for _, c := range []struct{ key, got, dir string }{
		{"key_file", cfg.Node.KeyFile, state}, {"state_dir", cfg.Node.StateDir, state},
		{"control_socket", cfg.Node.ControlSocket, runtime},
	} {
		if c.got != c.dir && !strings.HasPrefix(c.got, c.dir+"/") {
			t.Errorf("node.%s = %s, outside the unit's %s", c.key, c.got, c.dir)
		}
	}
	if !strings.Contains(dirs["ExecStart"], "--config /etc/"+dirs["ConfigurationDirectory"]+"/p2pd.toml") {
		t.Errorf("ExecStart=%s does not read the config from ConfigurationDirectory=%s", dirs["ExecStart"], dirs["ConfigurationDirectory"])
	}
}
