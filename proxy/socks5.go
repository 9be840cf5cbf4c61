package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// The SOCKS5 server speaks RFC 1928 with no authentication or RFC 1929
// username/password, and the CONNECT command only. Its messages:
//
//	greeting  (client) VER=5 NMETHODS METHODS[NMETHODS]
//	choice    (server) VER=5 METHOD             (0x00 none, 0x02 user/pass, 0xFF no acceptable one)
//	auth      (client) VER=1 ULEN UNAME[ULEN] PLEN PASSWD[PLEN]   (RFC 1929; ULEN, PLEN 1-255)
//	auth rep  (server) VER=1 STATUS             (0x00 success, anything else failure and close)
//	request   (client) VER=5 CMD RSV ATYP DST.ADDR DST.PORT
//	reply     (server) VER=5 REP RSV ATYP BND.ADDR BND.PORT
//
// DST.ADDR is 4 bytes (ATYP 1, IPv4), 16 (ATYP 4, IPv6) or a length byte
// and that many bytes of name (ATYP 3); DST.PORT is 2 bytes big-endian. The
// reply's BND is always 0.0.0.0:0: the client's stream ends at a peer, not
// at an address of this host. After a success reply the connection carries
// the stream's bytes both ways; after any other reply it is closed.
//
// Reply codes for the overlay's errors, by ErrorKind (socksReply): unknown
// peer or service and unreachable targets 0x04 host unreachable, access
// denied 0x02 not allowed, target refused 0x05 connection refused, peer
// unreachable and timeouts 0x03 network unreachable, anything else 0x01.
// Requests: BIND and UDP ASSOCIATE 0x07 command not supported (UDP is not
// carried yet), an unknown address type 0x08, IP addresses and names
// outside .p2p 0x02, a malformed .p2p name 0x01.
const (
	socksVersion    = 0x05
	userPassVersion = 0x01 // RFC 1929's subnegotiation version

	methodNoAuth       = 0x00
	methodUserPass     = 0x02
	methodNoAcceptable = 0xff

	cmdConnect      = 0x01
	cmdBind         = 0x02
	cmdUDPAssociate = 0x03

	atypIPv4   = 0x01
	atypDomain = 0x03
	atypIPv6   = 0x04

	repSucceeded          = 0x00
	repGeneralFailure     = 0x01
	repNotAllowed         = 0x02
	repNetworkUnreachable = 0x03
	repHostUnreachable    = 0x04
	repConnectionRefused  = 0x05
	repCommandUnsupported = 0x07
	repAddressUnsupported = 0x08

	userPassOK     = 0x00
	userPassFailed = 0x01

	greetingHeadLen = 2   // VER NMETHODS
	requestHeadLen  = 4   // VER CMD RSV ATYP
	portLen         = 2   // DST.PORT
	maxNameLen      = 255 // a one-byte length
	maxRequestLen   = requestHeadLen + 1 + maxNameLen + portLen
	replyLen        = requestHeadLen + net.IPv4len + portLen
)

var (
	// errShortRequest reports a request cut short: more bytes are needed.
	errShortRequest = errors.New("proxy: socks5 request cut short")
	// errBadVersion reports a message whose version byte is wrong.
	errBadVersion = errors.New("proxy: not a socks5 message")
	// errAddressType reports an ATYP other than 1, 3 or 4.
	errAddressType = errors.New("proxy: socks5 address type not supported")
	// errEmptyName reports a domain name of length 0.
	errEmptyName = errors.New("proxy: socks5 request with an empty name")
)

// socksRequest is a parsed request.
type socksRequest struct {
	cmd  byte
	atyp byte
	host string // the name (ATYP 3) or the address in text form
	port uint16
}

// requestLen returns the length of the request that b starts with, from
// its first requestHeadLen+1 bytes (errShortRequest when b is shorter).
func requestLen(b []byte) (int, error) {
	if len(b) < requestHeadLen+1 {
		return 0, errShortRequest
	}
	if b[0] != socksVersion {
		return 0, errBadVersion
	}
	switch b[3] {
	case atypIPv4:
		return requestHeadLen + net.IPv4len + portLen, nil
	case atypIPv6:
		return requestHeadLen + net.IPv6len + portLen, nil
	case atypDomain:
		if b[4] == 0 {
			return 0, errEmptyName
		}
		return requestHeadLen + 1 + int(b[4]) + portLen, nil
	}
	return 0, errAddressType
}

// parseRequest parses the request that b starts with and returns it with
// its length. A short b is errShortRequest; nothing past the request is read.
func parseRequest(b []byte) (socksRequest, int, error) {
	n, err := requestLen(b)
	if err != nil {
		return socksRequest{}, 0, err
	}
	if len(b) < n {
		return socksRequest{}, 0, errShortRequest
	}
	r := socksRequest{cmd: b[1], atyp: b[3], port: binary.BigEndian.Uint16(b[n-portLen : n])}
	switch r.atyp {
	case atypIPv4:
		r.host = netip.AddrFrom4([4]byte(b[requestHeadLen : requestHeadLen+net.IPv4len])).String()
	case atypIPv6:
		r.host = netip.AddrFrom16([16]byte(b[requestHeadLen : requestHeadLen+net.IPv6len])).String()
	default:
		r.host = string(b[requestHeadLen+1 : n-portLen])
	}
	return r, n, nil
}

