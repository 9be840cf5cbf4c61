package handshake

import (
	"bufio"
	"bytes"
	"crypto/ecdh"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// vector is one IK handshake test vector: raw X25519 private keys, the
// prologues, and the first two messages. handshakeHash is empty when the
// source has none (flynn/noise's format).
type vector struct {
	name                       string
	initStatic, initEphemeral  []byte
	respStatic, respEphemeral  []byte
	initPrologue, respPrologue []byte
	payload0, ciphertext0      []byte
	payload1, ciphertext1      []byte
	handshakeHash              []byte
	suite                      Suite
	// transport are the messages after the handshake, initiator first,
	// then alternating (cacophony's format): payload and ciphertext.
	transport [][2][]byte
}

// TestVectors replays every vector through NewInitiator and NewResponder with
// pinned ephemerals and compares every byte.
func TestVectors(t *testing.T) {
	vectors := append(cacophonyVectors(t), flynnVectors(t)...)
	if len(vectors) != 6 {
		t.Fatalf("loaded %d vectors, want 6 (2 cacophony + 4 flynn/noise)", len(vectors))
	}
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) { runVector(t, v) })
	}
}

func runVector(t *testing.T, v vector) {
	respStatic := keypair(t, v.respStatic)
	initStatic := keypair(t, v.initStatic)
	initEph, respEph := keypair(t, v.initEphemeral), keypair(t, v.respEphemeral)

	ini, err := NewInitiator(Config{Static: initStatic, Prologue: v.initPrologue, Ephemeral: &initEph, Suite: v.suite}, respStatic.Public)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := NewResponder(Config{Static: respStatic, Prologue: v.respPrologue, Ephemeral: &respEph, Suite: v.suite})
	if err != nil {
		t.Fatal(err)
	}

	msg1, err := ini.WriteMessage1(v.payload0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(msg1, v.ciphertext0) {
		t.Fatalf("message 1:\n got %x\nwant %x", msg1, v.ciphertext0)
	}
	rs, p0, err := resp.ReadMessage1(msg1)
	if err != nil {
		t.Fatal(err)
	}
	if rs != initStatic.Public || !bytes.Equal(p0, v.payload0) {
		t.Fatalf("ReadMessage1 = %x, %x; want %x, %x", rs, p0, initStatic.Public, v.payload0)
	}
	msg2, respRes, err := resp.WriteMessage2(v.payload1)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(msg2, v.ciphertext1) {
		t.Fatalf("message 2:\n got %x\nwant %x", msg2, v.ciphertext1)
	}
	iniRes, err := ini.ReadMessage2(msg2)
	if err != nil {
		t.Fatal(err)
	}
	if iniRes.RemoteStatic != respStatic.Public || !bytes.Equal(iniRes.RemotePayload, v.payload1) {
		t.Fatalf("initiator result %x %x", iniRes.RemoteStatic, iniRes.RemotePayload)
	}
	if respRes.RemoteStatic != initStatic.Public || !bytes.Equal(respRes.RemotePayload, v.payload0) {
		t.Fatalf("responder result %x %x", respRes.RemoteStatic, respRes.RemotePayload)
	}
	if len(iniRes.HandshakeHash) != 32 || !bytes.Equal(iniRes.HandshakeHash, respRes.HandshakeHash) {
		t.Fatalf("handshake hashes differ: %x, %x", iniRes.HandshakeHash, respRes.HandshakeHash)
	}
	if v.handshakeHash != nil && !bytes.Equal(iniRes.HandshakeHash, v.handshakeHash) {
		t.Fatalf("handshake hash:\n got %x\nwant %x", iniRes.HandshakeHash, v.handshakeHash)
	}
	for i, m := range v.transport {
		send, recv := iniRes.Send, respRes.Receive
		if i%2 == 1 {
			send, recv = respRes.Send, iniRes.Receive
		}
		ct, err := send.Seal(nil, m[0])
		if err != nil || !bytes.Equal(ct, m[1]) {
			t.Fatalf("transport message %d:\n got %x (%v)\nwant %x", i, ct, err, m[1])
		}
		pt, err := recv.Open(nil, ct)
		if err != nil || !bytes.Equal(pt, m[0]) {
			t.Fatalf("transport message %d opened to %x (%v), want %x", i, pt, err, m[0])
		}
	}
}

// keypair makes a Keypair from a raw X25519 private key.
func keypair(t testing.TB, priv []byte) Keypair {
	t.Helper()
	k, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	var kp Keypair
	copy(kp.Private[:], priv)
	copy(kp.Public[:], k.PublicKey().Bytes())
	return kp
}

func cacophonyVectors(t *testing.T) []vector {
	b, err := os.ReadFile("testdata/cacophony-IK-25519-subset.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Vectors []struct {
			ProtocolName     string `json:"protocol_name"`
			InitPrologue     string `json:"init_prologue"`
			InitStatic       string `json:"init_static"`
			InitEphemeral    string `json:"init_ephemeral"`
			InitRemoteStatic string `json:"init_remote_static"`
			RespPrologue     string `json:"resp_prologue"`
			RespStatic       string `json:"resp_static"`
			RespEphemeral    string `json:"resp_ephemeral"`
			HandshakeHash    string `json:"handshake_hash"`
			Messages         []struct {
				Payload    string `json:"payload"`
				Ciphertext string `json:"ciphertext"`
			} `json:"messages"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	var out []vector
	for _, v := range file.Vectors {
		var suite Suite
		switch v.ProtocolName {
		case ProtocolName:
		case ProtocolNameTCP:
			suite = SuiteAESGCMSHA256
		default:
			continue
		}
		vec := vector{
			name:          "cacophony/" + v.ProtocolName,
			initStatic:    unhex(t, v.InitStatic),
			initEphemeral: unhex(t, v.InitEphemeral),
			respStatic:    unhex(t, v.RespStatic),
			respEphemeral: unhex(t, v.RespEphemeral),
			initPrologue:  unhex(t, v.InitPrologue),
			respPrologue:  unhex(t, v.RespPrologue),
			payload0:      unhex(t, v.Messages[0].Payload),
			ciphertext0:   unhex(t, v.Messages[0].Ciphertext),
			payload1:      unhex(t, v.Messages[1].Payload),
			ciphertext1:   unhex(t, v.Messages[1].Ciphertext),
			handshakeHash: unhex(t, v.HandshakeHash),
			suite:         suite,
		}
		for _, m := range v.Messages[2:] {
			vec.transport = append(vec.transport, [2][]byte{unhex(t, m.Payload), unhex(t, m.Ciphertext)})
		}
		// The vector's init_remote_static is the responder's public key.
		if kp := keypair(t, vec.respStatic); !bytes.Equal(kp.Public[:], unhex(t, v.InitRemoteStatic)) {
			t.Fatalf("%s: init_remote_static is not resp_static's public key", v.ProtocolName)
		}
		out = append(out, vec)
	}
	return out
}

// flynnVectors parses the blocks of flynn/noise's vectors.txt format.
func flynnVectors(t *testing.T) []vector {
	f, err := os.Open("testdata/flynn-IK-25519-ChaChaPoly-BLAKE2s.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out []vector
		cur map[string]string
	)
	flush := func() {
		if cur == nil {
			return
		}
		if cur["handshake"] != ProtocolName || cur["preshared_key"] != "" {
			t.Fatalf("unexpected block %q in the flynn subset", cur["handshake"])
		}
		prologue := unhex(t, cur["prologue"])
		out = append(out, vector{
			name:          "flynn/" + cur["handshake"] + "/" + string(rune('0'+len(out))),
			initStatic:    unhex(t, cur["init_static"]),
			initEphemeral: unhex(t, cur["gen_init_ephemeral"]),
			respStatic:    unhex(t, cur["resp_static"]),
			respEphemeral: unhex(t, cur["gen_resp_ephemeral"]),
			initPrologue:  prologue,
			respPrologue:  prologue,
			payload0:      unhex(t, cur["msg_0_payload"]),
			ciphertext0:   unhex(t, cur["msg_0_ciphertext"]),
			payload1:      unhex(t, cur["msg_1_payload"]),
			ciphertext1:   unhex(t, cur["msg_1_ciphertext"]),
		})
		cur = nil
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			flush()
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("bad line %q", line)
		}
		if cur == nil {
			cur = map[string]string{}
		}
		cur[key] = val
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	flush()
	return out
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
