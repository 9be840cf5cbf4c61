package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/p2pd/p2pd/identity"
)

// An invite is one line that carries what a peer needs to trust this node
// and reach it: its peer ID, its name and its addresses. `p2pctl invite`
// and `p2pd invite` print it; `p2pctl trust add NAME INVITE` takes it.
//
//	p2pd1:<base64url, no padding, of the bytes below>
//
//	+---------+------+------+-------+------------------------------+----------+
//	| key 32  | n 1  | name | k 1   | k × address                  | check 4  |
//	+---------+------+------+-------+------------------------------+----------+
//	address: family 1 (4 or 6) | IP 4 or 16 | UDP port 2 | TCP port 2
//
// key is the node's Ed25519 public key (its peer ID); name is a peer name
// (1-63 of [A-Za-z0-9._-], starting with a letter or digit); k is at most
// MaxInviteAddrs; ports are big-endian, 0 for "none", never both 0; check
// is the first 4 bytes of SHA-256 over "p2pd1:" and every byte before it,
// so that a line cut or mangled in a copy fails as such. The parser takes
// exactly this: no trailing bytes, no unspecified, multicast or link-local
// IP, no IPv4 address in IPv6 form, no address twice. A later layout gets
// a new prefix ("p2pd2:").

// InvitePrefix starts every invite line of this layout.
const InvitePrefix = "p2pd1:"

// Sizes of the invite layout.
const (
	MaxInviteAddrs = 16

	inviteKeySize      = identity.PublicKeySize
	inviteNameLenSize  = 1
	inviteCountSize    = 1
	inviteFamilySize   = 1
	invitePortSize     = 2
	inviteCheckSize    = 4
	inviteAddrOverhead = inviteFamilySize + 2*invitePortSize
	minInviteSize      = inviteKeySize + inviteNameLenSize + 1 + inviteCountSize + inviteCheckSize
	maxInviteSize      = inviteKeySize + inviteNameLenSize + 63 + inviteCountSize +
		MaxInviteAddrs*(inviteAddrOverhead+net.IPv6len) + inviteCheckSize
	// MaxInviteLen bounds an invite line's length.
	MaxInviteLen = len(InvitePrefix) + (maxInviteSize*8+5)/6
)

// ErrInvite reports a line that is not a valid invite.
var ErrInvite = errors.New("config: not a valid invite")

// Invite is what an invite line carries.
type Invite struct {
	ID    identity.PeerID
	Name  string
	Addrs []InviteAddr
}

// InviteAddr is one address of an invite: an IP and the UDP (QUIC) and TCP
// ports the node listens on there; 0 means none.
type InviteAddr struct {
	IP       netip.Addr
	UDP, TCP uint16
}

// String returns the invite line. It fails only on an Invite that
// ParseInvite would refuse.
func (inv Invite) String() string {
	b, err := inv.AppendText(nil)
	if err != nil {
		return "<invalid invite: " + err.Error() + ">"
	}
	return string(b)
}

// AppendText appends the invite line to b.
func (inv Invite) AppendText(b []byte) ([]byte, error) {
	if err := inv.check(); err != nil {
		return b, err
	}
	raw := make([]byte, 0, maxInviteSize)
	key := inv.ID.PublicKey()
	raw = append(raw, key[:]...)
	raw = append(raw, byte(len(inv.Name)))
	raw = append(raw, inv.Name...)
	raw = append(raw, byte(len(inv.Addrs)))
	for _, a := range inv.Addrs {
		if a.IP.Is4() {
			raw = append(raw, 4)
		} else {
			raw = append(raw, 6)
		}
		raw = append(raw, a.IP.AsSlice()...)
		raw = binary.BigEndian.AppendUint16(raw, a.UDP)
		raw = binary.BigEndian.AppendUint16(raw, a.TCP)
	}
	raw = append(raw, inviteCheck(raw)...)
	b = append(b, InvitePrefix...)
	return base64.RawURLEncoding.AppendEncode(b, raw), nil
}

func inviteCheck(raw []byte) []byte {
	h := sha256.New()
	h.Write([]byte(InvitePrefix))
	h.Write(raw)
	return h.Sum(nil)[:inviteCheckSize]
}

func inviteErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s; copy the whole line that `p2pctl invite` (or `p2pd invite`) printed on that peer",
		ErrInvite, fmt.Sprintf(format, args...))
}

