package transport

import (
	"context"
	"errors"
	"net"
	"os"
	"time"

	"github.com/quic-go/quic-go"
)

// Results of a handshake, as Config.OnHandshake hears them.
const (
	// HandshakeOK: both sides authenticated; the session or lane is up.
	HandshakeOK = "ok"
	// HandshakeUntrusted: the initiator's key is not trusted here or, for
	// the initiator, the responder refused it (the responder sends one
	// generic refusal whatever the cause, so it counts here).
	HandshakeUntrusted = "untrusted"
	// HandshakeBadMessage: a message that failed to decrypt, parse or
	// frame, or a connection that failed in the middle.
	HandshakeBadMessage = "bad_message"
	// HandshakeTimeout: the other side did not complete in time.
	HandshakeTimeout = "timeout"
	// HandshakeOverloaded: an inbound connection refused or evicted because
	// too many handshakes were under way (admission.go).
	HandshakeOverloaded = "overloaded"
)

// reportHandshake tells Config.OnHandshake how a handshake that began at
// start ended. A handshake abandoned by its own side (the endpoint closing,
// the dialer losing interest) is not reported.
func (e *Endpoint) reportHandshake(start time.Time, err error) {
	if e.cfg.OnHandshake == nil {
		return
	}
	if r := handshakeResult(err); r != "" {
		e.cfg.OnHandshake(r, time.Since(start))
	}
}

// reportOverloaded reports an inbound connection refused before its
// handshake began.
func (e *Endpoint) reportOverloaded() {
	if e.cfg.OnHandshake != nil {
		e.cfg.OnHandshake(HandshakeOverloaded, 0)
	}
}

// handshakeResult classifies a handshake's error; "" for one abandoned
// locally.
func handshakeResult(err error) string {
	var appErr *quic.ApplicationError
	var idle *quic.IdleTimeoutError
	var hsTimeout *quic.HandshakeTimeoutError
	var ne net.Error
	var ce *CloseError
	switch {
	case err == nil:
		return HandshakeOK
	case errors.Is(err, ErrUntrusted), errors.As(err, &ce) && ce.Remote && ce.Code == CodeRefused:
		return HandshakeUntrusted
	case errors.As(err, &appErr): // before net.ErrClosed, which it matches
		switch {
		case appErr.Remote && CloseCode(appErr.ErrorCode) == CodeRefused:
			return HandshakeUntrusted
		case !appErr.Remote && CloseCode(appErr.ErrorCode) == CodeRefused:
			return HandshakeOverloaded // evicted by admission: only it closes a pending connection so
		case !appErr.Remote:
			return ""
		}
		return HandshakeBadMessage
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &idle), errors.As(err, &hsTimeout), errors.As(err, &ne) && ne.Timeout():
		return HandshakeTimeout // before net.ErrClosed, which quic's timeouts match
	case errors.Is(err, context.Canceled), errors.Is(err, net.ErrClosed):
		return ""
	}
	return HandshakeBadMessage
}
