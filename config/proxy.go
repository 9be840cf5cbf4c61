package config

import (
	"fmt"
	"strconv"
)

// Proxy is the [proxy] table: the local SOCKS5 and HTTP proxies, which reach any peer's service
// by the name <service>.<peer>.p2p. Both are off unless an address is given.
type Proxy struct {
	SOCKS5 string // "host:port" of the SOCKS5 server; Load turns "1080" into "127.0.0.1:1080"
	HTTP   string // "host:port" of the HTTP proxy (CONNECT and plain HTTP)
	// Username and Password, both or neither, are the credentials both proxies then require:
	// SOCKS5 username/password (RFC 1929), HTTP Proxy-Authorization: Basic.
	Username, Password string
	// MaxConnections caps each proxy listener's concurrent client connections: 1 to
	// MaxForwardConnections, or 0 (absent) for DefaultForwardConnections.
	MaxConnections int
}

// maxCredentialLen is RFC 1929's bound on a username and a password (a one-byte length).
const maxCredentialLen = 255

// setProxyListen stores a [proxy] address normalised as a forward's, or the text as written
// when it does not parse so that Validate reports it.
func setProxyListen(dst func(c *Config) *string) func(*Config, int, any) error {
	return func(c *Config, _ int, v any) error {
		s := v.(string)
		if n, msg := normalizeForward(s); s != "" && msg == "" {
			s = n
		}
		*dst(c) = s
		return nil
	}
}

func (c *Config) validateProxy(p *problems) {
	x := c.Proxy
	listens := map[string]string{}
	for i, f := range c.Forwards {
		listens[f.Listen] = fmt.Sprintf("forwards[%d]", i)
	}
	for _, l := range []struct{ key, addr string }{{"proxy.socks5", x.SOCKS5}, {"proxy.http", x.HTTP}} {
		if l.addr == "" {
			continue
		}
		norm, msg := normalizeForward(l.addr)
		switch {
		case msg != "":
			p.invalid(l.key, quote(l.addr), "%s", msg)
		case listens[norm] != "":
			p.invalid(l.key, quote(l.addr), "same address as %s (%s); use another port", listens[norm], norm)
		default:
			listens[norm] = l.key
		}
	}
	switch {
	case x.Username == "" && x.Password != "":
		p.invalid("proxy.password", "(hidden)", "set without proxy.username; set both, or neither for no authentication")
	case x.Username != "" && x.Password == "":
		p.invalid("proxy.username", quote(x.Username), "set without proxy.password; set both, or neither for no authentication")
	}
	if len(x.Username) > maxCredentialLen {
		p.invalid("proxy.username", quote(x.Username[:16]+"..."), "is %d bytes; SOCKS5 allows at most %d", len(x.Username), maxCredentialLen)
	}
	if len(x.Password) > maxCredentialLen {
		p.invalid("proxy.password", "(hidden)", "is %d bytes; SOCKS5 allows at most %d", len(x.Password), maxCredentialLen)
	}
	if n := x.MaxConnections; n < 0 || n > MaxForwardConnections {
		p.invalid("proxy.max_connections", strconv.Itoa(n), "must be between 1 and %d; absent or 0 means the default, %d",
			MaxForwardConnections, DefaultForwardConnections)
	}
}
