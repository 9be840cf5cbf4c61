package config

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// loadWarnings are what Load warns about in a config that loads: P2PD_
// environment variables that set nothing (a misspelt override would
// otherwise be ignored in silence), and local listeners that other hosts can
// reach. environ is os.Environ().
func (c *Config) loadWarnings(environ []string) []string {
	var w []string
	known := envNames()
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, envPrefix+"_") || value == "" || containsString(known, name) {
			continue
		}
		if table := arrayTableOf(name); table != "" {
			fix := ""
			if table == "peers" {
				fix = " (or p2pctl trust add)"
			}
			w = append(w, fmt.Sprintf("config: environment variable %s is not a p2pd setting and is ignored; "+
				"[[%s]] is an array of tables, which comes from the config file only%s: environment overrides set the keys of %s",
				name, table, fix, envTables()))
		} else if s := suggest(name, known); s != "" {
			w = append(w, fmt.Sprintf("config: environment variable %s is not a p2pd setting and is ignored; did you mean %s?", name, s))
		} else {
			w = append(w, fmt.Sprintf("config: environment variable %s is not a p2pd setting and is ignored; "+
				"overrides are %s_<TABLE>_<KEY> for the keys of %s (config.example.toml), and %s",
				name, envPrefix, envTables(), envConfig))
		}
	}
	for i, f := range c.Forwards {
		if exposed(f.Listen) {
			w = append(w, fmt.Sprintf("config: forwards[%d].listen %s is reachable from the network; use 127.0.0.1 unless you mean it", i, f.Listen))
		}
	}
	for _, l := range []struct{ key, addr string }{{"proxy.socks5", c.Proxy.SOCKS5}, {"proxy.http", c.Proxy.HTTP}} {
		if exposed(l.addr) {
			w = append(w, fmt.Sprintf("config: %s %s is reachable from the network, and anyone who reaches it uses this node's access to its peers; "+
				"use 127.0.0.1 unless you mean it", l.key, l.addr))
		}
	}
	if exposed(c.Metrics.Listen) {
		w = append(w, fmt.Sprintf("config: metrics.listen %s is reachable from the network; use 127.0.0.1 unless you mean it", c.Metrics.Listen))
	}
	return w
}

// envTables lists the tables whose keys environment variables set, for
// messages and the config p2pd init writes: "[node], [discovery], ... and
// [log]".
func envTables() string {
	var names []string
	for _, s := range schema {
		if !s.array {
			names = append(names, "["+s.name+"]")
		}
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// arrayTableOf returns the array of tables ("peers") that the variable
// name (P2PD_PEERS_NAME) seems to set, or "".
func arrayTableOf(name string) string {
	for _, s := range schema {
		prefix := envPrefix + "_" + strings.ToUpper(s.name)
		if s.array && (name == prefix || strings.HasPrefix(name, prefix+"_")) {
			return s.name
		}
	}
	return ""
}

// envNames are the environment variables Load reads: one per key of the
// plain tables (see bindEnv), and P2PD_CONFIG.
func envNames() []string {
	names := []string{envConfig}
	for _, s := range schema {
		if s.array {
			continue
		}
		for _, f := range s.fields {
			names = append(names, envName(s.name+"."+f.name))
		}
	}
	return names
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// exposed reports whether a local listener's "host:port" accepts
// connections from other hosts: any host but a loopback address or
// "localhost". Unix sockets ("unix:/path") and unparsable text are not (the
// latter are Validate's to report).
func exposed(listen string) bool {
	if listen == "" || strings.HasPrefix(listen, unixPrefix) {
		return false
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return true // a host name: whatever it resolves to, beyond this host
	}
	return !ip.IsLoopback()
}
