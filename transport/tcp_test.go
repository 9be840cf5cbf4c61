package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/libp2p/go-yamux/v5"
	"github.com/p2pd/p2pd/handshake"
	"github.com/p2pd/p2pd/identity"
)

// tcpPair runs a TCP handshake between endpoints of ka (initiator) and kb
// (responder) through dial, which connects to the responder's listener
// (directly, or through a relay a test puts between them).
func tcpPair(t testing.TB, ka, kb identity.PrivateKey, trustB func([32]byte) (identity.PeerID, bool), dial func(addr string) (net.Conn, error)) (*tcpInfo, error, *tcpInfo, error) {
	t.Helper()
	a := newEndpoint(t, ka, trustOnly(t, kb))
	b := newEndpoint(t, kb, trustB)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		info *tcpInfo
		err  error
	}
	srv := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srv <- result{err: err}
			return
		}
		info, err := b.respondTCP(context.Background(), c, nil, identity.PeerID{}, CarrierTCP)
		if err != nil {
			c.Close()
		}
		srv <- result{info, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := dial(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ai, aerr := a.initiateTCP(ctx, c, kb.PeerID(), nil)
	if aerr != nil {
		c.Close()
	}
	r := <-srv
	for _, i := range []*tcpInfo{ai, r.info} {
		if i != nil {
			t.Cleanup(func() { i.conn.Close() })
		}
	}
	return ai, aerr, r.info, r.err
}

func dialDirect(addr string) (net.Conn, error) { return net.Dial("tcp", addr) }

// TestTCPCarrierRecords: the handshake proves both identities, and 8 MiB
// each way arrive byte-exact through the records, with a half-close.
func TestTCPCarrierRecords(t *testing.T) {
	ka, kb := newKey(t), newKey(t)
	ai, aerr, bi, berr := tcpPair(t, ka, kb, trustOnly(t, ka), dialDirect)
	if aerr != nil || berr != nil {
		t.Fatalf("handshake: initiator %v, responder %v", aerr, berr)
	}
	if ai.id != kb.PeerID() || bi.id != ka.PeerID() || ai.name != "test" || bi.instance != 7 {
		t.Fatalf("identities: initiator sees %s %q, responder sees %s %d", ai.id, ai.name, bi.id, bi.instance)
	}
	for _, dir := range []struct{ w, r *noiseConn }{{ai.conn, bi.conn}, {bi.conn, ai.conn}} {
		msg := make([]byte, 8<<20+13)
		rand.Read(msg)
		go func() {
			for rest := msg; len(rest) > 0; {
				n := min(len(rest), 100_000+len(rest)%7)
				dir.w.Write(rest[:n])
				rest = rest[n:]
			}
		}()
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(dir.r, got); err != nil || sha256.Sum256(got) != sha256.Sum256(msg) {
			t.Fatalf("%d bytes through the records: %v, equal %v", len(msg), err, bytes.Equal(got, msg))
		}
	}
	ai.conn.CloseWrite()
	if n, err := bi.conn.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after the peer's half-close: %d bytes, %v; want EOF", n, err)
	}
}

// TestTCPCarrierYamux: yamux runs over the records both ways.
func TestTCPCarrierYamux(t *testing.T) {
	ka, kb := newKey(t), newKey(t)
	ai, aerr, bi, berr := tcpPair(t, ka, kb, trustOnly(t, ka), dialDirect)
	if aerr != nil || berr != nil {
		t.Fatalf("handshake: %v, %v", aerr, berr)
	}
	cli, err := yamux.Client(ai.conn, yamux.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	srv, err := yamux.Server(bi.conn, yamux.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		for {
			st, err := srv.AcceptStream()
			if err != nil {
				return
			}
			go func() { io.Copy(st, st); st.CloseWrite() }()
		}
	}()
	msg := make([]byte, 1<<20)
	rand.Read(msg)
	for range 4 {
		st, err := cli.OpenStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		go func() { st.Write(msg); st.CloseWrite() }()
		got, err := io.ReadAll(st)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo over yamux: %d bytes, %v", len(got), err)
		}
		st.Close()
	}
}

