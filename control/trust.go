package control

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// Trust-list endpoints:
//
//	GET  /v1/invite        → Invite
//	POST /v1/trust/add     TrustAddRequest → TrustChange
//	POST /v1/trust/remove  {"name": "db"} → TrustChange
//	GET  /v1/pending       → {"pending": [Pending...]}
//
// They are served when the Backend also implements TrustBackend.

// Invite is this node's invite line and what it carries.
type Invite struct {
	Line string `json:"line"` // "p2pd1:...", for p2pctl trust add on another node
	ID   string `json:"id"`
	Name string `json:"name"`
	// Addresses are "ip udp/PORT tcp/PORT" (either part absent when that
	// carrier does not listen there).
	Addresses []string `json:"addresses"`
}

// TrustAddRequest is the body of POST /v1/trust/add.
type TrustAddRequest struct {
	Name  string   `json:"name"`            // the name to trust the peer under
	Peer  string   `json:"peer"`            // a peer ID, or an invite line
	Allow []string `json:"allow,omitempty"` // services the peer may use
}

type trustRemoveRequest struct {
	Name string `json:"name"`
}

// TrustChange is the answer to a trust add or remove.
type TrustChange struct {
	Name      string   `json:"name"`
	ID        string   `json:"id"`
	Addresses []string `json:"addresses"`
	// Origin is where the peer was listed: "trust" (the trust file) or
	// "config" (the config file; a removal is recorded in the trust file).
	Origin string `json:"origin"`
	// Allowed are the services the peer may use now (add), or could use
	// before (remove).
	Allowed   []string `json:"allowed"`
	TrustFile string   `json:"trust_file"`
	// Closed is the number of sessions a removal closed.
	Closed int `json:"closed,omitempty"`
}

