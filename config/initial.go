package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// WriteInitial writes a commented starter config for `p2pd init` to path, with node.name set
// to name (the host name when ""). It creates missing directories 0700 and the file 0600, and
// never overwrites: an existing file is ErrExists.
func WriteInitial(path, name string) error {
	if name == "" {
		name = defaultName()
	}
	if msg := checkNodeName(name); msg != "" {
		return &KeyError{Key: "node.name", Value: quote(name), Msg: msg, Err: ErrInvalid}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("config: %s: %w; edit it, or remove it to start again", path, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	_, err = fmt.Fprintf(f, initialTemplate, envTables(), tomlString(name))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("config: %s: %w", path, err)
	}
	return nil
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

const initialTemplate = `# p2pd configuration, written by ` + "`p2pd init`" + `.
# Relative paths are relative to this file's directory. Unknown keys are errors.
# Every key of %s can also be set by an
# environment variable P2PD_<TABLE>_<KEY>, e.g. P2PD_LOG_LEVEL=debug.

[node]
# This node's name, sent to peers in the handshake.
name = %s
# The Ed25519 private key (0600). Tell peers this node's ID with ` + "`p2pd id`" + `.
key_file = "identity.key"
# UDP addresses for the overlay and libp2p.
listen = ["0.0.0.0:4242", "[::]:4242"]
# The control socket for p2pctl, beside this file: p2pctl --config FILE finds it.
control_socket = "p2pd.sock"

[discovery]
mdns = true     # find peers on the local network
dht = false     # find peers by ID across networks (needs bootstrap nodes)
# bootstrap = ["/ip4/203.0.113.7/udp/4242/quic-v1/p2p/12D3KooW..."]
# relays = []
# relay_service = false

# Trusted peers: only these can connect, in either direction. Get a peer's ID by running
# ` + "`p2pd id`" + ` on it.
#
# [[peers]]
# name = "db"
# id = "12D3KooW..."
# addresses = ["203.0.113.7:4242"]   # optional; discovery finds the rest

# Local services that peers may use.
#
# [[services]]
# name = "postgres"
# target = "127.0.0.1:5432"          # or "unix:/run/postgresql/.s.PGSQL.5432"
# protocol = "tcp"                   # or "udp"
# allow = ["db"]                     # peer names, or "*" for every peer; empty = nobody
# proxy_protocol = "v2"              # PROXY v2 header with the peer's ID to the target; "" = off

# Local ports that lead to a service on a peer (bound to 127.0.0.1 unless a host is given).
#
# [[forwards]]
# listen = "15432"                   # or "unix:/run/app/db.sock" (a Unix socket, mode 0660)
# peer = "db"
# service = "postgres"

# Local proxies that reach any peer's service by the name <service>.<peer>.p2p (off unless set).
#
# [proxy]
# socks5 = "1080"    # curl --socks5-hostname 127.0.0.1:1080 http://files.db.p2p/
# http = "8118"      # curl -x http://127.0.0.1:8118 http://files.db.p2p/

# Prometheus metrics, served at http://<listen>/metrics (off unless set).
#
# [metrics]
# listen = "127.0.0.1:9464"

[log]
level = "info"   # debug, info, warn or error
format = "text"  # or json
`
