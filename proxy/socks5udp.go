package proxy

import (
	"context"
	"errors"
	"io"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// SOCKS5 UDP ASSOCIATE (RFC 1928 §7). The server binds a UDP socket on the
// address the client reached the SOCKS5 port at and replies with it. The
// client then sends each datagram with a header naming its destination:
//
//	+-----+------+------+----------+----------+----------+
//	| RSV | FRAG | ATYP | DST.ADDR | DST.PORT |   DATA   |
//	+-----+------+------+----------+----------+----------+
//	|  2  |  1   |  1   | Variable |    2     | Variable |
//
// Only <service>.<peer>.p2p names are carried (ATYP 3); each destination
// is one flow to that udp service, and its replies come back with the same
// header the client used. Datagrams from any address but the client's are
// dropped and counted: its IP, and the port the request named or, when it
// named none (port 0, as most clients send), the port of its first valid
// datagram, so that another program on the host cannot use the
// association. Fragments (FRAG ≠ 0) and other destinations are dropped and
// counted too. The association, with its flows, ends when the client's TCP
// connection does.

// maxAssociationFlows caps the destinations one association talks to at once.
const maxAssociationFlows = 64

// udpHeaderFixedLen is RSV, FRAG and ATYP.
const udpHeaderFixedLen = 4

// parseUDPHeader parses the SOCKS5 UDP request header b starts with and
// returns the destination and the header's length.
func parseUDPHeader(b []byte) (socksRequest, int, error) {
	if len(b) < udpHeaderFixedLen+1 {
		return socksRequest{}, 0, errShortRequest
	}
	if b[0] != 0 || b[1] != 0 {
		return socksRequest{}, 0, errBadUDPHeader
	}
	if b[2] != 0 {
		return socksRequest{}, 0, errFragmented
	}
	// The header has a request's layout after its first three bytes.
	var head [udpHeaderFixedLen + 1 + maxNameLen + portLen]byte
	head[0], head[1] = socksVersion, cmdUDPAssociate
	n := copy(head[3:], b[3:])
	req, hl, err := parseRequest(head[:3+n])
	if err != nil {
		return socksRequest{}, 0, err
	}
	return req, hl, nil
}

var (
	errBadUDPHeader = errors.New("proxy: socks5 UDP header with a nonzero RSV")
	errFragmented   = errors.New("proxy: socks5 UDP fragment")
)

// associations are the live SOCKS5 UDP associations, for Flows.
type associations struct {
	mu sync.Mutex
	m  map[*flowMux]struct{}
}

func (a *associations) add(m *flowMux) {
	a.mu.Lock()
	if a.m == nil {
		a.m = make(map[*flowMux]struct{})
	}
	a.m[m] = struct{}{}
	a.mu.Unlock()
}

func (a *associations) remove(m *flowMux) {
	a.mu.Lock()
	delete(a.m, m)
	a.mu.Unlock()
}

// Flows lists the live flows of the SOCKS5 UDP associations.
func (s *Server) Flows() []FlowStats {
	s.assocs.mu.Lock()
	ms := slices.Collect(maps.Keys(s.assocs.m))
	s.assocs.mu.Unlock()
	var out []FlowStats
	for _, m := range ms {
		out = append(out, m.stats()...)
	}
	return out
}

// socksAssociate serves a UDP ASSOCIATE request on the client connection
// c until c ends.
func (s *Server) socksAssociate(l *proxyListener, c net.Conn, req socksRequest, cfg *Config) {
	fd, ok := s.ov.(FlowDialer)
	tcpLocal, lok := c.LocalAddr().(*net.TCPAddr)
	tcpRemote, rok := c.RemoteAddr().(*net.TCPAddr)
	if !ok || !lok || !rok {
		l.count(KindBadRequest)
		c.Write(reply(repCommandUnsupported))
		c.Close()
		return
	}
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: tcpLocal.IP, Zone: tcpLocal.Zone})
	if err != nil {
		l.count(KindOther)
		s.log.Warn("socks5 proxy: UDP ASSOCIATE: cannot bind a UDP socket", "addr", tcpLocal.IP.String(), "err", err)
		c.Write(reply(repGeneralFailure))
		c.Close()
		return
	}
	bound := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	rep, _ := socksRequest{cmd: repSucceeded, atyp: atypFor(bound.Addr()), host: bound.Addr().Unmap().String(), port: bound.Port()}.AppendBinary(nil)
	c.SetDeadline(time.Time{})
	if _, err := c.Write(rep); err != nil {
		pc.Close()
		c.Close()
		return
	}
	client := tcpRemote.AddrPort().Addr().Unmap()
	clientPort := req.port // 0: the client did not say where it sends from
	mux := newFlowMux(s.ctx, pc, "socks5 "+bound.String(), fd, cfg.dialTimeout(), 0, maxAssociationFlows, s.log)
	s.assocs.add(mux)
	defer s.assocs.remove(mux)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		s.readAssociation(pc, mux, client, clientPort)
	}()
	stop := context.AfterFunc(s.ctx, func() { c.Close() })
	io.Copy(io.Discard, c) // the client sends nothing more; EOF or an error ends the association
	stop()
	pc.Close()
	<-readDone
	mux.close()
	c.Close()
}

// readAssociation routes the client's datagrams to their flows.
func (s *Server) readAssociation(pc *net.UDPConn, mux *flowMux, client netip.Addr, clientPort uint16) {
	buf := make([]byte, maxUDPPayload)
	logged := map[string]bool{} // destinations refused and logged once
	for {
		n, from, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if from.Addr().Unmap() != client || (clientPort != 0 && from.Port() != clientPort) {
			mux.drop(DropForeign)
			continue
		}
		dest, hl, err := parseUDPHeader(buf[:n])
		switch {
		case errors.Is(err, errFragmented):
			mux.drop(DropFragmented)
			continue
		case err != nil:
			mux.drop(DropBadHeader)
			continue
		}
		clientPort = from.Port() // the first valid datagram fixes it
		if dest.atyp != atypDomain {
			mux.drop(DropNotP2P)
			continue
		}
		key := flowKey{client: from, dest: strings.ToLower(dest.host)}
		mux.route(key, buf[hl:n], func() (string, string, []byte, error) {
			t, err := resolveTarget(s.ov, dest.host)
			if err != nil {
				mux.drop(DropNotP2P)
				if len(logged) < maxAssociationFlows && !logged[key.dest] {
					logged[key.dest] = true
					s.log.Info("socks5 proxy: UDP datagram dropped", "dest", dest.host, "reason", err.Error())
				}
				return "", "", nil, err
			}
			return t.peer, t.service, append([]byte{0, 0, 0}, buf[3:hl]...), nil
		})
	}
}

// atypFor is the SOCKS5 address type of a.
func atypFor(a netip.Addr) byte {
	if a.Unmap().Is4() {
		return atypIPv4
	}
	return atypIPv6
}
