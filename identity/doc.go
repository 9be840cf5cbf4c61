// Package identity holds a p2pd node's long-term key and the names derived
// from it.
//
// A node has one Ed25519 key (PrivateKey). Its public half (PublicKey) is the
// node's identity; peers know it only by that key, written as a libp2p peer ID
// (PeerID):
//
//	public key protobuf  = 08 01 12 20 || key           (36 bytes: KeyType=Ed25519, Data=key)
//	peer ID (multihash)  = 00 24 || protobuf            (38 bytes: identity hash, length 36)
//	PeerID.String()      = base58btc(multihash)         "12D3KooW…" (52 characters)
//	CIDv1                = 01 72 || multihash           (40 bytes: version 1, codec libp2p-key)
//	PeerID.Base36()      = "k" || base36(CIDv1)         "k51…" (62 characters, lower case, fits a DNS label)
//
// The Noise static key is derived from the Ed25519 key, so a peer ID alone is
// enough to start a Noise IK handshake: the X25519 private key is the clamped
// first half of SHA-512 of the seed (libsodium's
// crypto_sign_ed25519_sk_to_curve25519), and the X25519 public key is the
// Edwards→Montgomery map of the Ed25519 public key. This reuse of one key for
// signatures and Diffie-Hellman is tied to protocol version p2pd/1; a later
// version may replace it with a separate X25519 key signed by the Ed25519 key.
//
// A key file holds the 32-byte Ed25519 seed as text, "privkey:" followed by 64
// lower-case hex digits and a newline. It is created 0600 and refused when
// readable by group or others.
//
// The package does no logging and starts no goroutines; all its values are
// safe for concurrent use because they are immutable.
package identity
