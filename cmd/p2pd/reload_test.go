package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/p2pd/p2pd/config"
)

// TestReloadSaysWhatNeedsARestart: POST /v1/reload, as p2pctl reload sends
// it, answers which tables' changes wait for a restart, at every reload
// until the file has the values the daemon started with again, and {} when
// nothing waits (as older daemons always answered).
func TestReloadSaysWhatNeedsARestart(t *testing.T) {
	isolate(t)
	path, _ := nodeDir(t, "")
	startDaemon(t, path)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", cfg.Node.ControlSocket)
	}}}
	defer client.CloseIdleConnections()
	reload := func(step, want string) {
		t.Helper()
		resp, err := client.Post("http://p2pd/v1/reload", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != want+"\n" {
			t.Errorf("%s: reload answered %s %s, want 200 %s", step, resp.Status, body, want)
		}
	}

	reload("no change", `{}`)
	writeConfig(t, path, "[metrics]\nlisten = \"127.0.0.1:19464\"\n")
	reload("[metrics] added", `{"restart_needed":["metrics"]}`)
	reload("reloaded again", `{"restart_needed":["metrics"]}`)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), `level = "warn"`, `level = "debug"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	reload("[log] changed too", `{"restart_needed":["metrics","log"]}`)
	t.Setenv("P2PD_NODE_LISTN", "127.0.0.1:1")
	reload("with a warning", `{"restart_needed":["metrics","log"],"warnings":["config: environment variable P2PD_NODE_LISTN `+
		`is not a p2pd setting and is ignored; did you mean P2PD_NODE_LISTEN?"]}`)
	os.Unsetenv("P2PD_NODE_LISTN")
	writeConfig(t, path, "[[forwards]]\nlisten = \"0.0.0.0:0\"\npeer = \"nobody\"\nservice = \"x\"\n")
	resp, err := client.Post("http://p2pd/v1/reload", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("a config that does not load: %s, want 500", resp.Status)
	}
	writeConfig(t, path, "")
	reload("back to the start", `{}`)
}
