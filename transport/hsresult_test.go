package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/p2pd/p2pd/identity"
	"github.com/quic-go/quic-go"
)

// hsLog records what Config.OnHandshake hears.
type hsLog struct {
	mu      sync.Mutex
	results []string
	changed chan struct{}
}

func newHSLog() *hsLog { return &hsLog{changed: make(chan struct{}, 64)} }

func (l *hsLog) hook(result string, d time.Duration) {
	l.mu.Lock()
	l.results = append(l.results, fmt.Sprintf("%s %v", result, d > 0))
	l.mu.Unlock()
	l.changed <- struct{}{}
}

// await waits until the log holds want, in order, and nothing else.
func (l *hsLog) await(t *testing.T, side string, want ...string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		l.mu.Lock()
		got := fmt.Sprint(l.results)
		l.mu.Unlock()
		if got == fmt.Sprint(want) {
			return
		}
		select {
		case <-l.changed:
		case <-deadline:
			t.Fatalf("%s heard handshakes %s, want %v", side, got, want)
		}
	}
}

func hookedEndpoint(t *testing.T, key identity.PrivateKey, trust func([32]byte) (identity.PeerID, bool), log *hsLog) *Endpoint {
	t.Helper()
	ep, err := Listen(Config{Key: key, Listen: []string{"127.0.0.1:0"}, Name: "test", Trust: trust,
		HandshakeTimeout: 3 * time.Second, OnHandshake: log.hook})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return ep
}

func TestOnHandshake(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ka, kb, kc := newKey(t), newKey(t), newKey(t)
	la, lb, lc := newHSLog(), newHSLog(), newHSLog()
	a := hookedEndpoint(t, ka, trustOnly(t, kb), la)
	b := hookedEndpoint(t, kb, trustOnly(t, ka), lb)
	c := hookedEndpoint(t, kc, trustOnly(t, kb), lc)

	sa, err := a.Dial(ctx, kb.PeerID(), addr(b))
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close(CodeNormal)
	sb, err := b.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close(CodeNormal)
	la.await(t, "the initiator", "ok true")

	// b does not trust c: b refuses it after message 1, and c can only
	// tell a refusal, which it counts as untrusted too.
	if _, err := c.Dial(ctx, kb.PeerID(), addr(b)); err == nil {
		t.Fatal("an untrusted key completed a handshake")
	}
	lb.await(t, "the responder", "ok true", "untrusted true")
	lc.await(t, "the refused initiator", "untrusted true")
}

func TestHandshakeResult(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{nil, HandshakeOK},
		{fmt.Errorf("x: %w", ErrUntrusted), HandshakeUntrusted},
		{os.ErrDeadlineExceeded, HandshakeTimeout},
		{context.DeadlineExceeded, HandshakeTimeout},
		{io.ErrUnexpectedEOF, HandshakeBadMessage},
		{errors.New("handshake: message 1: decryption failed"), HandshakeBadMessage},
		{context.Canceled, ""},
		{&quic.ApplicationError{ErrorCode: quic.ApplicationErrorCode(CodeRefused), Remote: true}, HandshakeUntrusted},
		{&quic.ApplicationError{ErrorCode: quic.ApplicationErrorCode(CodeRefused)}, HandshakeOverloaded},
		{&quic.ApplicationError{ErrorCode: quic.ApplicationErrorCode(CodeGoingAway)}, ""},
		{&quic.IdleTimeoutError{}, HandshakeTimeout},
	} {
		if got := handshakeResult(tt.err); got != tt.want {
			t.Errorf("handshakeResult(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
