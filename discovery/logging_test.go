package discovery

import (
	"bytes"
	"errors"
	"log/slog"
	"maps"
	"os"
	"strings"
	"sync"
	"testing"

	golog "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/gologshim"
)

// lockedBuffer is a bytes.Buffer safe for the loggers' concurrent writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestRouteLibp2pLogs: messages of go-libp2p's loggers (gologshim) and of
// go-log's (the DHT's) come out of p2pd's handler in its format, warnings
// and up at p2pd's info level.
func TestRouteLibp2pLogs(t *testing.T) {
	t.Setenv("GOLOG_LOG_LEVEL", "")
	var out lockedBuffer
	noTime := func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	RouteLibp2pLogs(slog.NewTextHandler(&out, &slog.HandlerOptions{ReplaceAttr: noTime}))
	t.Cleanup(func() { // later tests' libp2p messages: warnings on stderr
		RouteLibp2pLogs(slog.NewTextHandler(os.Stderr, nil))
	})

	dht := golog.Logger("p2pd-test-dht")
	dht.Warnw("routing table refresh failed", "error", errors.New("no peers"), "peer", "12D3KooWx")
	dht.Infow("chatter")
	dht.Debug("more chatter")
	shim := gologshim.Logger("p2pd-test-shim")
	shim.Warn("reservation failed", "relay", "12D3KooWr")
	shim.Info("chatter")
	shim.Error("listen failed", "err", "address in use")

	want := `level=WARN msg="routing table refresh failed" logger=p2pd-test-dht err="no peers" peer=12D3KooWx` + "\n" +
		`level=WARN msg="reservation failed" logger=p2pd-test-shim relay=12D3KooWr` + "\n" +
		`level=ERROR msg="listen failed" logger=p2pd-test-shim err="address in use"` + "\n"
	if got := out.String(); got != want {
		t.Errorf("routed libp2p logs:\n%s\nwant\n%s", got, want)
	}
}

// TestRouteLibp2pLogsLevels: GOLOG_LOG_LEVEL chooses libp2p's levels per
// subsystem, as go-log reads it.
func TestRouteLibp2pLogsLevels(t *testing.T) {
	t.Setenv("GOLOG_LOG_LEVEL", "error,p2pd-test-loud=debug")
	var out lockedBuffer
	RouteLibp2pLogs(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		os.Unsetenv("GOLOG_LOG_LEVEL")
		RouteLibp2pLogs(slog.NewTextHandler(os.Stderr, nil))
	})
	gologshim.Logger("p2pd-test-loud").Debug("dialing", "addr", "/ip4/192.0.2.1/udp/4242/quic-v1")
	gologshim.Logger("p2pd-test-quiet").Warn("below this subsystem's level")
	want := `"level":"DEBUG","msg":"dialing","logger":"p2pd-test-loud","addr":"/ip4/192.0.2.1/udp/4242/quic-v1"}` + "\n"
	if got := out.String(); !strings.HasSuffix(got, want) || strings.Count(got, "\n") != 1 {
		t.Errorf("with GOLOG_LOG_LEVEL=error,p2pd-test-loud=debug:\n%s\nwant one line ending %s", got, want)
	}
}

func TestParseLevels(t *testing.T) {
	for _, tt := range []struct {
		env      string
		fallback slog.Level
		per      map[string]slog.Level
	}{
		{"", slog.LevelWarn, map[string]slog.Level{}},
		{"debug", slog.LevelDebug, map[string]slog.Level{}},
		{"error, dht=info ,mdns=debug", slog.LevelError, map[string]slog.Level{"dht": slog.LevelInfo, "mdns": slog.LevelDebug}},
		{"bogus,x=", slog.LevelWarn, map[string]slog.Level{}},
	} {
		fallback, per := parseLevels(tt.env)
		if fallback != tt.fallback || !maps.Equal(per, tt.per) {
			t.Errorf("parseLevels(%q) = %v %v, want %v %v", tt.env, fallback, per, tt.fallback, tt.per)
		}
	}
}
