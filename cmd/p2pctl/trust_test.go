package main

import (
	"strings"
	"testing"
	"time"

	"github.com/p2pd/p2pd/control"
	"github.com/p2pd/p2pd/control/controltest"
)

func TestTrustCommands(t *testing.T) {
	at := time.Now().Add(-90 * time.Second)
	b := &controltest.Trust{Backend: fixture(),
		InviteData: control.Invite{Line: "p2pd1:abc", ID: idDB, Name: "alpha", Addresses: []string{"203.0.113.7 udp/4242 tcp/4242"}},
		TrustFile:  "/s/trust.toml",
		Removed:    control.TrustChange{Name: "web1", ID: idWeb, Origin: "config", Allowed: []string{"files", "pg"}, TrustFile: "/s/trust.toml", Closed: 1},
		PendingList: []control.Pending{{ID: idWeb, AltID: idDB, Name: "laptop", Remote: "192.0.2.1:4242", Carrier: "quic", Count: 3,
			FirstSeen: at, LastSeen: at}},
	}
	sock := controltest.Serve(t, b)
	ws := `\s{2,}`

	code, out, errOut := p2pctl(t, "--socket", sock, "invite")
	if code != 0 || out != "p2pd1:abc\n" || !strings.Contains(errOut, "addresses: 203.0.113.7 udp/4242 tcp/4242") {
		t.Errorf("invite: exit %d, stdout %q (want the line alone), stderr %q", code, out, errOut)
	}
	out = mustRun(t, "--socket", sock, "trust", "add", "new", " "+idWeb+"\n", "--allow", "files,pg", "--allow", "x")
	if want := "trusted new (" + idWeb + ")\nnew may use: files, pg, x\nrecorded in /s/trust.toml\n"; out != want {
		t.Errorf("trust add printed %q, want %q", out, want)
	}
	if added := b.Added(); len(added) != 1 || added[0].Peer != idWeb {
		t.Errorf("the daemon saw %+v: want the ID with the whitespace trimmed", added)
	}
	// A refusal exits 2 with the daemon's reason alone; a wrong command line
	// exits 2 and points to --help.
	const help = "Run 'p2pctl --help' for usage.\n"
	if code, _, errOut := p2pctl(t, "--socket", sock, "trust", "add", "db", idDB); code != 2 ||
		errOut != "p2pctl: trust: a peer named \"db\" is already trusted\n" {
		t.Errorf("trust add of a taken name: exit %d, %q; want 2 and the daemon's reason alone", code, errOut)
	}
	if code, _, errOut := p2pctl(t, "--socket", sock, "trust", "add", "only-a-name"); code != 2 || !strings.HasSuffix(errOut, "got 1 arguments\n"+help) {
		t.Errorf("trust add with one argument: exit %d, %q; want 2 and the pointer to --help", code, errOut)
	}
	out = mustRun(t, "--socket", sock, "trust", "rm", "web1")
	if !strings.HasPrefix(out, "removed web1; it was allowed to: files, pg\n") || !strings.Contains(out, "config file, which is unchanged") {
		t.Errorf("trust rm printed %q", out)
	}
	if code, _, errOut := p2pctl(t, "--socket", sock, "trust", "rm", "nobody"); code != 2 || !strings.Contains(errOut, `no trusted peer "nobody"`) ||
		strings.Contains(errOut, help) {
		t.Errorf("trust rm of an unknown peer: exit %d, %q", code, errOut)
	}
	rowsMatch(t, mustRun(t, "--socket", sock, "pending"),
		`^ID`+ws+`CLAIMS-NAME`+ws+`REMOTE`+ws+`CARRIER`+ws+`COUNT`+ws+`FIRST-SEEN`+ws+`LAST-SEEN$`,
		`^`+idWeb+ws+`laptop`+ws+`192\.0\.2\.1:4242`+ws+`quic`+ws+`3`+ws+`1m3[0-9]s ago`+ws+`1m3[0-9]s ago$`,
		`^`+idWeb+`: the same key is also `+idDB+`$`,
		`^trust one with: p2pctl trust add NAME ID`)
	if out := mustRun(t, "--socket", sock, "--json", "pending"); !strings.Contains(out, `"alt_id": "`+idDB+`"`) || !strings.Contains(out, `"count": 3`) {
		t.Errorf("pending --json: %s", out)
	}
}
