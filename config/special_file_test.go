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

// TestConfigDirectoryRefused: a directory given as the config file is named
// as one, with the file to give instead.
func TestConfigDirectoryRefused(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	_, err := Load(dir)
	want := "config: " + dir + " is a directory, not a regular file; point --config at the config file in it, e.g. " +
		filepath.Join(dir, "p2pd.toml")
	if err == nil || err.Error() != want {
		t.Fatalf("Load(directory) = %v, want %q", err, want)
	}

	// A directory where the trust file should be.
	path := writeConfig(t, "", "")
	trust := filepath.Join(filepath.Dir(path), TrustFileName)
	if err := os.Mkdir(trust, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	want = "config: " + trust + " is a directory, not a regular file; it should be the trust file p2pctl trust add and rm write; " +
		"move it away, or set node.state_dir to another directory"
	if err == nil || err.Error() != want {
		t.Errorf("Load with a directory as the trust file = %v, want %q", err, want)
	}
}