// AppendBinary appends the request in wire form; a name longer than
// maxNameLen or an address that does not fit its type is an error.
func (r socksRequest) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, socksVersion, r.cmd, 0, r.atyp)
	switch r.atyp {
	case atypIPv4, atypIPv6:
		a, err := netip.ParseAddr(r.host)
		if err != nil || a.Is4() != (r.atyp == atypIPv4) {
			return b, fmt.Errorf("proxy: socks5 address %q does not fit type %d", r.host, r.atyp)
		}
		b = append(b, a.AsSlice()...)
	case atypDomain:
		if len(r.host) == 0 || len(r.host) > maxNameLen {
			return b, fmt.Errorf("proxy: socks5 name of %d bytes, want 1..%d", len(r.host), maxNameLen)
		}
		b = append(b, byte(len(r.host)))
		b = append(b, r.host...)
	default:
		return b, errAddressType
	}
	return binary.BigEndian.AppendUint16(b, r.port), nil
}

// socksReply is the reply code for a failure of kind k.
func socksReply(k ErrorKind) byte {
	switch k {
	case KindUnknownPeer, KindUnknownService, KindTargetUnreachable:
		return repHostUnreachable
	case KindAccessDenied, KindNotP2P:
		return repNotAllowed
	case KindTargetRefused:
		return repConnectionRefused
	case KindPeerUnreachable, KindTimeout:
		return repNetworkUnreachable
	}
	return repGeneralFailure
}

// serveSOCKS is a SOCKS5 listener's accept loop.
func (s *Server) serveSOCKS(l *proxyListener) {
	defer s.wg.Done()
	for {
		c, err := l.g.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer l.g.done()
			s.handleSOCKS(l, c)
		}()
	}
}

// handleSOCKS serves one client connection.
func (s *Server) handleSOCKS(l *proxyListener, c net.Conn) {
	local := NetConn(c)
	if local == nil {
		c.Close()
		return
	}
	cfg := s.cfg.Load()
	c.SetDeadline(time.Now().Add(cfg.handshakeTimeout()))
	req, answer, err := socksHandshake(c, cfg)
	l.g.markBusy(c) // Accept marked it idle
	if err != nil {
		k := kindOf(err, nil)
		l.count(k)
		s.logFailure(KindSOCKS5, target{}, k, c.RemoteAddr().String(), err)
		if answer != nil {
			c.Write(answer) // within the handshake deadline
		}
		c.Close()
		return
	}
	if req.cmd == cmdUDPAssociate {
		s.socksAssociate(l, c, req, cfg)
		return
	}
	t, rep, err := s.socksTarget(req)
	if err == nil {
		c.SetDeadline(time.Time{}) // the dial has its own bound
		ctx, cancel := context.WithTimeout(s.ctx, cfg.dialTimeout())
		var remote Conn
		if s.answered.recent(t) { // socks5fast.go
			remote, err = s.ov.DialService(ctx, t.peer, t.service)
			if err == nil {
				remote = &earlyAnswer{Conn: remote, s: s, l: l, t: t, peer: c.RemoteAddr().String()}
			}
		} else {
			remote, err = s.ov.DialServiceAnswered(ctx, t.peer, t.service)
			if err == nil {
				s.answered.ok(t)
			}
		}
		cancel()
		if err == nil {
			s.socksSplice(local, remote, t)
			return
		}
		s.answered.forget(t)
	}
	k := kindOf(err, s.classify)
	if rep == repSucceeded {
		rep = socksReply(k)
	}
	l.count(k)
	s.logFailure(KindSOCKS5, t, k, c.RemoteAddr().String(), err)
	c.SetWriteDeadline(time.Now().Add(cfg.handshakeTimeout()))
	c.Write(reply(rep))
	local.Close()
}

// socksTarget checks a request and resolves its destination. On failure it
// returns the reply code the request itself calls for (repSucceeded when
// the error's kind decides).
func (s *Server) socksTarget(req socksRequest) (target, byte, error) {
	switch {
	case req.cmd != cmdConnect:
		return target{}, repCommandUnsupported, refuse(KindBadRequest, "socks5 command "+strconv.Itoa(int(req.cmd))+" is not supported")
	case req.atyp != atypDomain:
		return target{}, repNotAllowed, refuse(KindNotP2P, "destination "+req.host+" is an IP address: only <service>.<peer>.p2p names are proxied")
	}
	t, err := resolveTarget(s.ov, req.host)
	return t, repSucceeded, err
}

// socksSplice answers success and carries the connection's bytes.
func (s *Server) socksSplice(local, remote Conn, t target) {
	if _, err := local.Write(reply(repSucceeded)); err != nil {
		local.Abort()
		remote.Abort()
		return
	}
	stop := context.AfterFunc(s.ctx, func() { local.Abort(); remote.Abort() })
	defer stop()
	if _, _, err := Splice(local, remote); err != nil {
		s.log.Debug("socks5 proxy: connection aborted", "peer", t.peer, "service", t.service, "err", err)
	}
}

