package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/p2pd/p2pd/handshake"
	"github.com/p2pd/p2pd/identity"
)

// The TCP carrier's handshake: Noise IK directly on a TCP connection, for
// networks that block UDP. No TLS lies beneath, so there is no exporter to
// bind to; the prologue names the carrier instead, and the suite is
// Noise_IK_25519_AESGCM_SHA256 (handshake.SuiteAESGCMSHA256), because Noise
// then encrypts every byte (noiseconn.go). Each handshake message is framed
// by a 2-byte length, as on QUIC:
//
//	initiator ── [len][message 1] ──▶ responder
//	initiator ◀── [len][message 2] ── responder
//
// The responder reads message 1 within Message1Timeout of the connection's
// accept; an untrusted key, garbage or a timeout all end in a close with no
// byte sent. Nothing binds message 1 to the TCP connection, so a recorded
// one replayed on another connection passes its check and draws message 2.
// The replayer cannot go further: the record keys need the initiator's
// ephemeral private key. So the initiator's first record is a confirmation
// (one byte, tcpConfirm, a record of its own, sent at once after message
// 2), and the responder counts the handshake as done only when it has
// authenticated it, within Message1Timeout:
//
//	initiator ── [record: tcpConfirm] ──▶ responder
const (
	tcpPrologue = handshake.PrologueLabel + " tcp"
	tcpConfirm  = 0x01
)

// tcpInfo is what a TCP handshake proves, and the record ciphers.
type tcpInfo struct {
	peerInfo
	conn *noiseConn
	// secret is the handshake's Result.Secret: the session's lane key, or
	// an extra lane's id, derive from it (tcpLaneKey, tcpLaneID).
	secret [32]byte
	// carrier is CarrierTCP, or CarrierRelayed or CarrierLibp2p for the
	// same handshake over a libp2p stream (relayed.go).
	carrier string
}

// initiateTCP runs the initiator's side on c, a fresh TCP connection to the
// peer id, within ctx. A lane key makes the connection an extra lane of
// the session it names (lane.go).
func (e *Endpoint) initiateTCP(ctx context.Context, c net.Conn, id identity.PeerID, lane []byte) (*tcpInfo, error) {
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	res, info, err := e.noiseInitiate(e.tcpNoiseConfig(), c, id, lane)
	if errors.Is(err, io.EOF) {
		// A responder closes without a byte for every refusal (a key it
		// does not trust, a message 1 not for its key, a full budget), the
		// TCP form of QUIC's CodeRefused.
		err = fmt.Errorf("%w (%w)", err, &CloseError{Code: CodeRefused, Remote: true})
	}
	if err != nil {
		return nil, err
	}
	nc := newNoiseConn(c, res.Send, res.Receive)
	if _, err := nc.Write([]byte{tcpConfirm}); err != nil {
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return &tcpInfo{peerInfo: info, conn: nc, secret: res.Secret, carrier: CarrierTCP}, nil
}

// errWrongPeer refuses a relayed handshake whose Noise key is not that of
// the peer libp2p authenticated.
var errWrongPeer = errors.New("transport: the handshake's key is not the relayed stream's peer")

// respondTCP runs the responder's side on an accepted connection of
// carrier (CarrierTCP, or CarrierRelayed or CarrierLibp2p). A non-zero want is the only peer
// accepted: the one the carrier beneath authenticated already. Nothing is
// written before message 1 is verified and its key trusted (and want's).
func (e *Endpoint) respondTCP(ctx context.Context, c net.Conn, pend *pendingHS, want identity.PeerID, carrier string) (*tcpInfo, error) {
	c.SetDeadline(time.Now().Add(Message1Timeout))
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	msg1, err := readHandshakeMsg(c)
	if err != nil {
		return nil, err
	}
	res, info, err := e.noiseRespond(e.tcpNoiseConfig(), msg1, c, c.RemoteAddr(), carrier, want)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(Message1Timeout))
	nc := newNoiseConn(c, res.Send, res.Receive)
	if err := nc.readConfirm(); err != nil {
		return nil, err
	}
	// Only now is the connection not evictable: without a TLS exporter
	// under it, a message 1 can be replayed (it draws message 2 and no
	// more), so it proves nothing until the confirmation.
	if pend != nil {
		pend.heard.Store(true)
	}
	c.SetDeadline(time.Time{})
	return &tcpInfo{peerInfo: info, conn: nc, secret: res.Secret, carrier: carrier}, nil
}

func (e *Endpoint) tcpNoiseConfig() handshake.Config {
	return handshake.Config{Static: e.noise, Prologue: []byte(tcpPrologue), Suite: handshake.SuiteAESGCMSHA256}
}

// dialTCP connects to addr and runs the initiator's TCP handshake, for a
// new session or, with a lane key, an extra lane of one.
func (e *Endpoint) dialTCP(ctx context.Context, id identity.PeerID, addr string, lane []byte) (*tcpInfo, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport: dial tcp %s: %w", addr, err)
	}
	start := time.Now()
	info, err := e.initiateTCP(ctx, c, id, lane)
	e.reportHandshake(start, err)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%w with %s at tcp %s: %w", ErrHandshake, id.ShortString(), addr, err)
	}
	return info, nil
}
