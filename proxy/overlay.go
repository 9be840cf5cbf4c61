package proxy

import (
	"context"
	"errors"
	"os"
)

// Overlay is what the SOCKS5 and HTTP proxies need from the node. The node
// implements it; cmd/p2pd passes it to NewServer with a Classifier.
type Overlay interface {
	// DialService opens a stream early: payload may follow at once and the
	// service's answer comes with the first Read. The HTTP proxy uses it
	// for plain requests, whose head it writes straight away.
	Dialer
	// DialServiceAnswered opens a stream and returns once the service has
	// answered; a refusal is the returned error. SOCKS5 and CONNECT use it:
	// their client waits for the proxy's reply before it sends a byte.
	DialServiceAnswered(ctx context.Context, peer, service string) (Conn, error)
	// ResolvePeer maps the <peer> label of a .p2p name to the peer the
	// dials take: a [[peers]] name in any case (it may hold dots), or a
	// peer ID as a base36 CIDv1 in any case. An unknown label is an error
	// that the Classifier reports as KindUnknownPeer.
	ResolvePeer(label string) (string, error)
}

// ErrorKind is why a proxied connection or request failed. It picks the
// SOCKS5 reply code and the HTTP status, names the log line's reason and
// keys the per-listener error counters that p2pctl proxies shows.
type ErrorKind uint8

// Error kinds. The first group comes from the overlay, through the
// Classifier; the second is found by the proxy itself.
const (
	KindOther             ErrorKind = iota // an error the Classifier does not know
	KindUnknownPeer                        // the peer is not in [[peers]]
	KindUnknownService                     // the peer has no such service
	KindAccessDenied                       // the service does not allow this node
	KindTargetRefused                      // the service's target refused the connection
	KindTargetUnreachable                  // the service's target could not be reached
	KindPeerUnreachable                    // no session to the peer could be had
	KindTimeout                            // the overlay did not answer in time
	KindOverloaded                         // the peer is at a limit
	KindBadRequest                         // a request the client or the peer found malformed

	KindNotP2P    // a destination outside .p2p (IP addresses, other names)
	KindAuth      // missing or wrong credentials
	KindHandshake // a client that broke the protocol or timed out before its request
	numKinds
)

var kindNames = [numKinds]string{
	KindOther:             "other",
	KindUnknownPeer:       "unknown_peer",
	KindUnknownService:    "unknown_service",
	KindAccessDenied:      "access_denied",
	KindTargetRefused:     "target_refused",
	KindTargetUnreachable: "target_unreachable",
	KindPeerUnreachable:   "peer_unreachable",
	KindTimeout:           "timeout",
	KindOverloaded:        "overloaded",
	KindBadRequest:        "bad_request",
	KindNotP2P:            "not_p2p",
	KindAuth:              "auth",
	KindHandshake:         "handshake",
}

// String is the kind's name in logs, counters and p2pctl: "access_denied".
func (k ErrorKind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "other"
}

// kindText says what a kind means, for HTTP error bodies.
var kindText = [numKinds]string{
	KindOther:             "overlay error",
	KindUnknownPeer:       "unknown peer",
	KindUnknownService:    "unknown service",
	KindAccessDenied:      "access denied",
	KindTargetRefused:     "the service's target refused the connection",
	KindTargetUnreachable: "the service's target is unreachable",
	KindPeerUnreachable:   "peer unreachable",
	KindTimeout:           "timed out",
	KindOverloaded:        "the peer is overloaded",
	KindBadRequest:        "bad request",
	KindNotP2P:            "only <service>.<peer>.p2p names are proxied",
	KindAuth:              "proxy authentication required",
	KindHandshake:         "bad proxy handshake",
}

// A Classifier tells the kind of an error that the Overlay returned. The
// proxy never imports the node or the transport, whose errors these are
// (node.ErrUnknownPeer, transport.StatusError): cmd/p2pd, which imports
// both, supplies the Classifier. Errors the proxy finds itself carry their
// kind and never reach it.
type Classifier func(error) ErrorKind

// requestError is a failure the proxy finds itself, with its kind.
type requestError struct {
	kind ErrorKind
	msg  string
}

func (e *requestError) Error() string { return "proxy: " + e.msg }

func refuse(kind ErrorKind, msg string) error { return &requestError{kind: kind, msg: msg} }

// kindOf classifies err: the proxy's own errors by their kind, deadlines as
// timeouts, the rest by classify (nil: KindOther).
func kindOf(err error, classify Classifier) ErrorKind {
	var re *requestError
	if errors.As(err, &re) {
		return re.kind
	}
	if classify != nil {
		if k := classify(err); k != KindOther {
			return k
		}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return KindTimeout
	}
	return KindOther
}

// infoKind reports whether a failure of kind k is logged at INFO: those
// from the overlay, and failed authentication. A local client's other
// mistakes (a name outside .p2p, a broken handshake) are logged at DEBUG,
// since a client set up to send everything through the proxy makes many.
func infoKind(k ErrorKind) bool { return k < KindNotP2P || k == KindAuth }
