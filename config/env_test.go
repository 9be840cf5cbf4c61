package config

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"
)

const envBase = `
[node]
name = "from-file"
listen = ["127.0.0.1:4242"]

[discovery]
mdns = true
bootstrap = ["/ip4/203.0.113.7/udp/4242/quic-v1/p2p/` + idDB + `"]

[log]
level = "info"
`

func TestEnvOverrides(t *testing.T) {
	isolate(t)
	t.Setenv("P2PD_NODE_NAME", "from-env")
	t.Setenv("P2PD_NODE_LISTEN", "10.0.0.1:1, [::1]:2 ,")
	t.Setenv("P2PD_NODE_KEY_FILE", "keys/node.key")
	t.Setenv("P2PD_DISCOVERY_MDNS", "false")
	t.Setenv("P2PD_DISCOVERY_DHT", "1")
	t.Setenv("P2PD_DISCOVERY_RELAYS", "/dns4/relay.example.net/udp/4242/quic-v1/p2p/"+idWeb)
	t.Setenv("P2PD_LOG_LEVEL", "debug")
	t.Setenv("P2PD_LOG_FORMAT", "json")
	path := writeFile(t, "p2pd.toml", envBase)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Node.Name != "from-env" {
		t.Errorf("name = %q, want from-env", c.Node.Name)
	}
	if want := []string{"10.0.0.1:1", "[::1]:2"}; !slices.Equal(c.Node.Listen, want) {
		t.Errorf("listen = %q, want %q", c.Node.Listen, want)
	}
	if want := filepath.Join(filepath.Dir(path), "keys", "node.key"); c.Node.KeyFile != want {
		t.Errorf("key_file = %q, want %q (relative to the config file)", c.Node.KeyFile, want)
	}
	if c.Discovery.MDNS || !c.Discovery.DHT {
		t.Errorf("mdns, dht = %v, %v; want false, true", c.Discovery.MDNS, c.Discovery.DHT)
	}
	if len(c.Discovery.Bootstrap) != 1 || len(c.Discovery.Relays) != 1 {
		t.Errorf("bootstrap %q (from file), relays %q (from env)", c.Discovery.Bootstrap, c.Discovery.Relays)
	}
	if c.Log != (Log{Level: "debug", Format: "json"}) {
		t.Errorf("log = %+v", c.Log)
	}
}

func TestEnvWithoutFile(t *testing.T) {
	isolate(t)
	t.Setenv("P2PD_NODE_LISTEN", "127.0.0.1:5000")
	t.Setenv("P2PD_DISCOVERY_RELAY_SERVICE", "true")
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if c.Path != "" || !slices.Equal(c.Node.Listen, []string{"127.0.0.1:5000"}) || !c.Discovery.RelayService {
		t.Fatalf("got path %q listen %q relay_service %v", c.Path, c.Node.Listen, c.Discovery.RelayService)
	}
}

func TestEnvEmptyIsUnset(t *testing.T) {
	isolate(t) // sets every P2PD_ variable to ""
	c, err := loadString(t, envBase)
	if err != nil {
		t.Fatal(err)
	}
	if c.Node.Name != "from-file" || !c.Discovery.MDNS {
		t.Fatalf("empty variables must not override: name %q mdns %v", c.Node.Name, c.Discovery.MDNS)
	}
}

func TestEnvBadValues(t *testing.T) {
	tests := []struct {
		env, value string
		sentinel   error
		want       string
	}{
		{"P2PD_DISCOVERY_MDNS", "maybe", ErrType,
			`config: discovery.mdns "maybe" (set by P2PD_DISCOVERY_MDNS): want true or false`},
		{"P2PD_DISCOVERY_RELAY_SERVICE", "on", ErrType,
			`config: discovery.relay_service "on" (set by P2PD_DISCOVERY_RELAY_SERVICE): want true or false`},
		{"P2PD_LOG_LEVEL", "loud", ErrInvalid,
			`config: log.level "loud" (set by P2PD_LOG_LEVEL): must be "debug", "info", "warn" or "error"`},
		{"P2PD_NODE_LISTEN", "127.0.0.1:1,nonsense", ErrInvalid,
			`config: node.listen[1] "nonsense" (set by P2PD_NODE_LISTEN): no port; want "host:port", e.g. "127.0.0.1:4242"`},
		{"P2PD_NODE_LISTEN", " , ", ErrInvalid,
			`config: node.listen (set by P2PD_NODE_LISTEN): needs at least one "host:port"; the default is ["0.0.0.0:4242", "[::]:4242"]`},
	}
	for _, tt := range tests {
		t.Run(tt.env+"="+tt.value, func(t *testing.T) {
			isolate(t)
			t.Setenv(tt.env, tt.value)
			_, err := loadString(t, envBase)
			if !errors.Is(err, tt.sentinel) {
				t.Fatalf("err = %v, want %v", err, tt.sentinel)
			}
			if got := messages(err); !slices.Equal(got, []string{tt.want}) {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}
