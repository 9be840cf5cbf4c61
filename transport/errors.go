package transport

import (
	"errors"
	"fmt"

	"github.com/quic-go/quic-go"
)

// CloseCode says why a session ended. Every carrier sends it: as the QUIC
// application error code, or in yamux's go-away frame.
type CloseCode uint64

// Session close codes.
const (
	CodeNormal    CloseCode = 0x0 // orderly close
	CodeRefused   CloseCode = 0x1 // handshake failed; the same for every reason
	CodeDuplicate CloseCode = 0x2 // a parallel session to the same peer won
	CodeGoingAway CloseCode = 0x3 // the peer is shutting down
	CodeProtocol  CloseCode = 0x4 // malformed control stream
	CodeRemoved   CloseCode = 0x5 // the peer is no longer trusted (reload)
)

// StreamCode says why a stream was reset: the QUIC stream error code, or
// yamux's reset code.
type StreamCode uint64

// Stream reset codes.
const (
	StreamAborted   StreamCode = 0x10 // the application connection was aborted
	StreamRefused   StreamCode = 0x11 // the request was answered with an error status
	StreamBadHeader StreamCode = 0x12 // the request header was malformed or late
	StreamRevoked   StreamCode = 0x13 // access was withdrawn by a reload
)

var (
	// ErrHandshake reports a failed session handshake. The wrapped error says
	// why on the side that saw it; the peer only ever sees CodeRefused.
	ErrHandshake = errors.New("transport: handshake failed")
	// ErrUntrusted reports an initiator whose static key is not trusted.
	ErrUntrusted = errors.New("transport: untrusted peer")
	// ErrClosed reports use of a closed endpoint or session.
	ErrClosed = errors.New("transport: closed")
	// ErrShortHeader reports a stream header cut short.
	ErrShortHeader = errors.New("transport: short stream header")
	// ErrBadHeader reports a stream header that breaks the layout rules.
	ErrBadHeader = errors.New("transport: malformed stream header")
)

// Status is the accepting side's answer to a stream request.
type Status uint8

// Status codes.
const (
	StatusOK                Status = 0
	StatusUnknownService    Status = 1
	StatusAccessDenied      Status = 2
	StatusTargetRefused     Status = 3
	StatusTargetUnreachable Status = 4
	StatusOverloaded        Status = 5
	StatusBadRequest        Status = 6
)

var statusText = map[Status]string{
	StatusOK:                "ok",
	StatusUnknownService:    "unknown service",
	StatusAccessDenied:      "access denied",
	StatusTargetRefused:     "target refused the connection",
	StatusTargetUnreachable: "target unreachable",
	StatusOverloaded:        "overloaded",
	StatusBadRequest:        "bad request",
}

func (s Status) String() string {
	if t, ok := statusText[s]; ok {
		return t
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// StatusError is a non-OK answer to a stream request.
type StatusError struct {
	Status  Status
	Service string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("transport: service %q: %s", e.Service, e.Status)
}

// CloseError reports why a session ended, as a close code.
type CloseError struct {
	Code   CloseCode
	Remote bool
}

func (e *CloseError) Error() string {
	side := "local"
	if e.Remote {
		side = "remote"
	}
	return fmt.Sprintf("transport: session closed by %s: %s", side, codeText(e.Code))
}

func codeText(c CloseCode) string {
	switch c {
	case CodeNormal:
		return "normal close"
	case CodeRefused:
		return "refused"
	case CodeDuplicate:
		return "duplicate session"
	case CodeGoingAway:
		return "going away"
	case CodeProtocol:
		return "protocol error"
	case CodeRemoved:
		return "peer removed"
	}
	return fmt.Sprintf("code 0x%x", uint64(c))
}

// closeCause turns quic-go's close errors into a CloseError where it can.
func closeCause(err error) error {
	var ae *quic.ApplicationError
	if errors.As(err, &ae) {
		return &CloseError{Code: CloseCode(ae.ErrorCode), Remote: ae.Remote}
	}
	return err
}