// TestTCPCarrierRefusals: an untrusted key and garbage get a close and not
// one byte; a relay that swaps the ephemeral key in message 1 makes the
// handshake fail; a replayed message 1 draws message 2 but never passes the
// confirmation; a tampered record ends the connection.
func TestTCPCarrierRefusals(t *testing.T) {
	ka, kb := newKey(t), newKey(t)

	t.Run("untrusted", func(t *testing.T) {
		_, aerr, _, berr := tcpPair(t, ka, kb, trustOnly(t), dialDirect)
		if !errors.Is(berr, ErrUntrusted) || aerr == nil {
			t.Fatalf("responder %v, initiator %v; want ErrUntrusted and a failed dial", berr, aerr)
		}
	})

	t.Run("key swapped by a relay", func(t *testing.T) {
		swap := func(addr string) (net.Conn, error) {
			cli, relay := net.Pipe()
			up, err := net.Dial("tcp", addr)
			if err != nil {
				return nil, err
			}
			go func() {
				var hdr [2]byte
				io.ReadFull(relay, hdr[:])
				msg := make([]byte, binary.BigEndian.Uint16(hdr[:]))
				io.ReadFull(relay, msg)
				rand.Read(msg[:handshake.KeySize]) // another ephemeral key
				up.Write(append(hdr[:], msg...))
				go func() { io.Copy(relay, up); relay.Close() }()
				io.Copy(up, relay)
				up.Close()
			}()
			return cli, nil
		}
		_, aerr, _, berr := tcpPair(t, ka, kb, trustOnly(t, ka), swap)
		if !errors.Is(berr, handshake.ErrDecrypt) || aerr == nil {
			t.Fatalf("responder %v, initiator %v; want a failed message 1", berr, aerr)
		}
	})

	b := newEndpoint(t, kb, trustOnly(t, ka))
	serve := func(t *testing.T) (string, chan error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		errc := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				errc <- err
				return
			}
			info, err := b.respondTCP(context.Background(), c, nil, identity.PeerID{}, CarrierTCP)
			c.Close()
			if info != nil {
				info.conn.Close()
			}
			errc <- err
		}()
		return ln.Addr().String(), errc
	}

	t.Run("garbage", func(t *testing.T) {
		addr, errc := serve(t)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		junk := make([]byte, 200)
		rand.Read(junk)
		c.Write(append([]byte{0, 200}, junk...))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, _ := io.ReadFull(c, make([]byte, 1)); n != 0 {
			t.Fatal("the responder answered garbage")
		}
		if err := <-errc; !errors.Is(err, handshake.ErrDecrypt) {
			t.Fatalf("responder: %v, want ErrDecrypt", err)
		}
	})

	t.Run("replayed message 1", func(t *testing.T) {
		// Record a genuine message 1.
		a := newEndpoint(t, ka, trustOnly(t, kb))
		rec, tap := net.Pipe()
		var msg1 []byte
		done := make(chan struct{})
		go func() {
			defer close(done)
			var hdr [2]byte
			io.ReadFull(tap, hdr[:])
			msg1 = make([]byte, binary.BigEndian.Uint16(hdr[:]))
			io.ReadFull(tap, msg1)
			tap.Close()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		a.initiateTCP(ctx, rec, kb.PeerID(), nil)
		<-done
		addr, errc := serve(t)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		writeHandshakeMsg(c, msg1)
		if _, err := readHandshakeMsg(c); err != nil {
			t.Fatalf("the replay drew no message 2: %v", err)
		}
		// Without the initiator's ephemeral key the replayer can only guess
		// at the confirmation.
		fake := make([]byte, 1+handshake.TagSize)
		rand.Read(fake)
		c.Write(append([]byte{0, byte(len(fake))}, fake...))
		if err := <-errc; !errors.Is(err, handshake.ErrCipher) {
			t.Fatalf("responder after a replayed message 1: %v, want the confirmation to fail", err)
		}
	})

	t.Run("tampered record", func(t *testing.T) {
		var flip func([]byte)
		tamper := func(addr string) (net.Conn, error) {
			cli, relay := net.Pipe()
			up, err := net.Dial("tcp", addr)
			if err != nil {
				return nil, err
			}
			go func() { io.Copy(relay, up); relay.Close() }()
			go func() {
				buf := make([]byte, 64<<10)
				for {
					n, err := relay.Read(buf)
					if n > 0 {
						if flip != nil {
							flip(buf[:n])
						}
						up.Write(buf[:n])
					}
					if err != nil {
						up.Close()
						return
					}
				}
			}()
			return cli, nil
		}
		ai, aerr, bi, berr := tcpPair(t, ka, kb, trustOnly(t, ka), tamper)
		if aerr != nil || berr != nil {
			t.Fatalf("handshake through a relay that changes nothing: %v, %v", aerr, berr)
		}
		flip = func(b []byte) { b[len(b)-1] ^= 1 }
		ai.conn.Write([]byte("hello"))
		bi.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := bi.conn.Read(make([]byte, 16)); n != 0 || !errors.Is(err, handshake.ErrCipher) {
			t.Fatalf("a tampered record read as %d bytes, %v; want ErrCipher", n, err)
		}
	})
}

