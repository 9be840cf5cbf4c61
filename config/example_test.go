package config

import (
	"bufio"
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/viper"
)

const examplePath = "../config.example.toml"

func TestExampleLoadsAndValidates(t *testing.T) {
	isolate(t)
	c, err := Load(examplePath)
	if err != nil {
		t.Fatalf("Load(%s): %v", examplePath, err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if len(c.Peers) == 0 || len(c.Services) == 0 || len(c.Forwards) == 0 {
		t.Fatalf("example should show every array table, got %d peers, %d services, %d forwards",
			len(c.Peers), len(c.Services), len(c.Forwards))
	}
	for _, p := range c.Peers {
		if p.ID.IsZero() || !strings.HasPrefix(p.ID.String(), "12D3KooW") {
			t.Errorf("peer %q: id %q is not a real peer ID", p.Name, p.ID)
		}
	}
}

// exampleKeys returns the keys set in the example, flattened like Keys(): "peers.name".
func exampleKeys(t *testing.T, data []byte) []string {
	t.Helper()
	v := viper.New()
	v.SetConfigType("toml")
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for section, val := range v.AllSettings() {
		var tables []any
		switch x := val.(type) {
		case map[string]any:
			tables = []any{x}
		case []any:
			tables = x
		default:
			keys = append(keys, section)
		}
		for _, tbl := range tables {
			for k := range tbl.(map[string]any) {
				if key := section + "." + k; !slices.Contains(keys, key) {
					keys = append(keys, key)
				}
			}
		}
	}
	slices.Sort(keys)
	return keys
}

func TestExampleDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	inExample := exampleKeys(t, data)
	known := Keys()
	for _, k := range known {
		if !slices.Contains(inExample, k) {
			t.Errorf("key %q is in Keys() but not set in %s", k, examplePath)
		}
	}
	for _, k := range inExample {
		if !slices.Contains(known, k) {
			t.Errorf("key %q is in %s but not in Keys()", k, examplePath)
		}
	}

	// The first time each key appears it has a comment on the line above.
	section, prev := "", ""
	commented := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		case line != "" && !strings.HasPrefix(line, "#"):
			key := section + "." + strings.TrimSpace(strings.SplitN(line, "=", 2)[0])
			if _, seen := commented[key]; !seen {
				commented[key] = strings.HasPrefix(prev, "#")
			}
		}
		prev = line
	}
	for _, k := range known {
		if !commented[k] {
			t.Errorf("%s: key %q has no comment above its first use", examplePath, k)
		}
	}
}

func TestKeysMatchSchema(t *testing.T) {
	want := []string{
		"node.name", "node.key_file", "node.listen", "node.listen_tcp", "node.control_socket", "node.state_dir", "node.session_idle",
		"discovery.mdns", "discovery.dht", "discovery.bootstrap", "discovery.relays", "discovery.relay_service",
		"peers.name", "peers.id", "peers.addresses", "peers.transport", "peers.always_on",
		"services.name", "services.target", "services.protocol", "services.allow", "services.proxy_protocol", "services.idle_timeout",
		"forwards.listen", "forwards.peer", "forwards.service", "forwards.max_connections", "forwards.protocol", "forwards.idle_timeout",
		"proxy.socks5", "proxy.http", "proxy.username", "proxy.password", "proxy.max_connections",
		"metrics.listen",
		"log.level", "log.format",
	}
	if got := Keys(); !slices.Equal(got, want) {
		t.Fatalf("Keys() = %q\nwant     %q", got, want)
	}
}
