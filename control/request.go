package control

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// maxPeerLen bounds the peer field of a ping request: a configured name or a
// peer ID (52 characters in base58, 62 as base36 CID) fits easily.
const maxPeerLen = 256

// requestError is a malformed request body; the server answers it with 400.
type requestError struct{ err error }

func (e *requestError) Error() string { return "control: bad request: " + e.err.Error() }
func (e *requestError) Unwrap() error { return e.err }

func badRequest(format string, args ...any) error {
	return &requestError{fmt.Errorf(format, args...)}
}

// pingRequest is the body of POST /v1/ping.
type pingRequest struct {
	Peer string `json:"peer"`
	// TimeoutMillis bounds the ping, the dial it may need included: 0
	// means DefaultPingTimeout, at most MaxPingTimeout.
	TimeoutMillis int64 `json:"timeout_ms,omitempty"`
}

// Bounds of a ping's timeout.
const (
	DefaultPingTimeout = 10 * time.Second
	MaxPingTimeout     = 50 * time.Second // inside the handler's own bound
)

// timeout is the request's timeout with the default applied.
func (r pingRequest) timeout() time.Duration {
	if r.TimeoutMillis == 0 {
		return DefaultPingTimeout
	}
	return time.Duration(r.TimeoutMillis) * time.Millisecond
}

// decodePingRequest reads one JSON object {"peer": "..."} from r. Unknown
// fields, trailing data, an empty or oversized peer are errors.
func decodePingRequest(r io.Reader) (pingRequest, error) {
	var req pingRequest
	if err := decodeStrict(r, &req); err != nil {
		return pingRequest{}, err
	}
	switch {
	case req.Peer == "":
		return pingRequest{}, badRequest(`"peer" is missing or empty; name a peer by name or peer ID`)
	case len(req.Peer) > maxPeerLen:
		return pingRequest{}, badRequest(`"peer" is %d bytes, more than %d`, len(req.Peer), maxPeerLen)
	case !utf8.ValidString(req.Peer) || strings.ContainsFunc(req.Peer, isControl):
		return pingRequest{}, badRequest(`"peer" contains invalid or control characters`)
	case req.TimeoutMillis < 0 || req.TimeoutMillis > MaxPingTimeout.Milliseconds():
		return pingRequest{}, badRequest(`"timeout_ms" is %d; give 1 to %d, or leave it out for %v`, req.TimeoutMillis, MaxPingTimeout.Milliseconds(), DefaultPingTimeout)
	}
	return req, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || r == utf8.RuneError }

// decodeEmptyRequest accepts an empty body or an empty JSON object.
func decodeEmptyRequest(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return readError(err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	return decodeStrict(bytes.NewReader(b), &struct{}{})
}

// decodeStrict decodes exactly one JSON object from r into v, rejecting
// unknown fields and anything after the object.
func decodeStrict(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return badRequest("empty body; send a JSON object")
		}
		return readError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return readError(err)
		}
		return badRequest("data after the JSON object")
	}
	return nil
}

// readError turns a body read or JSON error into a requestError.
func readError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return badRequest("body larger than %d bytes", tooBig.Limit)
	}
	return &requestError{err}
}
