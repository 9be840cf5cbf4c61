package config

import (
	"slices"
	"testing"
)

func TestUnknownEnvWarnings(t *testing.T) {
	isolate(t)
	t.Setenv("P2PD_NODE_LISTN", "127.0.0.1:4242")
	t.Setenv("P2PD_LOG_LEVL", "debug")
	t.Setenv("P2PD_WHATEVER_ELSE_ENTIRELY", "1")
	t.Setenv("P2PD_EMPTY_AND_UNKNOWN", "") // empty: unset, as for known ones
	t.Setenv("P2PD_LOG_LEVEL", "debug")    // known: no warning
	t.Setenv("P2PD_PEERS_NAME", "db")      // an array of tables: not from the environment
	t.Setenv("P2PD_FORWARDS", "x")
	c, err := loadString(t, "[node]\nname = \"alpha\"\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"config: environment variable P2PD_FORWARDS is not a p2pd setting and is ignored; [[forwards]] is an array of tables, " +
			"which comes from the config file only: environment overrides set the keys of [node], [discovery], [proxy], [metrics] and [log]",
		"config: environment variable P2PD_LOG_LEVL is not a p2pd setting and is ignored; did you mean P2PD_LOG_LEVEL?",
		"config: environment variable P2PD_NODE_LISTN is not a p2pd setting and is ignored; did you mean P2PD_NODE_LISTEN?",
		"config: environment variable P2PD_PEERS_NAME is not a p2pd setting and is ignored; [[peers]] is an array of tables, " +
			"which comes from the config file only (or p2pctl trust add): environment overrides set the keys of [node], [discovery], [proxy], [metrics] and [log]",
		"config: environment variable P2PD_WHATEVER_ELSE_ENTIRELY is not a p2pd setting and is ignored; " +
			"overrides are P2PD_<TABLE>_<KEY> for the keys of [node], [discovery], [proxy], [metrics] and [log] (config.example.toml), and P2PD_CONFIG",
	}
	got := slices.Clone(c.Warnings)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("warnings:\n%q\nwant\n%q", got, want)
	}
	if c.Log.Level != "debug" {
		t.Errorf("P2PD_LOG_LEVEL was not applied: %q", c.Log.Level)
	}
	// Without a config file too.
	c, err = Load("")
	if err != nil || len(c.Warnings) != 5 {
		t.Errorf("on defaults: %v, warnings %q", err, c.Warnings)
	}
}

// TestDocumentedOverridesAreKnown: the variables the README and p2pctl
// name are never warned about.
func TestDocumentedOverridesAreKnown(t *testing.T) {
	var environ []string
	for _, name := range []string{"P2PD_CONFIG", "P2PD_NODE_LISTEN", "P2PD_NODE_CONTROL_SOCKET", "P2PD_LOG_LEVEL",
		"P2PD_PROXY_PASSWORD", "P2PD_DISCOVERY_RELAY_SERVICE"} {
		environ = append(environ, name+"=x")
	}
	if got := (&Config{}).loadWarnings(environ); len(got) != 0 {
		t.Errorf("warnings about known variables: %q", got)
	}
}

func TestExposedListenerWarnings(t *testing.T) {
	isolate(t)
	c, err := loadString(t, twoPeers+`
[[forwards]]
listen = "0.0.0.0:5432"
peer = "db"
service = "postgres"

[[forwards]]
listen = "15432"
peer = "db"
service = "postgres"

[[forwards]]
listen = "[::]:6379"
peer = "db"
service = "redis"

[[forwards]]
listen = "192.168.1.10:8080"
peer = "db"
service = "web"

[[forwards]]
listen = "[::1]:8081"
peer = "db"
service = "web"

[[forwards]]
listen = "localhost:8082"
peer = "db"
service = "web"

[proxy]
socks5 = "0.0.0.0:1080"
http = "8118"
`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"config: forwards[0].listen 0.0.0.0:5432 is reachable from the network; use 127.0.0.1 unless you mean it",
		"config: forwards[2].listen [::]:6379 is reachable from the network; use 127.0.0.1 unless you mean it",
		"config: forwards[3].listen 192.168.1.10:8080 is reachable from the network; use 127.0.0.1 unless you mean it",
		"config: proxy.socks5 0.0.0.0:1080 is reachable from the network, and anyone who reaches it uses this node's access to its peers; use 127.0.0.1 unless you mean it",
	}
	if !slices.Equal(c.Warnings, want) {
		t.Errorf("warnings:\n%q\nwant\n%q", c.Warnings, want)
	}
}
