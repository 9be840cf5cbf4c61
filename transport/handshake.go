package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/p2pd/p2pd/handshake"
	"github.com/p2pd/p2pd/identity"
	"github.com/quic-go/quic-go"
)

// Handshake framing: every Noise message is prefixed by its length.
const (
	hsLenLen = 2
	// MaxHandshakeMessage bounds a framed Noise message: IK message 1 is
	// handshake.Message1Overhead (96, its payload's tag included) plus the
	// payload, message 2 Message2Overhead (48) plus its payload; 16 bytes
	// of slack.
	MaxHandshakeMessage = 96 + handshake.MaxPayloadSize + 16
)

// peerInfo is what a completed handshake proves about the other side.
type peerInfo struct {
	id       identity.PeerID
	name     string
	instance uint64
	join     *Session // for an inbound lane: the session it joins
}

// errNoSession refuses a lane whose session this side does not have (any
// more), or has for another peer.
var errNoSession = errors.New("transport: lane for an unknown session")

func writeHandshakeMsg(w io.Writer, msg []byte) error {
	if len(msg) > MaxHandshakeMessage {
		return fmt.Errorf("transport: handshake message of %d bytes, limit %d", len(msg), MaxHandshakeMessage)
	}
	b := make([]byte, 0, hsLenLen+len(msg))
	b = binary.BigEndian.AppendUint16(b, uint16(len(msg)))
	_, err := w.Write(append(b, msg...))
	return err
}