// BenchmarkTCPCarrierRecords measures bulk through the record layer alone
// on loopback TCP (one direction, 256 KiB writes), for the TCP carrier's
// figures beside stunnel's (bench/run.sh).
func BenchmarkTCPCarrierRecords(b *testing.B) {
	ka, kb := newKey(b), newKey(b)
	ai, aerr, bi, berr := tcpPair(b, ka, kb, trustOnly(b, ka), dialDirect)
	if aerr != nil || berr != nil {
		b.Fatal(aerr, berr)
	}
	defer ai.conn.Close()
	defer bi.conn.Close()
	chunk := make([]byte, 256<<10)
	done := make(chan struct{})
	go func() {
		io.Copy(io.Discard, bi.conn)
		close(done)
	}()
	b.SetBytes(int64(len(chunk)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := ai.conn.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	ai.conn.CloseWrite()
	<-done
}

// TestTCPReplayDoesNotHoldSlot: a replayed message 1 passes verification
// on TCP (no TLS exporter beneath), but it cannot send the confirmation, so
// it must not hold a pending-handshake slot against real peers: with a
// budget of one, a genuine handshake that comes next evicts it.
func TestTCPReplayDoesNotHoldSlot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ka, kb := newKey(t), newKey(t)
	a, b := tcpEndpoints(t, ka, kb, Config{MaxPendingHandshakes: 1})
	rec, tap := net.Pipe()
	msg1 := make(chan []byte, 1)
	go func() {
		var hdr [2]byte
		io.ReadFull(tap, hdr[:])
		m := make([]byte, binary.BigEndian.Uint16(hdr[:]))
		io.ReadFull(tap, m)
		tap.Close()
		msg1 <- m
	}()
	rctx, rcancel := context.WithTimeout(ctx, time.Second)
	a.initiateTCP(rctx, rec, kb.PeerID(), nil)
	rcancel()
	replay, err := net.Dial("tcp", b.TCPAddrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer replay.Close()
	writeHandshakeMsg(replay, <-msg1)
	if _, err := readHandshakeMsg(replay); err != nil {
		t.Fatalf("the replay drew no message 2: %v", err)
	}
	// The replay now waits for its confirmation, which it cannot write.
	go b.Accept(ctx)
	dctx, dcancel := context.WithTimeout(ctx, time.Second) // under the replay's Message1Timeout
	defer dcancel()
	s, err := a.DialTCP(dctx, kb.PeerID(), b.TCPAddrs()[0].String())
	if err != nil {
		t.Fatalf("a genuine handshake while a replay waited: %v; want it to take the replay's slot", err)
	}
	s.Close(CodeNormal)
}
