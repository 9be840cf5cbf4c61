package config

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const unixPrefix = "unix:"

func (c *Config) validateServices(p *problems) {
	names := map[string]int{}
	for i, s := range c.Services {
		key := fmt.Sprintf("services[%d]", i)
		if checkName(p, key+".name", s.Name, `like "postgres"`) {
			if j, dup := names[strings.ToLower(s.Name)]; dup {
				p.invalid(key+".name", quote(s.Name), "same name as services[%d]; service names must be unique, ignoring case", j)
			} else {
				names[strings.ToLower(s.Name)] = i
			}
		}
		proto := s.Protocol
		if proto != "" && proto != ProtocolTCP && proto != ProtocolUDP {
			p.invalid(key+".protocol", quote(proto), `must be "tcp" or "udp"`)
		}
		c.validateTarget(p, key+".target", s.Target, proto == ProtocolUDP)
		switch {
		case s.ProxyProtocol != "" && s.ProxyProtocol != ProxyProtocolV2:
			p.invalid(key+".proxy_protocol", quote(s.ProxyProtocol), `must be "v2" (a PROXY protocol v2 header with the peer's ID opens each connection to the target) or "" (off)`)
		case s.ProxyProtocol != "" && proto == ProtocolUDP:
			p.invalid(key+".proxy_protocol", quote(s.ProxyProtocol), `the PROXY protocol is for tcp services; remove it from this udp service`)
		}
		checkIdle(p, key, s.IdleTimeout, proto == ProtocolUDP)
		for j, a := range s.Allow {
			if a == "*" {
				continue
			}
			if !c.knownPeer(a) {
				p.invalid(fmt.Sprintf("%s.allow[%d]", key, j), quote(a), `no such peer in [[peers]]; add it there, fix the name, or use "*" for every peer`)
			}
		}
	}
}

// knownPeer reports whether a service or forward may name the peer: a peer
// of c, or any name when the trust file, which may list it, did not load.
func (c *Config) knownPeer(name string) bool {
	_, ok := c.PeerByName(name)
	return ok || c.trustUnread
}

func (c *Config) validateTarget(p *problems, key, t string, udp bool) {
	switch {
	case t == "":
		p.invalid(key, "", `required; e.g. "127.0.0.1:5432" or "unix:/run/app.sock"`)
	case strings.HasPrefix(t, unixPrefix) && udp:
		p.invalid(key, quote(t), `a udp service needs a "host:port" target`)
	case strings.HasPrefix(t, unixPrefix):
		if msg := checkSocketPath(strings.TrimPrefix(t, unixPrefix)); msg != "" {
			p.invalid(key, quote(t), "%s", msg)
		}
	default:
		if msg := checkEndpoint(t); msg != "" {
			p.invalid(key, quote(t), "%s", msg)
		}
	}
}

func (c *Config) validateForwards(p *problems) {
	listens := map[string]int{}
	for i, f := range c.Forwards {
		key := fmt.Sprintf("forwards[%d]", i)
		if norm, msg := checkForwardListen(f.Listen); msg != "" {
			value := ""
			if f.Listen != "" {
				value = quote(f.Listen)
			}
			p.invalid(key+".listen", value, "%s", msg)
		} else if j, dup := listens[f.Protocol+" "+norm]; dup {
			other := "port"
			if strings.HasPrefix(norm, unixPrefix) {
				other = "path"
			}
			p.invalid(key+".listen", quote(f.Listen), "same address as forwards[%d] (%s); use another %s", j, norm, other)
		} else {
			listens[f.Protocol+" "+norm] = i
			if f.Protocol == ProtocolUDP && c.Discovery.MDNS && strings.HasSuffix(norm, ":5353") {
				p.invalid(key+".listen", quote(f.Listen), "port 5353 is mDNS's, which this node's own discovery listens on (discovery.mdns); use another port, e.g. 5300")
			}
		}
		switch {
		case f.Protocol != "" && f.Protocol != ProtocolTCP && f.Protocol != ProtocolUDP:
			p.invalid(key+".protocol", quote(f.Protocol), `must be "tcp" or "udp"`)
		case f.Protocol == ProtocolUDP && strings.HasPrefix(f.Listen, unixPrefix):
			p.invalid(key+".listen", quote(f.Listen), `a udp forward listens on a "host:port", not a Unix socket`)
		}
		checkIdle(p, key, f.IdleTimeout, f.Protocol == ProtocolUDP)
		if f.Peer == "" {
			p.invalid(key+".peer", "", "required; name a [[peers]] entry")
		} else if !c.knownPeer(f.Peer) {
			p.invalid(key+".peer", quote(f.Peer), "no such peer in [[peers]]; add it there or fix the name")
		}
		if f.Service == "" {
			p.invalid(key+".service", "", "required; name a service of that peer")
		} else if !validName(f.Service) {
			p.invalid(key+".service", quote(f.Service), "use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit")
		}
		if n := f.MaxConnections; n < 0 || n > MaxForwardConnections {
			p.invalid(key+".max_connections", strconv.Itoa(n), "must be between 1 and %d; absent or 0 means the default, %d",
				MaxForwardConnections, DefaultForwardConnections)
		}
	}
}

// checkIdle checks the idle_timeout of entry key, which only udp entries have.
func checkIdle(p *problems, key string, d time.Duration, udp bool) {
	switch {
	case d == 0:
	case !udp:
		p.invalid(key+".idle_timeout", d.String(), `only udp flows idle out; remove it, or set protocol = "udp"`)
	case d < time.Second || d > MaxFlowIdle:
		p.invalid(key+".idle_timeout", d.String(), "must be between 1s and %s", MaxFlowIdle)
	}
}

// checkForwardListen returns a forward's normalised listen address, or what is wrong with it.
// A Unix socket's directory must exist: p2pd creates the socket, not the directories.
func checkForwardListen(s string) (string, string) {
	if s == "" {
		return "", `required; e.g. "15432" for 127.0.0.1:15432`
	}
	norm, msg := normalizeForward(s)
	if msg != "" {
		return "", msg
	}
	if path, ok := strings.CutPrefix(norm, unixPrefix); ok {
		if msg := checkSocketDir(filepath.Dir(path)); msg != "" {
			return "", msg
		}
	}
	return norm, ""
}

func (c *Config) validateLog(p *problems) {
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		p.invalid("log.level", quote(c.Log.Level), `must be "debug", "info", "warn" or "error"`)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		p.invalid("log.format", quote(c.Log.Format), `must be "text" or "json"`)
	}
}
