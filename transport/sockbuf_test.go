package transport

import (
	"bytes"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/p2pd/p2pd/identity"
)

// TestSocketBuffers checks that Listen leaves every UDP socket with the
// buffers QUIC needs, or, where the kernel's limits and the process's
// rights do not allow it, says so in the log with the fix.
func TestSocketBuffers(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("buffer sizes are read on Linux only")
	}
	k, _ := identity.GenerateKey(nil)
	var logged bytes.Buffer
	e, err := Listen(Config{Key: k, Listen: []string{"127.0.0.1:0"},
		Trust:  func([32]byte) (identity.PeerID, bool) { return identity.PeerID{}, false },
		Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	got := socketBuffers(e.Sockets()[0].Conn)
	canRaise := os.Geteuid() == 0 || sysctlInt(t, "rmem_max")*2 >= WantSocketBuffer && sysctlInt(t, "wmem_max")*2 >= WantSocketBuffer
	switch {
	case canRaise && got.short():
		t.Fatalf("buffers %+v, want at least %d each way", got, WantSocketBuffer)
	case !canRaise && !strings.Contains(logged.String(), "sysctl -w net.core.rmem_max"):
		t.Fatalf("buffers %+v without the warning; log: %s", got, logged.String())
	case canRaise && logged.Len() > 0:
		t.Fatalf("warned although the buffers are %+v: %s", got, logged.String())
	}
}

func sysctlInt(t *testing.T, name string) int {
	b, err := os.ReadFile("/proc/sys/net/core/" + name)
	if err != nil {
		t.Skip(err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}
