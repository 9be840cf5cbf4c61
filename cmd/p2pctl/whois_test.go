package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/p2pd/p2pd/control"
	"github.com/p2pd/p2pd/control/controltest"
)

func TestWhois(t *testing.T) {
	b := &controltest.Backend{ConnectionList: []control.Connection{{Addr: "127.0.0.1:53422", Target: "127.0.0.1:5432",
		Service: "postgres", Peer: "web1", PeerID: idWeb, Since: time.Now().Add(-95 * time.Second), AgeSeconds: 95}}}
	sock := controltest.Serve(t, b)

	out := mustRun(t, "--socket", sock, "whois", "127.0.0.1:53422")
	rowsMatch(t, out, `^ADDR +PEER +PEER-ID +SERVICE +TARGET +AGE$`,
		`^127\.0\.0\.1:53422 +web1 +`+idWeb+` +postgres +127\.0\.0\.1:5432 +1m35s$`)

	var doc struct {
		Connections []control.Connection `json:"connections"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, "--socket", sock, "--json", "whois", "127.0.0.1:53422")), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Connections) != 1 || doc.Connections[0].PeerID != idWeb || doc.Connections[0].Service != "postgres" {
		t.Errorf("--json whois: %+v", doc)
	}

	for _, tt := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"whois", "127.0.0.1:1"}, 1, "p2pctl: no overlay connection from 127.0.0.1:1\n"},
		{[]string{"whois", "localhost:1"}, 2, "p2pctl: whois: \"localhost:1\" is not an IP address and port like 127.0.0.1:53422 or [::1]:53422\nRun 'p2pctl --help' for usage.\n"},
		{[]string{"whois"}, 2, "p2pctl: whois takes one ADDR (the backend's client address, like 127.0.0.1:53422), got 0 arguments\nRun 'p2pctl --help' for usage.\n"},
	} {
		code, out, errOut := p2pctl(t, append([]string{"--socket", sock}, tt.args...)...)
		if code != tt.code || errOut != tt.stderr || out != "" {
			t.Errorf("p2pctl %q: exit %d, stdout %q, stderr %q; want exit %d, stderr %q", tt.args, code, out, errOut, tt.code, tt.stderr)
		}
	}
}