// Pending is a key whose handshake the daemon refused recently because it
// is not trusted. ID is the peer's ID: the handshake proves the peer's
// X25519 key, and the peer states its Ed25519 key, checked against it.
// AltID is set only for a peer that does not state it (an older release):
// its X25519 key fixes its peer ID up to one bit, so the ID is ID or AltID
// (`p2pd id` on that peer prints the one it uses); trusting either admits
// the same key.
type Pending struct {
	ID        string    `json:"id"`
	AltID     string    `json:"alt_id,omitempty"`
	Name      string    `json:"name,omitempty"` // the name it claims in its handshake
	Remote    string    `json:"remote"`         // the address of its latest attempt
	Carrier   string    `json:"carrier"`        // "quic" or "tcp"
	Count     uint64    `json:"count"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

type pendingResponse struct {
	Pending []Pending `json:"pending"`
}

// TrustBackend is the part of a Backend that makes invites and changes the
// trust list. Changes are applied at once, as a reload applies them; an
// error changes nothing.
type TrustBackend interface {
	Invite(ctx context.Context) (Invite, error)
	// TrustAdd trusts a peer. A request the daemon will not carry out as
	// asked (a name or ID already trusted, an unknown service, a bad
	// invite) yields a *RejectedError.
	TrustAdd(ctx context.Context, req TrustAddRequest) (TrustChange, error)
	// TrustRemove takes the peer name out of the trust list and every
	// allow list. An unknown name yields an error wrapping ErrNotFound.
	TrustRemove(ctx context.Context, name string) (TrustChange, error)
	Pending(ctx context.Context) ([]Pending, error)
}

var _ TrustBackend = (*Client)(nil)

// RejectedError is a change the daemon refuses as asked; the Server answers
// it with 400, and p2pctl exits 2.
type RejectedError struct{ Err error }

func (e *RejectedError) Error() string { return e.Err.Error() }
func (e *RejectedError) Unwrap() error { return e.Err }

// errNoTrust answers trust requests to a Backend without TrustBackend.
var errNoTrust = errors.New("control: this daemon cannot change its trust list from the command line; upgrade p2pd")

// maxTrustAllow bounds the allow list of one trust add request.
const maxTrustAllow = 64

func (s *Server) trust() (TrustBackend, error) {
	tb, ok := s.backend.(TrustBackend)
	if !ok {
		return nil, errNoTrust
	}
	return tb, nil
}

func (s *Server) getInvite(ctx context.Context, _ *http.Request) (any, error) {
	tb, err := s.trust()
	if err != nil {
		return nil, err
	}
	inv, err := tb.Invite(ctx)
	inv.Addresses = nonNil(inv.Addresses)
	return inv, err
}

func (s *Server) getPending(ctx context.Context, _ *http.Request) (any, error) {
	tb, err := s.trust()
	if err != nil {
		return nil, err
	}
	ps, err := tb.Pending(ctx)
	return pendingResponse{nonNil(ps)}, err
}

func (s *Server) postTrustAdd(ctx context.Context, r *http.Request) (any, error) {
	tb, err := s.trust()
	if err != nil {
		return nil, err
	}
	var req TrustAddRequest
	if err := decodeStrict(r.Body, &req); err != nil {
		return nil, err
	}
	if err := checkField("name", req.Name, maxPeerLen); err != nil {
		return nil, err
	}
	if err := checkField("peer", req.Peer, MaxRequestBytes); err != nil {
		return nil, err
	}
	if len(req.Allow) > maxTrustAllow {
		return nil, badRequest(`"allow" has %d services, more than %d`, len(req.Allow), maxTrustAllow)
	}
	for _, a := range req.Allow {
		if err := checkField("allow", a, maxPeerLen); err != nil {
			return nil, err
		}
	}
	ch, err := tb.TrustAdd(ctx, req)
	ch.Addresses, ch.Allowed = nonNil(ch.Addresses), nonNil(ch.Allowed)
	return ch, err
}

func (s *Server) postTrustRemove(ctx context.Context, r *http.Request) (any, error) {
	tb, err := s.trust()
	if err != nil {
		return nil, err
	}
	var req trustRemoveRequest
	if err := decodeStrict(r.Body, &req); err != nil {
		return nil, err
	}
	if err := checkField("name", req.Name, maxPeerLen); err != nil {
		return nil, err
	}
	ch, err := tb.TrustRemove(ctx, req.Name)
	ch.Addresses, ch.Allowed = nonNil(ch.Addresses), nonNil(ch.Allowed)
	return ch, err
}

// checkField checks a string field of a request: present, bounded, printable.
func checkField(name, v string, max int) error {
	switch {
	case v == "":
		return badRequest("%q is missing or empty", name)
	case len(v) > max:
		return badRequest("%q is %d bytes, more than %d", name, len(v), max)
	case !utf8.ValidString(v) || strings.ContainsFunc(v, isControl):
		return badRequest("%q contains invalid or control characters", name)
	}
	return nil
}

// Invite returns the daemon's invite line.
func (c *Client) Invite(ctx context.Context) (Invite, error) {
	var inv Invite
	err := c.do(ctx, http.MethodGet, "/v1/invite", nil, &inv)
	return inv, err
}

// TrustAdd asks the daemon to trust a peer.
func (c *Client) TrustAdd(ctx context.Context, req TrustAddRequest) (TrustChange, error) {
	var ch TrustChange
	err := c.do(ctx, http.MethodPost, "/v1/trust/add", req, &ch)
	return ch, rejected(err)
}

// TrustRemove asks the daemon to stop trusting the peer name. A name the
// daemon does not trust is refused: a *RejectedError that matches
// ErrNotFound.
func (c *Client) TrustRemove(ctx context.Context, name string) (TrustChange, error) {
	var ch TrustChange
	err := c.do(ctx, http.MethodPost, "/v1/trust/remove", trustRemoveRequest{Name: name}, &ch)
	var se *ServerError
	if errors.As(err, &se) && se.StatusCode == http.StatusNotFound && !strings.HasPrefix(se.Message, noRoute) {
		return ch, &RejectedError{Err: err}
	}
	return ch, rejected(err)
}

// Pending returns the keys the daemon refused recently.
func (c *Client) Pending(ctx context.Context) ([]Pending, error) {
	var r pendingResponse
	err := c.do(ctx, http.MethodGet, "/v1/pending", nil, &r)
	return r.Pending, err
}

// rejected turns a 400 answer into a *RejectedError.
func rejected(err error) error {
	var se *ServerError
	if errors.As(err, &se) && se.StatusCode == http.StatusBadRequest {
		return &RejectedError{Err: err}
	}
	return err
}
