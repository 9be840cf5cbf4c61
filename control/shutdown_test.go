package control_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/p2pd/p2pd/control"
	"github.com/p2pd/p2pd/control/controltest"
)

// stuckBackend's Ping blocks until its context ends.
type stuckBackend struct {
	*controltest.Backend
	entered chan struct{}
	left    chan error
}

func (b *stuckBackend) Ping(ctx context.Context, _ string) (control.PingResult, error) {
	close(b.entered)
	<-ctx.Done()
	time.Sleep(50 * time.Millisecond) // a slow unwind that Serve must wait for
	b.left <- ctx.Err()
	return control.PingResult{}, ctx.Err()
}

func TestServeShutdownCancelsStuckHandler(t *testing.T) {
	b := &stuckBackend{Backend: fixture(), entered: make(chan struct{}), left: make(chan error, 1)}
	path := controltest.SocketPath(t)
	ln, err := control.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- control.NewServer(b, nil).Serve(ctx, ln) }()

	pinged := make(chan error, 1)
	go func() {
		_, err := control.NewClient(path).Ping(context.Background(), "db")
		pinged <- err
	}()
	<-b.entered
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	// Serve returned only after the handler did.
	select {
	case err := <-b.left:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("handler context ended with %v, want Canceled", err)
		}
	default:
		t.Fatal("Serve returned while a handler was still running")
	}
	if err := <-pinged; err == nil {
		t.Fatal("ping through a shut-down server succeeded")
	}
	if _, err := control.NewClient(path).Status(context.Background()); !errors.Is(err, control.ErrNotRunning) {
		t.Fatalf("Status after shutdown: %v, want ErrNotRunning (socket removed)", err)
	}
}
