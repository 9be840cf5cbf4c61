package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/p2pd/p2pd/identity"
)

// The schema lives here and nowhere else: the key names, their TOML types and where each value
// goes in Config. Keys, the unknown-key check, the environment bindings and decoding all read
// this table.

// kind is the TOML type of a key.
type kind uint8

const (
	kindString kind = iota
	kindBool
	kindList // a list of strings
	kindInt
)

// field is one key of a section.
type field struct {
	name string
	kind kind
	want string // the expected type, for messages: "want <want>, got ..."
	// set stores a value of the field's kind into entry i of c (i is 0 for plain tables).
	// A non-nil error is the reason the value is unusable.
	set func(c *Config, i int, v any) error
}

// section is a top-level table ([node]) or array of tables ([[peers]]).
type section struct {
	name   string
	array  bool
	alloc  func(c *Config, n int) // arrays only: make room for n entries
	fields []field
}

const (
	wantString = "a string"
	wantBool   = "true or false"
	wantPath   = "a file path string"
)

func str(dst func(c *Config, i int) *string) func(*Config, int, any) error {
	return func(c *Config, i int, v any) error { *dst(c, i) = v.(string); return nil }
}

func boolean(dst func(c *Config) *bool) func(*Config, int, any) error {
	return func(c *Config, _ int, v any) error { *dst(c) = v.(bool); return nil }
}

func integer(dst func(c *Config, i int) *int) func(*Config, int, any) error {
	return func(c *Config, i int, v any) error { *dst(c, i) = v.(int); return nil }
}

const wantDuration = `a duration such as "60s" or "5m"`

// duration parses a Go duration string ("90s", "5m").
func duration(dst func(c *Config, i int) *time.Duration) func(*Config, int, any) error {
	return func(c *Config, i int, v any) error {
		d, err := time.ParseDuration(v.(string))
		if err != nil {
			return fmt.Errorf("not a duration; write it like \"60s\" or \"5m\"")
		}
		*dst(c, i) = d
		return nil
	}
}

func list(dst func(c *Config, i int) *[]string) func(*Config, int, any) error {
	return func(c *Config, i int, v any) error { *dst(c, i) = v.([]string); return nil }
}

var schema = []section{
	{name: "node", fields: []field{
		{"name", kindString, wantString, str(func(c *Config, _ int) *string { return &c.Node.Name })},
		{"key_file", kindString, wantPath, str(func(c *Config, _ int) *string { return &c.Node.KeyFile })},
		{"listen", kindList, `a list of "host:port" strings`, list(func(c *Config, _ int) *[]string { return &c.Node.Listen })},
		{"listen_tcp", kindList, `a list of "host:port" strings`, list(func(c *Config, _ int) *[]string { return &c.Node.ListenTCP })},
		{"control_socket", kindString, wantPath, str(func(c *Config, _ int) *string { return &c.Node.ControlSocket })},
		{"state_dir", kindString, wantPath, str(func(c *Config, _ int) *string { return &c.Node.StateDir })},
		{"session_idle", kindString, wantDuration, duration(func(c *Config, _ int) *time.Duration { return &c.Node.SessionIdle })},
	}},
	{name: "discovery", fields: []field{
		{"mdns", kindBool, wantBool, boolean(func(c *Config) *bool { return &c.Discovery.MDNS })},
		{"dht", kindBool, wantBool, boolean(func(c *Config) *bool { return &c.Discovery.DHT })},
		{"bootstrap", kindList, "a list of multiaddr strings", list(func(c *Config, _ int) *[]string { return &c.Discovery.Bootstrap })},
		{"relays", kindList, "a list of multiaddr strings", list(func(c *Config, _ int) *[]string { return &c.Discovery.Relays })},
		{"relay_service", kindBool, wantBool, boolean(func(c *Config) *bool { return &c.Discovery.RelayService })},
	}},
	{name: "peers", array: true, alloc: func(c *Config, n int) { c.Peers = make([]Peer, n) }, fields: []field{
		{"name", kindString, wantString, str(func(c *Config, i int) *string { return &c.Peers[i].Name })},
		{"id", kindString, "a peer ID string", setPeerID},
		{"addresses", kindList, `a list of "host:port" strings`, list(func(c *Config, i int) *[]string { return &c.Peers[i].Addresses })},
		{"transport", kindString, `"auto", "quic" or "tcp"`, str(func(c *Config, i int) *string { return &c.Peers[i].Transport })},
		{"always_on", kindBool, wantBool, func(c *Config, i int, v any) error { c.Peers[i].AlwaysOn = v.(bool); return nil }},
	}},
	{name: "services", array: true, alloc: func(c *Config, n int) { c.Services = make([]Service, n) }, fields: []field{
		{"name", kindString, wantString, str(func(c *Config, i int) *string { return &c.Services[i].Name })},
		{"target", kindString, `a "host:port" or "unix:/path" string`, str(func(c *Config, i int) *string { return &c.Services[i].Target })},
		{"protocol", kindString, `"tcp" or "udp"`, str(func(c *Config, i int) *string { return &c.Services[i].Protocol })},
		{"allow", kindList, `a list of peer names or "*"`, list(func(c *Config, i int) *[]string { return &c.Services[i].Allow })},
		{"proxy_protocol", kindString, `"" or "v2"`, str(func(c *Config, i int) *string { return &c.Services[i].ProxyProtocol })},
		{"idle_timeout", kindString, wantDuration, duration(func(c *Config, i int) *time.Duration { return &c.Services[i].IdleTimeout })},
	}},
	{name: "forwards", array: true, alloc: func(c *Config, n int) { c.Forwards = make([]Forward, n) }, fields: []field{
		{"listen", kindString, `a "host:port" or "unix:/path" string`, setForwardListen},
		{"peer", kindString, "a peer name string", str(func(c *Config, i int) *string { return &c.Forwards[i].Peer })},
		{"service", kindString, "a service name string", str(func(c *Config, i int) *string { return &c.Forwards[i].Service })},
		{"max_connections", kindInt, "an integer", integer(func(c *Config, i int) *int { return &c.Forwards[i].MaxConnections })},
		{"protocol", kindString, `"tcp" or "udp"`, str(func(c *Config, i int) *string { return &c.Forwards[i].Protocol })},
		{"idle_timeout", kindString, wantDuration, duration(func(c *Config, i int) *time.Duration { return &c.Forwards[i].IdleTimeout })},
	}},
	{name: "proxy", fields: []field{
		{"socks5", kindString, `a "host:port" string`, setProxyListen(func(c *Config) *string { return &c.Proxy.SOCKS5 })},
		{"http", kindString, `a "host:port" string`, setProxyListen(func(c *Config) *string { return &c.Proxy.HTTP })},
		{"username", kindString, wantString, str(func(c *Config, _ int) *string { return &c.Proxy.Username })},
		{"password", kindString, wantString, str(func(c *Config, _ int) *string { return &c.Proxy.Password })},
		{"max_connections", kindInt, "an integer", integer(func(c *Config, _ int) *int { return &c.Proxy.MaxConnections })},
	}},
	{name: "metrics", fields: []field{
		{"listen", kindString, `a "host:port" string`, setProxyListen(func(c *Config) *string { return &c.Metrics.Listen })},
	}},
	{name: "log", fields: []field{
		{"level", kindString, `"debug", "info", "warn" or "error"`, str(func(c *Config, _ int) *string { return &c.Log.Level })},
		{"format", kindString, `"text" or "json"`, str(func(c *Config, _ int) *string { return &c.Log.Format })},
	}},
}

