package config

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
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
		for j, a := range s.Allow {
			if a == "*" {
				continue
			}
			if _, ok := c.PeerByName(a); !ok {
				p.invalid(fmt.Sprintf("%s.allow[%d]", key, j), quote(a), `no such peer in [[peers]]; add it there, fix the name, or use "*" for every peer`)
			}
		}
	}
}

func (c *Config) validateTarget(p *problems, key, t string, udp bool) {
	switch {
	case t == "":
		p.invalid(key, "", `required; e.g. "127.0.0.1:5432" or "unix:/run/app.sock"`)
	case strings.HasPrefix(t, unixPrefix) && udp:
		p.invalid(key, quote(t), `a udp service needs a "host:port" target`)
	case strings.HasPrefix(t, unixPrefix):
		path := strings.TrimPrefix(t, unixPrefix)
		switch {
		case !filepath.IsAbs(path):
			p.invalid(key, quote(t), `the socket path must be absolute: "unix:/path/to/socket"`)
		case len(path) > maxSocketPath:
			p.invalid(key, quote(t), "the socket path is %d bytes, a Unix socket path can have at most %d", len(path), maxSocketPath)
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
		if f.Listen == "" {
			p.invalid(key+".listen", "", `required; e.g. "15432" for 127.0.0.1:15432`)
		} else if norm, msg := normalizeForward(f.Listen); msg != "" {
			p.invalid(key+".listen", quote(f.Listen), "%s", msg)
		} else if j, dup := listens[norm]; dup {
			p.invalid(key+".listen", quote(f.Listen), "same address as forwards[%d] (%s); use another port", j, norm)
		} else {
			listens[norm] = i
		}
		if f.Peer == "" {
			p.invalid(key+".peer", "", "required; name a [[peers]] entry")
		} else if _, ok := c.PeerByName(f.Peer); !ok {
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
