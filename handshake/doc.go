// Package handshake is p2pd's Noise IK handshake as a state machine without
// I/O: bytes in, bytes out, and a Result. It also defines the Payload that the
// two handshake messages carry.
//
// # Protocol
//
// The handshake is Noise_IK_25519_ChaChaPoly_BLAKE2s (flynn/noise). The
// initiator knows the responder's static X25519 key in advance (derived from
// its peer ID, see package identity); the responder learns the initiator's
// static key from message 1 and decides whether it trusts it before it
// answers. The prologue binds the handshake to its transport: transport
// passes BindingPrologue(exporter), "p2pd/1 noise-ik" followed by TLS exporter
// keying material of the QUIC connection, so a handshake relayed or replayed
// onto another connection fails.
//
//	message 1, initiator → responder    (e, es, s, ss)
//	+-----------------+------------------------------+---------------------------+
//	| e: 32           | enc(s): 32 + 16 tag          | enc(payload): len + 16 tag |
//	+-----------------+------------------------------+---------------------------+
//	                                          Message1Overhead = 96 bytes + payload
//
//	message 2, responder → initiator    (e, ee, se)
//	+-----------------+---------------------------+
//	| e: 32           | enc(payload): len + 16 tag |
//	+-----------------+---------------------------+
//	                    Message2Overhead = 48 bytes + payload
//
// A message is at most MaxMessageSize (65535) bytes, Noise's limit; the
// caller frames it (transport prefixes a 2-byte big-endian length).
//
// Message 1's payload can be replayed (within the same channel binding) and is
// weak against key-compromise impersonation, so payloads carry only a
// version, a feature list, a name, a lane key and the sender's public key,
// never service data.
//
// # State machines
//
//	Initiator:  new ──WriteMessage1──▶ sent ──ReadMessage2──▶ done
//	Responder:  new ──ReadMessage1───▶ read ──WriteMessage2─▶ done
//	any error, from any state ──────▶ dead
//
// Each method is valid in exactly one state. A method called in any other
// state returns ErrState. After any error — a failed authentication, an
// oversized message or payload, a random-source failure — the machine is
// dead: every later call returns ErrState, and the caller must close the
// connection and start over with a new machine. Initiator and Responder are
// not safe for concurrent use.
//
// # Payload
//
// The application payload inside both messages (Payload, all integers big
// endian):
//
//	 0         1                     9          10
//	+---------+---------------------+----------+--------------------+----------+----------+-----------+-----------+
//	| version | instance            | nfeature | feature × nfeature | namelen  | name     | extlen    | ext       |
//	| u8      | u64                 | u8       | u16 each           | u8       | namelen  | u16       | extlen    |
//	+---------+---------------------+----------+--------------------+----------+----------+-----------+-----------+
//
// version is the highest protocol version the sender speaks (ProtocolVersion
// = 1; 0 is invalid). Versions 1 to LastCompatibleVersion promise this layout
// and add new fields only inside ext; higher
// versions are reserved for an incompatible layout and rejected with
// ErrUnsupportedVersion. nfeature ≤ MaxFeatures, namelen ≤ MaxNameLen (valid
// UTF-8, no control characters), and the whole encoding, ext included, is at
// most MaxPayloadSize bytes.
//
// ext is a list of records, each a 1-byte type, a 1-byte length and that
// many bytes. Unknown types are skipped, and so are trailing bytes too short
// to be a record (room for a later layout). Type 1, lane (LaneKeySize = 16
// bytes), says that the connection is an extra connection of an established
// session, the one whose lane key this is (see package transport), not a
// session of its own; a lane record of another length is ErrInvalidPayload.
// Type 2, identity (IdentityKeySize = 32 bytes), is the sender's Ed25519
// public key, which the initiator sends in message 1: its static key fixes
// its peer ID only up to a sign bit, this names it exactly. The responder
// checks it against the static key message 1 proved (Payload.CheckIdentity)
// before it decides trust; a key that does not match is ErrInvalidPayload, a
// failed handshake like any unreadable payload. A message 1 without it (an
// older node) is valid. An identity record of another length is
// ErrInvalidPayload.
package handshake
