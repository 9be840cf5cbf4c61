package control_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/p2pd/p2pd/control/controltest"
)

// TestDebugProfiles fetches a goroutine profile through the control socket,
// as an operator does with curl --unix-socket.
func TestDebugProfiles(t *testing.T) {
	sock := controltest.Serve(t, fixture())
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	defer hc.CloseIdleConnections()

	for path, want := range map[string]string{
		"/debug/pprof/goroutine?debug=1": "goroutine profile:",
		"/debug/pprof/":                  "Types of profiles available",
		"/debug/pprof/cmdline":           "control.test",
	} {
		resp, err := hc.Get("http://p2pd" + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d, body %.200q; want 200 and %q", path, resp.StatusCode, body, want)
		}
	}
}