// reply is a reply with code rep and BND 0.0.0.0:0.
func reply(rep byte) []byte {
	b := make([]byte, replyLen)
	b[0], b[1], b[3] = socksVersion, rep, atypIPv4
	return b
}

// socksHandshake reads the greeting, authenticates the client if cfg asks
// for it and reads the request. On failure it returns the answer the client
// is owed, if any, for the caller to send after counting the failure.
func socksHandshake(c net.Conn, cfg *Config) (socksRequest, []byte, error) {
	var buf [maxRequestLen]byte
	if _, err := io.ReadFull(c, buf[:greetingHeadLen]); err != nil {
		return socksRequest{}, nil, refuse(KindHandshake, "socks5 greeting: "+err.Error())
	}
	if buf[0] != socksVersion {
		return socksRequest{}, nil, refuse(KindHandshake, "socks5 greeting: version "+strconv.Itoa(int(buf[0]))+", want 5")
	}
	methods := buf[greetingHeadLen : greetingHeadLen+int(buf[1])]
	if _, err := io.ReadFull(c, methods); err != nil {
		return socksRequest{}, nil, refuse(KindHandshake, "socks5 greeting: "+err.Error())
	}
	want := byte(methodNoAuth)
	if cfg.Username != "" {
		want = methodUserPass
	}
	if !hasByte(methods, want) {
		noMethod := []byte{socksVersion, methodNoAcceptable}
		if want == methodUserPass {
			return socksRequest{}, noMethod, refuse(KindAuth, "socks5 client offers no username/password authentication, which this proxy requires")
		}
		return socksRequest{}, noMethod, refuse(KindAuth, "socks5 client does not offer \"no authentication\"; this proxy has no credentials configured")
	}
	if _, err := c.Write([]byte{socksVersion, want}); err != nil {
		return socksRequest{}, nil, refuse(KindHandshake, "socks5 greeting: "+err.Error())
	}
	if want == methodUserPass {
		if answer, err := socksAuth(c, cfg, buf[:]); err != nil {
			return socksRequest{}, answer, err
		}
	}
	if _, err := io.ReadFull(c, buf[:requestHeadLen+1]); err != nil {
		return socksRequest{}, nil, refuse(KindHandshake, "socks5 request: "+err.Error())
	}
	n, err := requestLen(buf[:])
	switch {
	case errors.Is(err, errAddressType):
		return socksRequest{}, reply(repAddressUnsupported), refuse(KindBadRequest, "socks5 request: address type "+strconv.Itoa(int(buf[3]))+" is not supported")
	case errors.Is(err, errEmptyName):
		return socksRequest{}, reply(repGeneralFailure), refuse(KindBadRequest, "socks5 request: empty destination name")
	case err != nil:
		return socksRequest{}, nil, refuse(KindHandshake, "socks5 request: "+err.Error())
	}
	if _, err := io.ReadFull(c, buf[requestHeadLen+1:n]); err != nil {
		return socksRequest{}, nil, refuse(KindHandshake, "socks5 request: "+err.Error())
	}
	req, _, err := parseRequest(buf[:n])
	if err != nil {
		return socksRequest{}, nil, refuse(KindHandshake, "socks5 request: "+err.Error())
	}
	return req, nil, nil
}

// socksAuth runs RFC 1929's subnegotiation, reading into buf (at least 256
// bytes). It answers success itself; a failure's answer it returns.
func socksAuth(c net.Conn, cfg *Config, buf []byte) ([]byte, error) {
	if _, err := io.ReadFull(c, buf[:2]); err != nil {
		return nil, refuse(KindHandshake, "socks5 authentication: "+err.Error())
	}
	if buf[0] != userPassVersion {
		return nil, refuse(KindHandshake, "socks5 authentication: version "+strconv.Itoa(int(buf[0]))+", want 1")
	}
	user := buf[:buf[1]]
	if _, err := io.ReadFull(c, user); err != nil {
		return nil, refuse(KindHandshake, "socks5 authentication: "+err.Error())
	}
	username := string(user)
	if _, err := io.ReadFull(c, buf[:1]); err != nil {
		return nil, refuse(KindHandshake, "socks5 authentication: "+err.Error())
	}
	pass := buf[:buf[0]]
	if _, err := io.ReadFull(c, pass); err != nil {
		return nil, refuse(KindHandshake, "socks5 authentication: "+err.Error())
	}
	if !cfg.authOK(username, string(pass)) {
		return []byte{userPassVersion, userPassFailed}, refuse(KindAuth, "socks5 authentication failed for user "+strconv.Quote(username))
	}
	if _, err := c.Write([]byte{userPassVersion, userPassOK}); err != nil {
		return nil, refuse(KindHandshake, "socks5 authentication: "+err.Error())
	}
	return nil, nil
}

func hasByte(b []byte, c byte) bool {
	for _, x := range b {
		if x == c {
			return true
		}
	}
	return false
}