// ParseInvite parses an invite line, strictly (see the layout above).
func ParseInvite(s string) (Invite, error) {
	if len(s) > MaxInviteLen {
		return Invite{}, inviteErr("%d characters, more than an invite has (%d)", len(s), MaxInviteLen)
	}
	rest, ok := strings.CutPrefix(s, InvitePrefix)
	if !ok {
		if strings.HasPrefix(s, "p2pd") && strings.Contains(s, ":") {
			return Invite{}, fmt.Errorf("%w: it starts %q, a layout this p2pd does not read (it reads %q); upgrade p2pd",
				ErrInvite, s[:strings.IndexByte(s, ':')+1], InvitePrefix)
		}
		return Invite{}, inviteErr("it does not start with %q", InvitePrefix)
	}
	// The decoder skips line breaks; an invite has none.
	if i := strings.IndexFunc(rest, func(r rune) bool { return !isAlnum(byte(r)) && r != '-' && r != '_' || r > 0x7f }); i >= 0 {
		return Invite{}, inviteErr("character %q at %d is not base64url", rest[i], len(InvitePrefix)+i)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil {
		return Invite{}, inviteErr("not base64url after %q (%v)", InvitePrefix, err)
	}
	if len(raw) < minInviteSize {
		return Invite{}, inviteErr("%d bytes, an invite has at least %d: the line is cut short", len(raw), minInviteSize)
	}
	body, check := raw[:len(raw)-inviteCheckSize], raw[len(raw)-inviteCheckSize:]
	if !bytes.Equal(check, inviteCheck(body)) {
		return Invite{}, inviteErr("its checksum does not match: the line was cut or changed")
	}
	return parseInviteBody(body)
}

func parseInviteBody(b []byte) (Invite, error) {
	var inv Invite
	var key identity.PublicKey
	copy(key[:], b[:inviteKeySize])
	if _, err := key.NoisePublic(); err != nil {
		return Invite{}, inviteErr("its key is not a valid Ed25519 public key")
	}
	inv.ID = key.PeerID()
	b = b[inviteKeySize:]
	n := int(b[0])
	b = b[inviteNameLenSize:]
	if len(b) < n+inviteCountSize {
		return Invite{}, inviteErr("the name runs past the end")
	}
	inv.Name = string(b[:n])
	b = b[n:]
	k := int(b[0])
	b = b[inviteCountSize:]
	if k > MaxInviteAddrs {
		return Invite{}, inviteErr("%d addresses, more than %d", k, MaxInviteAddrs)
	}
	for i := 0; i < k; i++ {
		if len(b) < inviteFamilySize {
			return Invite{}, inviteErr("address %d runs past the end", i)
		}
		size := 0
		switch b[0] {
		case 4:
			size = net.IPv4len
		case 6:
			size = net.IPv6len
		default:
			return Invite{}, inviteErr("address %d has family %d, want 4 or 6", i, b[0])
		}
		if len(b) < inviteAddrOverhead+size {
			return Invite{}, inviteErr("address %d runs past the end", i)
		}
		ip, _ := netip.AddrFromSlice(b[inviteFamilySize : inviteFamilySize+size])
		b = b[inviteFamilySize+size:]
		inv.Addrs = append(inv.Addrs, InviteAddr{IP: ip,
			UDP: binary.BigEndian.Uint16(b), TCP: binary.BigEndian.Uint16(b[invitePortSize:])})
		b = b[2*invitePortSize:]
	}
	if len(b) != 0 {
		return Invite{}, inviteErr("%d bytes after the last address", len(b))
	}
	if err := inv.check(); err != nil {
		return Invite{}, err
	}
	return inv, nil
}

// check enforces the invariants both directions share.
func (inv Invite) check() error {
	if inv.ID.IsZero() {
		return inviteErr("no peer ID")
	}
	if !validName(inv.Name) {
		return inviteErr("name %s is not a peer name (1-63 letters, digits, '.', '_' or '-')", quote(inv.Name))
	}
	if len(inv.Addrs) > MaxInviteAddrs {
		return inviteErr("%d addresses, more than %d", len(inv.Addrs), MaxInviteAddrs)
	}
	for i, a := range inv.Addrs {
		switch {
		case !a.IP.IsValid() || a.IP.Zone() != "":
			return inviteErr("address %d is not a plain IP address", i)
		case a.IP.Is4In6():
			return inviteErr("address %d is an IPv4 address in IPv6 form", i)
		case a.IP.IsUnspecified() || a.IP.IsMulticast() || a.IP.IsLinkLocalUnicast() || a.IP.IsLinkLocalMulticast():
			return inviteErr("address %d (%s) cannot be dialed", i, a.IP)
		case a.UDP == 0 && a.TCP == 0:
			return inviteErr("address %d (%s) has no port", i, a.IP)
		}
		if slices.ContainsFunc(inv.Addrs[:i], func(o InviteAddr) bool { return o.IP == a.IP }) {
			return inviteErr("address %s appears twice", a.IP)
		}
	}
	return nil
}

// Peer returns the [[peers]] entry the invite asks for, under name. Its
// addresses are "ip:port" with the UDP port (the TCP carrier dials the same
// port number); an address with a TCP port only is taken with that port,
// and when every address is TCP-only the peer's transport is "tcp".
func (inv Invite) Peer(name string) Peer {
	p := Peer{Name: name, ID: inv.ID}
	tcpOnly := len(inv.Addrs) > 0
	for _, a := range inv.Addrs {
		port := a.UDP
		if port == 0 {
			port = a.TCP
		} else {
			tcpOnly = false
		}
		p.Addresses = append(p.Addresses, net.JoinHostPort(a.IP.String(), strconv.Itoa(int(port))))
	}
	if tcpOnly {
		p.Transport = "tcp"
	}
	return p
}

// InviteAddrs lists the addresses to put in an invite from the UDP and TCP
// listen addresses ("host:port"). An unspecified host (0.0.0.0, [::])
// becomes every address of that family on the host's interfaces (from
// ifaceAddrs), less loopback and link-local ones; "localhost" is 127.0.0.1.
// At most MaxInviteAddrs, global addresses first.
func InviteAddrs(udp, tcp []string, ifaceAddrs []netip.Addr) []InviteAddr {
	var out []InviteAddr
	add := func(list []string, isUDP bool) {
		for _, l := range list {
			host, port, msg := splitPort(l, 1)
			if msg != "" {
				continue // port 0 or garbage: nothing a peer could dial
			}
			if host == "localhost" {
				host = "127.0.0.1"
			}
			ip, err := netip.ParseAddr(host)
			if err != nil {
				continue
			}
			ip = ip.Unmap()
			ips := []netip.Addr{ip}
			if ip.IsUnspecified() {
				ips = nil
				for _, a := range ifaceAddrs {
					a = a.Unmap()
					if a.Is4() == ip.Is4() && !a.IsLoopback() && !a.IsLinkLocalUnicast() && !a.IsUnspecified() && !a.IsMulticast() {
						ips = append(ips, a.WithZone(""))
					}
				}
			}
			for _, a := range ips {
				if a.IsLinkLocalUnicast() || a.IsMulticast() || a.Zone() != "" {
					continue
				}
				i := slices.IndexFunc(out, func(o InviteAddr) bool { return o.IP == a })
				if i < 0 {
					out = append(out, InviteAddr{IP: a})
					i = len(out) - 1
				}
				if isUDP && out[i].UDP == 0 {
					out[i].UDP = uint16(port)
				} else if !isUDP && out[i].TCP == 0 {
					out[i].TCP = uint16(port)
				}
			}
		}
	}
	add(udp, true)
	add(tcp, false)
	slices.SortStableFunc(out, func(a, b InviteAddr) int { return inviteRank(a.IP) - inviteRank(b.IP) })
	if len(out) > MaxInviteAddrs {
		out = out[:MaxInviteAddrs]
	}
	return out
}

// inviteRank orders addresses for an invite: public, then private, then loopback.
func inviteRank(ip netip.Addr) int {
	switch {
	case ip.IsLoopback():
		return 2
	case ip.IsPrivate():
		return 1
	}
	return 0
}

// InterfaceAddrs returns the IP addresses of the host's interfaces that are
// up, for InviteAddrs.
func InterfaceAddrs() []netip.Addr {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok {
					out = append(out, ip.Unmap())
				}
			}
		}
	}
	return out
}

// InviteName turns a node name into a peer name for an invite: characters
// a peer name cannot have become '-', and it is cut to 63 bytes; "p2pd" when
// nothing usable is left.
func InviteName(nodeName string) string {
	b := []byte(nodeName)
	for i, c := range b {
		if !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			b[i] = '-'
		}
	}
	s := strings.TrimLeft(string(b), "-._")
	if len(s) > 63 {
		s = s[:63]
	}
	if !validName(s) {
		return fallbackName
	}
	return s
}