func setPeerID(c *Config, i int, v any) error {
	id, err := identity.ParsePeerID(v.(string))
	if err != nil {
		return fmt.Errorf("not a valid peer ID (%v); copy the 12D3KooW... ID that `p2pd id` prints on that peer", err)
	}
	c.Peers[i].ID = id
	return nil
}

// setForwardListen stores the normalised address, or the text as written when it does not
// parse so that Validate reports it.
func setForwardListen(c *Config, i int, v any) error {
	s := v.(string)
	if n, msg := normalizeForward(s); msg == "" {
		s = n
	}
	c.Forwards[i].Listen = s
	return nil
}

// Keys returns every key of the schema as a dotted path, array tables without an index:
// "node.name", ..., "peers.id", "services.allow", ... . config.example.toml documents each.
func Keys() []string {
	var keys []string
	for _, s := range schema {
		for _, f := range s.fields {
			keys = append(keys, s.name+"."+f.name)
		}
	}
	return keys
}

// envName is the environment variable that overrides a table key: "node.listen" ->
// "P2PD_NODE_LISTEN".
func envName(key string) string {
	return envPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

const envPrefix = "P2PD"

// describe renders a decoded TOML value for a message.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "nothing"
	case string:
		return quote(x)
	case map[string]any:
		return "a table"
	case []any:
		parts := make([]string, 0, len(x))
		for i, e := range x {
			if i == 8 {
				parts = append(parts, "...")
				break
			}
			parts = append(parts, describe(e))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case []map[string]any:
		return "an array of tables"
	case time.Time:
		return x.Format(time.RFC3339Nano)
	}
	s := fmt.Sprint(v)
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return s
}

// suggest returns the candidate closest to an unknown key, or "" when none is close.
func suggest(key string, candidates []string) string {
	best, bestDist := "", -1
	for _, c := range candidates {
		d := editDistance(key, c)
		limit := 1 + max(len(key), len(c))/3
		if d <= limit && (bestDist < 0 || d < bestDist) {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return max(len(a), len(b)) // not worth a suggestion; bounded work for long keys
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func sectionNames() []string {
	names := make([]string, len(schema))
	for i, s := range schema {
		names[i] = s.name
	}
	return names
}

func (s section) fieldNames() []string {
	names := make([]string, len(s.fields))
	for i, f := range s.fields {
		names[i] = f.name
	}
	return names
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
