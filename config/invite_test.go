package config

import (
	"encoding/base64"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/p2pd/p2pd/identity"
)

func testInvite(t testing.TB) Invite {
	t.Helper()
	id, err := identity.ParsePeerID(idDB)
	if err != nil {
		t.Fatal(err)
	}
	return Invite{ID: id, Name: "db", Addrs: []InviteAddr{
		{IP: netip.MustParseAddr("203.0.113.7"), UDP: 4242, TCP: 4242},
		{IP: netip.MustParseAddr("2001:db8::7"), UDP: 4242},
		{IP: netip.MustParseAddr("192.0.2.9"), TCP: 443},
	}}
}

func TestInviteRoundTrip(t *testing.T) {
	inv := testInvite(t)
	line := inv.String()
	if !strings.HasPrefix(line, InvitePrefix) || len(line) > MaxInviteLen {
		t.Fatalf("line %q", line)
	}
	got, err := ParseInvite(line)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != inv.ID || got.Name != "db" || !slices.Equal(got.Addrs, inv.Addrs) {
		t.Fatalf("parsed %+v, want %+v", got, inv)
	}
	p := got.Peer("database")
	if p.Name != "database" || p.ID != inv.ID || p.Transport != "" ||
		!slices.Equal(p.Addresses, []string{"203.0.113.7:4242", "[2001:db8::7]:4242", "192.0.2.9:443"}) {
		t.Errorf("Peer: %+v", p)
	}
}

func TestInviteRejects(t *testing.T) {
	inv := testInvite(t)
	line := inv.String()
	flip := []byte(line)
	flip[20] ^= 1 // still base64url: 'A'<->'B' and the like
	for name, s := range map[string]string{
		"empty":        "",
		"no prefix":    strings.TrimPrefix(line, InvitePrefix),
		"newer":        "p2pd2:" + strings.TrimPrefix(line, InvitePrefix),
		"cut":          line[:len(line)-3],
		"changed":      string(flip),
		"padding":      line + "=",
		"line break":   line[:30] + "\n" + line[30:],
		"space":        " " + line,
		"standard b64": strings.ReplaceAll(line, "_", "/"),
		"too long":     line + strings.Repeat("A", MaxInviteLen),
	} {
		if _, err := ParseInvite(s); !errors.Is(err, ErrInvite) {
			t.Errorf("%s: ParseInvite = %v, want ErrInvite", name, err)
		} else if name != "newer" && !strings.Contains(err.Error(), "copy the whole line") {
			t.Errorf("%s: error %q does not say the fix", name, err)
		}
	}
	bad := func(mod func(*Invite)) string {
		i := testInvite(t)
		mod(&i)
		_, err := i.AppendText(nil)
		if err == nil {
			return ""
		}
		return err.Error()
	}
	for name, mod := range map[string]func(*Invite){
		"bad name":    func(i *Invite) { i.Name = "no spaces" },
		"unspecified": func(i *Invite) { i.Addrs[0].IP = netip.IPv4Unspecified() },
		"mapped":      func(i *Invite) { i.Addrs[0].IP = netip.MustParseAddr("::ffff:1.2.3.4") },
		"link-local":  func(i *Invite) { i.Addrs[0].IP = netip.MustParseAddr("fe80::1") },
		"no port":     func(i *Invite) { i.Addrs[0].UDP, i.Addrs[0].TCP = 0, 0 },
		"twice":       func(i *Invite) { i.Addrs[1].IP = i.Addrs[0].IP },
		"too many":    func(i *Invite) { i.Addrs = make([]InviteAddr, MaxInviteAddrs+1) },
	} {
		if msg := bad(mod); msg == "" {
			t.Errorf("%s: encoded", name)
		}
	}
}

func TestInviteAddrsExpandsWildcards(t *testing.T) {
	ifaces := []netip.Addr{
		netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("203.0.113.7"),
		netip.MustParseAddr("::1"), netip.MustParseAddr("fe80::1"), netip.MustParseAddr("2001:db8::7"),
	}
	got := InviteAddrs([]string{"0.0.0.0:4242", "[::]:4242"}, []string{"0.0.0.0:4243"}, ifaces)
	want := []InviteAddr{
		{IP: netip.MustParseAddr("203.0.113.7"), UDP: 4242, TCP: 4243},
		{IP: netip.MustParseAddr("2001:db8::7"), UDP: 4242},
		{IP: netip.MustParseAddr("10.0.0.5"), UDP: 4242, TCP: 4243},
	}
	if !slices.Equal(got, want) {
		t.Errorf("InviteAddrs = %v, want %v", got, want)
	}
	got = InviteAddrs([]string{"127.0.0.1:5000", "localhost:5001"}, nil, ifaces)
	if want := []InviteAddr{{IP: netip.MustParseAddr("127.0.0.1"), UDP: 5000}}; !slices.Equal(got, want) {
		t.Errorf("InviteAddrs of a loopback listener = %v, want %v", got, want)
	}
}

func TestInviteName(t *testing.T) {
	for in, want := range map[string]string{"db": "db", "My Laptop": "My-Laptop", "--x": "x", "été": "t--", "": "p2pd", strings.Repeat("a", 70): strings.Repeat("a", 63)} {
		if got := InviteName(in); got != want {
			t.Errorf("InviteName(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzInvite: ParseInvite never panics, and what it accepts is exactly what
// String writes back.
func FuzzInvite(f *testing.F) {
	inv := testInvite(f)
	f.Add(inv.String())
	inv.Addrs = nil
	f.Add(inv.String())
	f.Add("p2pd1:")
	f.Add("p2pd1:AAAA")
	f.Add("p2pd9:xyz")
	f.Fuzz(checkInviteRoundTrip)
}

// checkInviteRoundTrip is the property of both fuzz targets: ParseInvite
// fails with ErrInvite or accepts exactly what String writes back.
func checkInviteRoundTrip(t *testing.T, s string) {
	t.Helper()
	inv, err := ParseInvite(s)
	if err != nil {
		if !errors.Is(err, ErrInvite) {
			t.Fatalf("error %v does not match ErrInvite", err)
		}
		return
	}
	if out := inv.String(); out != s {
		t.Fatalf("accepted %q but writes it back as %q", s, out)
	}
	_ = inv.Peer("x")
}

// FuzzInviteBody gets past the checksum: the fuzzer's bytes are sealed as an
// invite body, so the field parsing is what it explores.
func FuzzInviteBody(f *testing.F) {
	line := testInvite(f).String()
	raw, _ := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(line, InvitePrefix))
	f.Add(raw[:len(raw)-inviteCheckSize])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > maxInviteSize {
			return
		}
		checkInviteRoundTrip(t, InvitePrefix+base64.RawURLEncoding.EncodeToString(append(slices.Clone(body), inviteCheck(body)...)))
	})
}
