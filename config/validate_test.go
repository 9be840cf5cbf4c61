package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestValidate loads a config with one mistake and checks the one message it gives.
func TestValidate(t *testing.T) {
	svc := func(body string) string { return twoPeers + "[[services]]\n" + body }
	fwd := func(body string) string { return twoPeers + "[[forwards]]\n" + body }
	long := strings.Repeat("x", 65)
	tests := []struct {
		name, toml, want string
	}{
		{"empty node name", "[node]\nname = \"\"\n",
			`config: node.name: must not be empty; set it to a name for this host`},
		{"long node name", "[node]\nname = \"" + long + "\"\n",
			`config: node.name "` + long + `": longer than 64 bytes; choose a shorter name`},
		{"control char in node name", "[node]\nname = \"a\\u0007b\"\n",
			`config: node.name "a\ab": has control characters or invalid UTF-8; use printable text`},
		{"no listen", "[node]\nlisten = []\n",
			`config: node.listen: needs at least one "host:port"; the default is ["0.0.0.0:4242", "[::]:4242"]`},
		{"listen no port", "[node]\nlisten = [\"127.0.0.1\"]\n",
			`config: node.listen[0] "127.0.0.1": no port; want "host:port", e.g. "127.0.0.1:4242"`},
		{"listen IPv6 no port", "[node]\nlisten = [\"[::1]\"]\n",
			`config: node.listen[0] "[::1]": no port; want "host:port", e.g. "[::1]:4242"`},
		{"listen IPv6 no brackets", "[node]\nlisten = [\"::1:4242\"]\n",
			`config: node.listen[0] "::1:4242": not "host:port" (write IPv6 addresses as "[::1]:port")`},
		{"listen port range", "[node]\nlisten = [\"0.0.0.0:65536\"]\n",
			`config: node.listen[0] "0.0.0.0:65536": port 65536 out of range; use 0-65535`},
		{"listen host name", "[node]\nlisten = [\"example.com:4242\"]\n",
			`config: node.listen[0] "example.com:4242": host must be an IP address or "localhost" (use "0.0.0.0" or "[::]" for every address)`},
		{"listen empty host", "[node]\nlisten = [\":4242\"]\n",
			`config: node.listen[0] ":4242": host must be an IP address or "localhost" (use "0.0.0.0" or "[::]" for every address)`},
		{"listen duplicate", "[node]\nlisten = [\"127.0.0.1:1\", \"127.0.0.1:1\"]\n",
			`config: node.listen[1] "127.0.0.1:1": same as node.listen[0]; remove one`},
		{"listen port name", "[node]\nlisten = [\"127.0.0.1:http\"]\n",
			`config: node.listen[0] "127.0.0.1:http": port "http" is not a number; use 0-65535`},
		{"empty key file", "[node]\nkey_file = \"\"\n",
			`config: node.key_file: must not be empty; remove the key to use "identity.key" next to the config file`},
		{"long socket", "[node]\ncontrol_socket = \"/" + strings.Repeat("s", 107) + "\"\n",
			`config: node.control_socket "/` + strings.Repeat("s", 79) + `...": is 108 bytes, a Unix socket path can have at most 107; choose a shorter path`},
		{"bootstrap without peer", "[discovery]\nbootstrap = [\"/ip4/1.2.3.4/udp/1/quic-v1\"]\n",
			`config: discovery.bootstrap[0] "/ip4/1.2.3.4/udp/1/quic-v1": must be a libp2p multiaddr ending in /p2p/<peer ID>, like "/ip4/203.0.113.7/udp/4242/quic-v1/p2p/12D3KooW..."`},
		{"relay bad peer", "[discovery]\nrelays = [\"/ip4/1.2.3.4/udp/1/quic-v1/p2p/12D3KooWbad\"]\n",
			`config: discovery.relays[0] "/ip4/1.2.3.4/udp/1/quic-v1/p2p/12D3KooWbad": ends in an invalid peer ID; must be a libp2p multiaddr ending in /p2p/<peer ID>, like "/ip4/203.0.113.7/udp/4242/quic-v1/p2p/12D3KooW..."`},
		{"peer without name", "[[peers]]\nid = \"" + idDB + "\"\n",
			`config: peers[0].name: required; give it a name like "db"`},
		{"peer bad name", "[[peers]]\nname = \"-db\"\nid = \"" + idDB + "\"\n",
			`config: peers[0].name "-db": use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit`},
		{"peer duplicate name", "[[peers]]\nname = \"db\"\nid = \"" + idDB + "\"\n[[peers]]\nname = \"DB\"\nid = \"" + idWeb + "\"\n",
			`config: peers[1].name "DB": same name as peers[0]; peer names must be unique, ignoring case`},
		{"peer without id", "[[peers]]\nname = \"db\"\n",
			"config: peers[0].id: required; copy the 12D3KooW... ID that `p2pd id` prints on that peer"},
		{"peer duplicate id", "[[peers]]\nname = \"db\"\nid = \"" + idDB + "\"\n[[peers]]\nname = \"db2\"\nid = \"" + idDB + "\"\n",
			`config: peers[1].id "` + idDB + `": same peer ID as peers[0]; list each peer once`},
		{"peer address port 0", "[[peers]]\nname = \"db\"\nid = \"" + idDB + "\"\naddresses = [\"db.example.net:0\"]\n",
			`config: peers[0].addresses[0] "db.example.net:0": port 0 out of range; use 1-65535`},
		{"peer address bad host", "[[peers]]\nname = \"db\"\nid = \"" + idDB + "\"\naddresses = [\"a b:1\"]\n",
			`config: peers[0].addresses[0] "a b:1": host "a b" is neither an IP address nor a DNS name`},
		{"service target no port", svc("name = \"pg\"\ntarget = \"db.internal\"\n"),
			`config: services[0].target "db.internal": no port; want "host:port", e.g. "127.0.0.1:4242"`},
		{"service target port", svc("name = \"pg\"\ntarget = \"127.0.0.1:99999\"\n"),
			`config: services[0].target "127.0.0.1:99999": port 99999 out of range; use 1-65535`},
		{"service no target", svc("name = \"pg\"\n"),
			`config: services[0].target: required; e.g. "127.0.0.1:5432" or "unix:/run/app.sock"`},
		{"service relative unix", svc("name = \"pg\"\ntarget = \"unix:pg.sock\"\n"),
			`config: services[0].target "unix:pg.sock": the socket path must be absolute: "unix:/path/to/socket"`},
		{"udp unix", svc("name = \"dns\"\ntarget = \"unix:/run/dns.sock\"\nprotocol = \"udp\"\n"),
			`config: services[0].target "unix:/run/dns.sock": a udp service needs a "host:port" target`},
		{"service protocol", svc("name = \"pg\"\ntarget = \"127.0.0.1:1\"\nprotocol = \"sctp\"\n"),
			`config: services[0].protocol "sctp": must be "tcp" or "udp"`},
		{"service bad name", svc("name = \"p g\"\ntarget = \"127.0.0.1:1\"\n"),
			`config: services[0].name "p g": use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit`},
		{"service duplicate", svc("name = \"pg\"\ntarget = \"127.0.0.1:1\"\n[[services]]\nname = \"pg\"\ntarget = \"127.0.0.1:2\"\n"),
			`config: services[1].name "pg": same name as services[0]; service names must be unique, ignoring case`},
		{"allow unknown peer", svc("name = \"pg\"\ntarget = \"127.0.0.1:1\"\nallow = [\"db\", \"web2\"]\n"),
			`config: services[0].allow[1] "web2": no such peer in [[peers]]; add it there, fix the name, or use "*" for every peer`},
		{"udp forward on mDNS's port", fwd("listen = \"127.0.0.1:5353\"\nprotocol = \"udp\"\npeer = \"db\"\nservice = \"dns\"\n"),
			`config: forwards[0].listen "127.0.0.1:5353": port 5353 is mDNS's, which this node's own discovery listens on (discovery.mdns); use another port, e.g. 5300`},
		{"forward unknown peer", fwd("listen = \"1\"\npeer = \"db\"\nservice = \"pg\"\n[[forwards]]\nlisten = \"2\"\npeer = \"dbx\"\nservice = \"pg\"\n"),
			`config: forwards[1].peer "dbx": no such peer in [[peers]]; add it there or fix the name`},
		{"forward duplicate listen", fwd("listen = \"15432\"\npeer = \"db\"\nservice = \"pg\"\n[[forwards]]\nlisten = \"127.0.0.1:15432\"\npeer = \"db\"\nservice = \"pg2\"\n"),
			`config: forwards[1].listen "127.0.0.1:15432": same address as forwards[0] (127.0.0.1:15432); use another port`},
		{"forward port 0", fwd("listen = \"0\"\npeer = \"db\"\nservice = \"pg\"\n"),
			`config: forwards[0].listen "0": port 0 out of range; use 1-65535`},
		{"forward no service", fwd("listen = \"1\"\npeer = \"db\"\n"),
			`config: forwards[0].service: required; name a service of that peer`},
		{"forward no listen", fwd("peer = \"db\"\nservice = \"pg\"\n"),
			`config: forwards[0].listen: required; e.g. "15432" for 127.0.0.1:15432`},
		{"log level", "[log]\nlevel = \"verbose\"\n",
			`config: log.level "verbose": must be "debug", "info", "warn" or "error"`},
		{"log format", "[log]\nformat = \"xml\"\n",
			`config: log.format "xml": must be "text" or "json"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t)
			_, err := loadString(t, tt.toml)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if got := messages(err); !slices.Equal(got, []string{tt.want}) {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestEveryProblemAtOnce(t *testing.T) {
	isolate(t)
	_, err := loadString(t, `
bogus = 1
[node]
listen = ["0.0.0.0:70000"]
[discovery]
mdns = "yes"
[[peers]]
name = "db"
id = "not-an-id"
[[services]]
name = "pg"
target = "127.0.0.1:5432"
allow = ["web2"]
[[forwards]]
listen = "15432"
peer = "nobody"
service = "pg"
[log]
level = "loud"
`)
	got := messages(err)
	want := []string{
		`unknown key "bogus"`,
		`discovery.mdns: want true or false, got "yes"`,
		`peers[0].id "not-an-id": not a valid peer ID`,
		`node.listen[0] "0.0.0.0:70000": port 70000 out of range`,
		`services[0].allow[0] "web2": no such peer in [[peers]]`,
		`forwards[0].peer "nobody": no such peer in [[peers]]`,
		`log.level "loud": must be`,
	}
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("problem %d = %q, want it to contain %q", i, got[i], want[i])
		}
	}
	// peers[0].id failed to decode; Validate's "required" for the same key is not repeated.
	if strings.Contains(err.Error(), "peers[0].id: required") {
		t.Errorf("repeated problem for peers[0].id:\n%v", err)
	}
}

func TestValidateBuiltConfig(t *testing.T) {
	isolate(t)
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	c.Services = []Service{{Name: "pg", Target: "127.0.0.1:5432"}} // Protocol "" means tcp
	c.Forwards = []Forward{{Listen: "15432", Peer: "db", Service: "pg"}}
	err := c.Validate()
	if got := messages(err); len(got) != 1 || got[0] != `config: forwards[0].peer "db": no such peer in [[peers]]; add it there or fix the name` {
		t.Fatalf("got %q", got)
	}
}

func TestForwardListenNormalised(t *testing.T) {
	tests := []struct{ in, want string }{
		{"15432", "127.0.0.1:15432"},
		{":15432", "127.0.0.1:15432"},
		{"127.0.0.1:15432", "127.0.0.1:15432"},
		{"0.0.0.0:8080", "0.0.0.0:8080"},
		{"[::1]:80", "[::1]:80"},
		{"[::]:80", "[::]:80"},
		{"localhost:9000", "localhost:9000"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			isolate(t)
			c, err := loadString(t, twoPeers+"[[forwards]]\nlisten = \""+tt.in+"\"\npeer = \"db\"\nservice = \"pg\"\n")
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Forwards[0].Listen; got != tt.want {
				t.Fatalf("listen %q -> %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	for _, bad := range []string{"", "x", "15432x", "example.com:1", "127.0.0.1:", "65536", "1.2.3.4:0"} {
		if n, msg := normalizeForward(bad); msg == "" {
			t.Errorf("normalizeForward(%q) = %q, want an error", bad, n)
		}
	}
}

func TestPeerByName(t *testing.T) {
	isolate(t)
	c, err := loadString(t, twoPeers)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := c.PeerByName("web1")
	if !ok || p.ID.String() != idWeb {
		t.Fatalf("PeerByName(web1) = %v, %v", p, ok)
	}
	if _, ok := c.PeerByName("WEB1"); ok {
		t.Fatal("PeerByName must match the name exactly")
	}
}
