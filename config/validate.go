package config

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/p2pd/p2pd/identity"
)

const maxNameLen = 64

// Validate checks c and returns every problem at once (errors.Join of *KeyError), each naming
// the key, the value and the fix. Load calls it; call it again after changing a Config.
func (c *Config) Validate() error {
	return errors.Join(c.validate()...)
}

func (c *Config) validate() problems {
	var p problems
	c.validateNode(&p)
	c.validateDiscovery(&p)
	c.validatePeers(&p)
	c.validateServices(&p)
	c.validateForwards(&p)
	c.validateProxy(&p)
	c.validateMetrics(&p)
	c.validateLog(&p)
	return p
}

func (c *Config) validateNode(p *problems) {
	n := c.Node
	if msg := checkNodeName(n.Name); msg != "" && n.Name == "" {
		p.invalid("node.name", "", "%s", msg)
	} else if msg != "" {
		p.invalid("node.name", quote(n.Name), "%s", msg)
	}
	if n.KeyFile == "" {
		p.invalid("node.key_file", "", `must not be empty; remove the key to use "identity.key" next to the config file`)
	}
	if d := n.SessionIdle; d != 0 && (d < MinSessionIdle || d > MaxSessionIdle) {
		p.invalid("node.session_idle", d.String(), "must be between %s and %s; absent means %s", MinSessionIdle, MaxSessionIdle, DefaultSessionIdle)
	}
	switch {
	case n.ControlSocket == "":
		p.invalid("node.control_socket", "", "must not be empty; remove the key to use the default %s", DefaultControlSocket())
	case len(n.ControlSocket) > maxSocketPath:
		p.invalid("node.control_socket", quote(n.ControlSocket), "is %d bytes, a Unix socket path can have at most %d; choose a shorter path",
			len(n.ControlSocket), maxSocketPath)
	}
	if len(n.Listen) == 0 {
		p.invalid("node.listen", "", `needs at least one "host:port"; the default is ["0.0.0.0:4242", "[::]:4242"]`)
	}
	checkBinds(p, "node.listen", n.Listen)
	checkBinds(p, "node.listen_tcp", n.ListenTCP)
}

// checkBinds checks a list of "host:port" listen addresses under key.
func checkBinds(p *problems, name string, addrs []string) {
	seen := map[string]int{}
	for i, l := range addrs {
		key := fmt.Sprintf("%s[%d]", name, i)
		if msg := checkBind(l, 0); msg != "" {
			p.invalid(key, quote(l), "%s", msg)
		} else if j, dup := seen[l]; dup {
			p.invalid(key, quote(l), "same as %s[%d]; remove one", name, j)
		} else {
			seen[l] = i
		}
	}
}

func (c *Config) validateDiscovery(p *problems) {
	check := func(name string, addrs []string) {
		for i, a := range addrs {
			if msg := checkP2PAddr(a); msg != "" {
				p.invalid(fmt.Sprintf("discovery.%s[%d]", name, i), quote(a), "%s", msg)
			}
		}
	}
	check("bootstrap", c.Discovery.Bootstrap)
	check("relays", c.Discovery.Relays)
}

// checkP2PAddr checks the shape of a libp2p multiaddr that names its peer:
// "/ip4/203.0.113.7/udp/4242/quic-v1/p2p/12D3KooW...". The discovery package parses it fully.
func checkP2PAddr(s string) string {
	const want = `must be a libp2p multiaddr ending in /p2p/<peer ID>, like "/ip4/203.0.113.7/udp/4242/quic-v1/p2p/12D3KooW..."`
	i := strings.LastIndex(s, "/p2p/")
	if !strings.HasPrefix(s, "/") || i < 0 {
		return want
	}
	if _, err := identity.ParsePeerID(s[i+len("/p2p/"):]); err != nil {
		return "ends in an invalid peer ID; " + want
	}
	return ""
}

func (c *Config) validatePeers(p *problems) {
	names := map[string]int{} // lower-cased name -> index: DNS-shaped names ignore case
	ids := map[identity.PeerID]int{}
	for i, peer := range c.Peers {
		key := fmt.Sprintf("peers[%d]", i)
		if checkName(p, key+".name", peer.Name, `like "db"`) {
			if j, dup := names[strings.ToLower(peer.Name)]; dup {
				p.invalid(key+".name", quote(peer.Name), "same name as peers[%d]; peer names must be unique, ignoring case", j)
			} else {
				names[strings.ToLower(peer.Name)] = i
			}
		}
		if peer.ID.IsZero() {
			p.invalid(key+".id", "", "required; copy the 12D3KooW... ID that `p2pd id` prints on that peer")
		} else if j, dup := ids[peer.ID]; dup {
			p.invalid(key+".id", quote(peer.ID.String()), "same peer ID as peers[%d]; list each peer once", j)
		} else {
			ids[peer.ID] = i
		}
		for j, a := range peer.Addresses {
			if msg := checkEndpoint(a); msg != "" {
				p.invalid(fmt.Sprintf("%s.addresses[%d]", key, j), quote(a), "%s", msg)
			}
		}
		switch peer.Transport {
		case "", "auto", "quic", "tcp":
		default:
			p.invalid(key+".transport", quote(peer.Transport), `must be "auto", "quic" or "tcp"`)
		}
	}
}

// checkName checks a peer or service name; it reports whether the name is well-formed.
func checkName(p *problems, key, name, example string) bool {
	if name == "" {
		p.invalid(key, "", "required; give it a name %s", example)
		return false
	}
	if !validName(name) {
		p.invalid(key, quote(name), "use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit")
		return false
	}
	return true
}

// validName matches [a-zA-Z0-9][a-zA-Z0-9._-]{0,62}.
func validName(s string) bool {
	if s == "" || len(s) > 63 || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func checkNodeName(name string) string {
	switch {
	case name == "":
		return "must not be empty; set it to a name for this host"
	case len(name) > maxNameLen:
		return fmt.Sprintf("longer than %d bytes; choose a shorter name", maxNameLen)
	case !utf8.ValidString(name) || hasControl(name):
		return "has control characters or invalid UTF-8; use printable text"
	}
	return ""
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, unicode.IsControl)
}

// validateMetrics checks [metrics] listen: a TCP "host:port" that no forward or proxy uses.
func (c *Config) validateMetrics(p *problems) {
	l := c.Metrics.Listen
	if l == "" {
		return
	}
	norm, msg := normalizeForward(l)
	switch {
	case strings.HasPrefix(l, unixPrefix):
		p.invalid("metrics.listen", quote(l), `must be a TCP "host:port" such as "127.0.0.1:9464"; Prometheus scrapes over HTTP`)
	case msg != "":
		p.invalid("metrics.listen", quote(l), "%s", msg)
	case norm == c.Proxy.SOCKS5 || norm == c.Proxy.HTTP:
		p.invalid("metrics.listen", quote(l), "same address as a [proxy] listener (%s); use another port", norm)
	default:
		for i, f := range c.Forwards {
			if f.Listen == norm && f.Protocol != ProtocolUDP {
				p.invalid("metrics.listen", quote(l), "same address as forwards[%d] (%s); use another port", i, norm)
			}
		}
	}
}
