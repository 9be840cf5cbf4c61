package proxy

import (
	"strconv"
	"strings"
)

// The proxies serve one kind of destination: <service>.<peer>.p2p, where
// <peer> is a [[peers]] name or a peer ID as a base36 CIDv1, matched
// without regard to case (Overlay.ResolvePeer), and <service> is passed on
// as written. A port, where the protocol carries one, is ignored. Names
// may hold dots, so "api.v2.db.lan.p2p" is tried as peer "db.lan" with
// service "api.v2" before peer "lan" with service "api.v2.db": the longest
// peer that resolves wins.
const (
	p2pSuffix     = ".p2p"
	maxServiceLen = 63 // a name as config/ allows it (and the transport header carries)
	// maxHostLen is DNS's bound on a name. Every suffix of a name is tried
	// as a peer, so a longer one would cost work quadratic in its length.
	maxHostLen = 253
)

// target is where a proxied connection goes. On a failed resolve it still
// holds the labels as given, for the log line.
type target struct {
	peer    string // as Overlay.ResolvePeer returned it
	service string
}

func (t target) String() string { return t.service + "." + t.peer + p2pSuffix }

// resolveTarget parses host (a host name without port; one trailing dot
// allowed) and resolves its peer label.
func resolveTarget(ov Overlay, host string) (target, error) {
	labels, err := splitP2PName(host)
	if err != nil {
		return target{service: host}, err
	}
	var firstErr error
	for i := 1; i < len(labels); i++ {
		label := strings.Join(labels[i:], ".")
		peer, err := ov.ResolvePeer(label)
		if err == nil {
			t := target{peer: peer, service: strings.Join(labels[:i], ".")}
			if !validService(t.service) {
				return t, refuse(KindBadRequest, "service "+strconv.Quote(t.service)+" is not a valid service name")
			}
			return t, nil
		}
		if firstErr == nil || i == len(labels)-1 {
			firstErr = err
		}
	}
	n := len(labels) - 1
	return target{peer: labels[n], service: strings.Join(labels[:n], ".")}, firstErr
}

// splitP2PName returns the labels of host before ".p2p": at least two, none
// empty.
func splitP2PName(host string) ([]string, error) {
	host = strings.TrimSuffix(host, ".")
	if len(host) > maxHostLen {
		return nil, refuse(KindBadRequest, "destination of "+strconv.Itoa(len(host))+" bytes: a name is at most "+strconv.Itoa(maxHostLen))
	}
	if len(host) <= len(p2pSuffix) || !strings.EqualFold(host[len(host)-len(p2pSuffix):], p2pSuffix) {
		return nil, refuse(KindNotP2P, "destination "+strconv.Quote(host)+" is not a <service>.<peer>.p2p name")
	}
	labels := strings.Split(host[:len(host)-len(p2pSuffix)], ".")
	if len(labels) < 2 {
		return nil, refuse(KindBadRequest, strconv.Quote(host)+" names no service: want <service>.<peer>.p2p")
	}
	for _, l := range labels {
		if l == "" {
			return nil, refuse(KindBadRequest, strconv.Quote(host)+" has an empty label")
		}
	}
	return labels, nil
}

// validService matches a service name as config/ allows it:
// [a-zA-Z0-9][a-zA-Z0-9._-]{0,62}.
func validService(s string) bool {
	if s == "" || len(s) > maxServiceLen || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
