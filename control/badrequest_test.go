package control_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/p2pd/p2pd/control"
	"github.com/p2pd/p2pd/control/controltest"
)

// rawDo sends one request over the socket with a plain http.Client and
// returns the status and the "error" member of the JSON answer.
func rawDo(t *testing.T, socket, method, path, body string) (int, string) {
	t.Helper()
	tr := &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest(method, "http://p2pd"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q", method, path, ct)
	}
	var e struct {
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %v", method, path, err)
	}
	return resp.StatusCode, e.Error
}

func TestBadRequests(t *testing.T) {
	b := fixture()
	socket := controltest.Serve(t, b)
	c := control.NewClient(socket)
	huge := `{"peer":"` + strings.Repeat("a", control.MaxRequestBytes) + `"}`
	tests := []struct {
		name, method, path, body string
		code                     int
		msg                      string // substring of the error
	}{
		{"garbage", "POST", "/v1/ping", "\x00\xffnot json", 400, "invalid character"},
		{"truncated", "POST", "/v1/ping", `{"peer":"db"`, 400, "bad request"},
		{"empty", "POST", "/v1/ping", "", 400, "empty body"},
		{"null", "POST", "/v1/ping", "null", 400, `"peer" is missing`},
		{"array", "POST", "/v1/ping", `["db"]`, 400, "cannot unmarshal"},
		{"unknown field", "POST", "/v1/ping", `{"peer":"db","count":3}`, 400, `unknown field "count"`},
		{"trailing object", "POST", "/v1/ping", `{"peer":"db"}{"peer":"db"}`, 400, "data after"},
		{"wrong type", "POST", "/v1/ping", `{"peer":42}`, 400, "cannot unmarshal"},
		{"long peer", "POST", "/v1/ping", `{"peer":"` + strings.Repeat("a", 300) + `"}`, 400, "more than 256"},
		{"control chars", "POST", "/v1/ping", `{"peer":"d\u0000b"}`, 400, "control characters"},
		{"too large", "POST", "/v1/ping", huge, 400, "larger than 65536 bytes"},
		{"reload with fields", "POST", "/v1/reload", `{"force":true}`, 400, `unknown field "force"`},
		{"wrong method", "GET", "/v1/ping", "", 405, "takes POST"},
		{"post to a getter", "POST", "/v1/status", "{}", 405, "takes GET"},
		{"unknown route", "GET", "/v2/status", "", 404, "no route /v2/status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, msg := rawDo(t, socket, tt.method, tt.path, tt.body)
			if code != tt.code || !strings.Contains(msg, tt.msg) {
				t.Fatalf("got %d %q, want %d containing %q", code, msg, tt.code, tt.msg)
			}
			// The server keeps serving.
			if _, err := c.Status(context.Background()); err != nil {
				t.Fatalf("Status after a bad request: %v", err)
			}
		})
	}
	if n := len(b.Pinged()); n != 0 {
		t.Fatalf("bad requests reached the backend %d times", n)
	}
	if n := b.Reloads(); n != 0 {
		t.Fatalf("bad reload reached the backend %d times", n)
	}
	// An empty reload body is fine.
	if code, msg := rawDo(t, socket, "POST", "/v1/reload", ""); code != 200 || msg != "" {
		t.Fatalf("empty reload: %d %q", code, msg)
	}
}
