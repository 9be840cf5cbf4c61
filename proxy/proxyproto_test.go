package proxy_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/p2pd/p2pd/internal/testnet"
	"github.com/p2pd/p2pd/proxy"
)

const ppPeerID = "12D3KooWQyQLFhpB7wpjGJNwSwx9PicdFw1iW72QrjGsnqZoprqu"

func TestProxyHeaderRoundTrip(t *testing.T) {
	ap := netip.MustParseAddrPort
	for _, tt := range []struct {
		name               string
		h                  proxy.ProxyHeader
		fam                byte
		wantSrc, wantDst   netip.AddrPort
		wantLen            int
		wantID, wantName   string
		idAbsent, nmAbsent bool
	}{
		{name: "IPv4 both", h: proxy.ProxyHeader{Source: ap("203.0.113.7:4242"), Destination: ap("127.0.0.1:5432"), PeerID: ppPeerID, PeerName: "web1"},
			fam: 0x11, wantSrc: ap("203.0.113.7:4242"), wantDst: ap("127.0.0.1:5432"), wantLen: 16 + 12 + 3 + len(ppPeerID) + 3 + 4},
		{name: "IPv6 both", h: proxy.ProxyHeader{Source: ap("[2001:db8::7]:4242"), Destination: ap("[::1]:5432"), PeerID: ppPeerID, PeerName: "web1"},
			fam: 0x21, wantSrc: ap("[2001:db8::7]:4242"), wantDst: ap("[::1]:5432"), wantLen: 16 + 36 + 3 + len(ppPeerID) + 3 + 4},
		{name: "IPv4 source, IPv6 target: source mapped", h: proxy.ProxyHeader{Source: ap("198.51.100.2:9"), Destination: ap("[::1]:80"), PeerID: ppPeerID},
			fam: 0x21, wantSrc: ap("[::ffff:198.51.100.2]:9"), wantDst: ap("[::1]:80"), nmAbsent: true},
		{name: "IPv4-mapped IPv6 source sent as IPv4", h: proxy.ProxyHeader{Source: ap("[::ffff:192.0.2.1]:1000"), Destination: ap("127.0.0.1:80"), PeerName: "db"},
			fam: 0x11, wantSrc: ap("192.0.2.1:1000"), wantDst: ap("127.0.0.1:80"), idAbsent: true},
		{name: "unix target: unspecified destination", h: proxy.ProxyHeader{Source: ap("192.0.2.1:4242"), PeerID: ppPeerID, PeerName: "web1"},
			fam: 0x11, wantSrc: ap("192.0.2.1:4242"), wantDst: ap("0.0.0.0:0")},
		{name: "unix target, IPv6 source", h: proxy.ProxyHeader{Source: ap("[2001:db8::1]:4242"), PeerID: ppPeerID, PeerName: "web1"},
			fam: 0x21, wantSrc: ap("[2001:db8::1]:4242"), wantDst: ap("[::]:0")},
		{name: "relayed: no source, AF_UNSPEC", h: proxy.ProxyHeader{Destination: ap("127.0.0.1:80"), PeerID: ppPeerID, PeerName: "web1"},
			fam: 0x00, wantLen: 16 + 3 + len(ppPeerID) + 3 + 4},
		{name: "zero value", fam: 0x00, wantLen: 16, idAbsent: true, nmAbsent: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("keep")
			b, err := tt.h.AppendBinary(bytes.Clone(prefix))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(b, prefix) {
				t.Fatalf("AppendBinary overwrote what it appends to: %q", b)
			}
			b = b[len(prefix):]
			// testnet.ParseProxyV2 is written from the specification, apart
			// from the encoder, so a mistake in one shows as a disagreement.
			got, n, err := testnet.ParseProxyV2(append(b, "payload"...))
			if err != nil {
				t.Fatalf("parse %x: %v", b, err)
			}
			if n != len(b) {
				t.Errorf("header length field says %d bytes, encoder wrote %d", n, len(b))
			}
			if tt.wantLen != 0 && len(b) != tt.wantLen {
				t.Errorf("header is %d bytes, want %d", len(b), tt.wantLen)
			}
			if got.VerCmd != 0x21 {
				t.Errorf("version/command %#x, want 0x21 (v2, PROXY)", got.VerCmd)
			}
			if got.Family != tt.fam || got.Src != tt.wantSrc || got.Dst != tt.wantDst {
				t.Errorf("family %#x %v -> %v, want %#x %v -> %v", got.Family, got.Src, got.Dst, tt.fam, tt.wantSrc, tt.wantDst)
			}
			checkTLV(t, got.TLVs, proxy.ProxyTLVPeerID, tt.h.PeerID, tt.idAbsent)
			checkTLV(t, got.TLVs, proxy.ProxyTLVPeerName, tt.h.PeerName, tt.nmAbsent)
			if len(got.TLVs) > 2 {
				t.Errorf("unexpected TLVs: %q", got.TLVs)
			}
		})
	}
}

func checkTLV(t *testing.T, tlvs map[byte]string, typ byte, want string, absent bool) {
	t.Helper()
	v, ok := tlvs[typ]
	if absent {
		if ok {
			t.Errorf("TLV %#x = %q, want none", typ, v)
		}
		return
	}
	if !ok || v != want {
		t.Errorf("TLV %#x = %q (present %v), want %q", typ, v, ok, want)
	}
}

// TestProxyHeaderBytes pins one header byte for byte, as a receiver sees it.
func TestProxyHeaderBytes(t *testing.T) {
	h := proxy.ProxyHeader{Source: netip.MustParseAddrPort("10.1.2.3:4242"), Destination: netip.MustParseAddrPort("127.0.0.1:5432"),
		PeerID: "ID", PeerName: "web1"}
	b, err := h.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "0d0a0d0a000d0a515549540a" + // signature
		"21" + "11" + "0018" + // v2 PROXY, TCP over IPv4, 24 bytes follow
		"0a010203" + "7f000001" + "1092" + "1538" + // 10.1.2.3:4242 -> 127.0.0.1:5432
		"e0" + "0002" + "4944" + // peer ID "ID"
		"e1" + "0004" + "77656231" // peer name "web1"
	if got := fmt.Sprintf("%x", b); got != want {
		t.Fatalf("header\n got %s\nwant %s", got, want)
	}
}

func TestProxyHeaderTooLong(t *testing.T) {
	h := proxy.ProxyHeader{Source: netip.MustParseAddrPort("[::1]:1"), PeerID: ppPeerID, PeerName: strings.Repeat("n", 0xFFFF)}
	b, err := h.AppendBinary([]byte("x"))
	if !errors.Is(err, proxy.ErrProxyHeaderTooLong) {
		t.Fatalf("err %v, want ErrProxyHeaderTooLong", err)
	}
	if string(b) != "x" {
		t.Errorf("a failed AppendBinary changed its buffer to %d bytes", len(b))
	}
	// The longest that fits: 36 address bytes and two TLVs.
	h.PeerName = strings.Repeat("n", 0xFFFF-36-3-len(ppPeerID)-3)
	b, err = h.AppendBinary(nil)
	if err != nil || len(b) != proxy.MaxProxyHeaderLen {
		t.Fatalf("longest header: %d bytes, %v; want %d", len(b), err, proxy.MaxProxyHeaderLen)
	}
	if got, _, err := testnet.ParseProxyV2(b); err != nil || got.TLVs[proxy.ProxyTLVPeerName] != h.PeerName {
		t.Fatalf("longest header does not parse back: %v", err)
	}
}
