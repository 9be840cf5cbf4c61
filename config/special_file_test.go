package config

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestConfigFIFORefused: a named pipe at the config path is refused at
// once instead of hanging start-up until someone writes to it.
func TestConfigFIFORefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p2pd.toml")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() { _, err := Load(path); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") || !strings.Contains(err.Error(), path) {
			t.Fatalf("Load(FIFO) = %v, want an error naming the file as not a regular file", err)
		}
	case <-time.After(2 * time.Second):
		// Unblock the hung open so the goroutine ends.
		if f, err := os.OpenFile(path, os.O_WRONLY, 0); err == nil {
			f.Close()
		}
		t.Fatal("Load on a FIFO hung")
	}
}