func readHandshakeMsg(r io.Reader) ([]byte, error) {
	var hdr [hsLenLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n > MaxHandshakeMessage {
		return nil, fmt.Errorf("transport: handshake message of %d bytes, limit %d", n, MaxHandshakeMessage)
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(r, msg); err != nil {
		return nil, err
	}
	return msg, nil
}

func (e *Endpoint) localPayload(lane []byte) ([]byte, error) {
	p := handshake.Payload{Version: handshake.ProtocolVersion, Name: e.cfg.Name, Instance: e.cfg.Instance, Lane: lane}
	return p.AppendBinary(nil)
}

// helloPayload is message 1's payload: localPayload and this node's Ed25519
// key, so that a responder that refuses it can name its peer ID exactly.
func (e *Endpoint) helloPayload(lane []byte) ([]byte, error) {
	pub := e.cfg.Key.Public()
	p := handshake.Payload{Version: handshake.ProtocolVersion, Name: e.cfg.Name, Instance: e.cfg.Instance, Lane: lane, Identity: pub[:]}
	return p.AppendBinary(nil)
}

// readHello parses message 1's payload and checks its identity record
// against static, the key message 1 proved. id is the initiator's exact peer
// ID, zero when it sent none (an older node). The responder calls it before
// it decides trust, so that a refusal can name the peer; an error is a
// failed handshake whether or not the key is trusted.
func readHello(static [32]byte, payload []byte) (p handshake.Payload, id identity.PeerID, err error) {
	p, _, err = handshake.ParsePayload(payload)
	if err != nil {
		return handshake.Payload{}, identity.PeerID{}, err
	}
	if id, err = p.CheckIdentity(static); err != nil {
		return handshake.Payload{}, identity.PeerID{}, err
	}
	return p, id, nil
}

func (e *Endpoint) noiseConfig(conn *quic.Conn) (handshake.Config, error) {
	exp, err := exporter(conn.ConnectionState().TLS)
	if err != nil {
		return handshake.Config{}, err
	}
	return handshake.Config{Static: e.noise, Prologue: handshake.BindingPrologue(exp)}, nil
}

// noiseInitiate runs the initiator's two messages on rw, a byte stream of
// any carrier to the peer id, with cfg: message 1 with our hello (and the
// lane key, if any), then message 2, whose payload names the peer.
func (e *Endpoint) noiseInitiate(cfg handshake.Config, rw io.ReadWriter, id identity.PeerID, lane []byte) (handshake.Result, peerInfo, error) {
	remote, err := id.PublicKey().NoisePublic()
	if err != nil {
		return handshake.Result{}, peerInfo{}, err
	}
	hs, err := handshake.NewInitiator(cfg, remote)
	if err != nil {
		return handshake.Result{}, peerInfo{}, err
	}
	payload, err := e.helloPayload(lane)
	if err != nil {
		return handshake.Result{}, peerInfo{}, err
	}
	msg1, err := hs.WriteMessage1(payload)
	if err != nil {
		return handshake.Result{}, peerInfo{}, err
	}
	if err := writeHandshakeMsg(rw, msg1); err != nil {
		return handshake.Result{}, peerInfo{}, err
	}
	msg2, err := readHandshakeMsg(rw)
	if err != nil {
		return handshake.Result{}, peerInfo{}, err
	}
	res, err := hs.ReadMessage2(msg2)
	if err != nil {
		return handshake.Result{}, peerInfo{}, err
	}
	p, _, err := handshake.ParsePayload(res.RemotePayload)
	if err != nil {
		return handshake.Result{}, peerInfo{}, err
	}
	return res, peerInfo{id: id, name: p.Name, instance: p.Instance}, nil
}

// errLaneOnLibp2p refuses a lane key on a libp2p stream: a relayed session
// has its single stream.
var errLaneOnLibp2p = errors.New("transport: a lane key on a libp2p stream")

// noiseRespond answers msg1, read from a connection of carrier at remote,
// with cfg, and writes message 2 to w. Nothing is written before message 1
// is verified and its key trusted; a non-zero want is the only peer
// accepted (the one the carrier beneath authenticated already). A lane key
// must name a live session of the same peer over the same carrier (QUIC or
// TCP), which the connection then joins (peerInfo.join).
func (e *Endpoint) noiseRespond(cfg handshake.Config, msg1 []byte, w io.Writer, remote net.Addr, carrier string, want identity.PeerID) (handshake.Result, peerInfo, error) {
	hs, err := handshake.NewResponder(cfg)
	if err != nil {
		return handshake.Result{}, peerInfo{}, err
	}
	static, payload, err := hs.ReadMessage1(msg1)
	if err != nil {
		return handshake.Result{}, peerInfo{}, err
	}
	p, claimed, perr := readHello(static, payload)
	id, ok := e.cfg.Trust(static)
	if !ok {
		e.refused(static, p, claimed, remote, carrier)
		return handshake.Result{}, peerInfo{}, ErrUntrusted
	}
	if !want.IsZero() && id != want {
		return handshake.Result{}, peerInfo{}, errWrongPeer
	}
	if perr != nil {
		return handshake.Result{}, peerInfo{}, perr
	}
	var join *Session
	if p.Lane != nil {
		if carrier != CarrierQUIC && carrier != CarrierTCP {
			return handshake.Result{}, peerInfo{}, errLaneOnLibp2p
		}
		if join = e.laneSession(p.Lane, id); join == nil || join.Carrier() != carrier {
			return handshake.Result{}, peerInfo{}, errNoSession
		}
	}
	ours, err := e.localPayload(nil)
	if err != nil {
		return handshake.Result{}, peerInfo{}, err
	}
	msg2, res, err := hs.WriteMessage2(ours)
	if err != nil {
		return handshake.Result{}, peerInfo{}, err
	}
	if err := writeHandshakeMsg(w, msg2); err != nil {
		return handshake.Result{}, peerInfo{}, err
	}
	return res, peerInfo{id: id, name: p.Name, instance: p.Instance, join: join}, nil
}

// initiate runs the initiator's side on a fresh QUIC connection to the peer
// id, on the connection's first stream, which becomes the control stream.
func (e *Endpoint) initiate(ctx context.Context, conn *quic.Conn, id identity.PeerID, lane []byte) (*quic.Stream, peerInfo, error) {
	cfg, err := e.noiseConfig(conn)
	if err != nil {
		return nil, peerInfo{}, err
	}
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, peerInfo{}, err
	}
	if dl, ok := ctx.Deadline(); ok {
		st.SetDeadline(dl)
	}
	_, info, err := e.noiseInitiate(cfg, st, id, lane)
	if err != nil {
		return nil, peerInfo{}, err
	}
	st.SetDeadline(time.Time{})
	return st, info, nil
}

// respond runs the responder's side on an accepted QUIC connection. Nothing
// but the first stream is read before message 1 is verified and its key
// trusted.
func (e *Endpoint) respond(ctx context.Context, conn *quic.Conn, pend *pendingHS) (*quic.Stream, peerInfo, error) {
	ctx1, cancel := context.WithTimeout(ctx, Message1Timeout)
	defer cancel()
	st, err := conn.AcceptStream(ctx1)
	if err != nil {
		return nil, peerInfo{}, err
	}
	if st.StreamID() != 0 {
		return nil, peerInfo{}, fmt.Errorf("transport: handshake on stream %d, want 0", st.StreamID())
	}
	if dl, ok := ctx1.Deadline(); ok {
		st.SetDeadline(dl)
	}
	msg1, err := readHandshakeMsg(st)
	if err != nil {
		return nil, peerInfo{}, err
	}
	pend.heard.Store(true)
	if dl, ok := ctx.Deadline(); ok {
		st.SetDeadline(dl)
	}
	cfg, err := e.noiseConfig(conn)
	if err != nil {
		return nil, peerInfo{}, err
	}
	_, info, err := e.noiseRespond(cfg, msg1, st, conn.RemoteAddr(), CarrierQUIC, identity.PeerID{})
	if err != nil {
		return nil, peerInfo{}, err
	}
	st.SetDeadline(time.Time{})
	return st, info, nil
}
