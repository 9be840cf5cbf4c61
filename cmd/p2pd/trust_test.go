package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2pd/p2pd/config"
	"github.com/p2pd/p2pd/control"
)

// Two more real peer IDs that are no test node's.
const (
	webID    = "12D3KooWCMQDonz2c22E3Jz3r8G4rEXHp3xSirvvaZwC4qFcF4Yz"
	laptopID = "12D3KooWM3uToZPY9seRFvUAsXwtgj7KAguNErixgNHd4z8C98Ai"
)

// startDaemon runs the daemon of the config at path in-process until the
// test ends, and returns a client of its control socket once it answers:
// the client p2pctl uses, so requests take p2pctl's code path in the daemon.
func startDaemon(t *testing.T, path string) *control.Client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- runDaemon(ctx, path) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("daemon: %v", err)
		}
	})
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	client := control.NewClient(cfg.Node.ControlSocket)
	for deadline := time.Now().Add(20 * time.Second); ; {
		if _, err := client.Status(ctx); err == nil {
			return client
		}
		select {
		case err := <-errc:
			errc <- err // for the cleanup
			t.Fatalf("the daemon stopped before its control socket answered: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the control socket did not answer in 20 s")
		}
	}
}

// peersOf returns the daemon's peers as "name/id/origin".
func peersOf(t *testing.T, c *control.Client) []string {
	t.Helper()
	ps, err := c.Peers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range ps {
		out = append(out, p.Name+"/"+p.ID+"/"+p.Origin)
	}
	slices.Sort(out)
	return out
}

// TestTrustAddAfterRemove: a config-file peer removed with p2pctl trust rm
// can be trusted again with p2pctl trust add, under its old name or another
// one, with what the add gives (its --allow, not the config's allow lists);
// it can be removed again; and every state loads from the files, as after a
// restart. The config file's allow list names a peer of the trust file
// (laptop), which must stay trusted throughout.
func TestTrustAddAfterRemove(t *testing.T) {
	isolate(t)
	service := `
[[peers]]
name = "web"
id = "` + webID + `"

[[services]]
name = "files"
target = "127.0.0.1:9"
allow = [%s]
`
	path, _ := nodeDir(t, strings.Replace(service, "%s", `"web"`, 1))
	c := startDaemon(t, path)
	ctx := context.Background()
	add := func(name, id string, allow ...string) control.TrustChange {
		t.Helper()
		ch, err := c.TrustAdd(ctx, control.TrustAddRequest{Name: name, Peer: id, Allow: allow})
		if err != nil {
			t.Fatalf("trust add %s %s: %v", name, id, err)
		}
		return ch
	}
	rm := func(name string) control.TrustChange {
		t.Helper()
		ch, err := c.TrustRemove(ctx, name)
		if err != nil {
			t.Fatalf("trust rm %s: %v", name, err)
		}
		return ch
	}
	check := func(step string, want ...string) {
		t.Helper()
		slices.Sort(want)
		if got := peersOf(t, c); !slices.Equal(got, want) {
			t.Errorf("%s: peers %q, want %q", step, got, want)
		}
		cfg, err := config.Load(path) // what a restart would load
		if err != nil {
			t.Fatalf("%s: the config and trust file do not load: %v", step, err)
		}
		var got []string
		for _, p := range cfg.Peers {
			got = append(got, p.Name+"/"+p.ID.String()+"/"+cfg.PeerOrigin(p.Name))
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: config.Load gives peers %q, want %q", step, got, want)
		}
	}

	add("laptop", laptopID)
	writeConfig(t, path, strings.Replace(service, "%s", `"web", "laptop"`, 1))
	if err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if ch := rm("web"); ch.Origin != config.OriginConfig {
		t.Errorf("trust rm web: origin %q, want config", ch.Origin)
	}
	check("after rm web", "laptop/"+laptopID+"/trust")

	// The same name and ID again.
	if ch := add("web", webID, "files"); ch.Name != "web" || ch.ID != webID || ch.Origin != config.OriginTrust ||
		!slices.Equal(ch.Allowed, []string{"files"}) {
		t.Errorf("trust add web after rm: %+v; want web, its ID, origin trust, allowed files", ch)
	}
	check("after add web", "laptop/"+laptopID+"/trust", "web/"+webID+"/trust")
	svcs, err := c.Services(ctx)
	if err != nil || len(svcs) != 1 || !slices.Equal(svcs[0].Allow, []string{"laptop", "web"}) {
		t.Errorf("services %+v, %v; want files allowing laptop and web", svcs, err)
	}
	if ch := rm("web"); ch.Origin != config.OriginTrust || !slices.Equal(ch.Allowed, []string{"files"}) {
		t.Errorf("second trust rm web: %+v; want origin trust, it was allowed files", ch)
	}
	check("after the second rm web", "laptop/"+laptopID+"/trust")

	// The same ID under another name: it takes no rights of the old name.
	if ch := add("www", webID); ch.Name != "www" || len(ch.Allowed) != 0 {
		t.Errorf("trust add www (web's ID) after rm: %+v; want www allowed to nothing", ch)
	}
	check("after add www", "laptop/"+laptopID+"/trust", "www/"+webID+"/trust")
	if _, err := c.TrustAdd(ctx, control.TrustAddRequest{Name: "web", Peer: webID}); err == nil ||
		!strings.Contains(err.Error(), `already trusted as "www"`) {
		t.Errorf("trust add web while www holds its ID: %v; want a refusal naming www", err)
	}
	rm("www")
	add("web", webID)
	check("after rm www, add web", "laptop/"+laptopID+"/trust", "web/"+webID+"/trust")

	conf, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(conf), `allow = ["web", "laptop"]`) {
		t.Errorf("the config file changed: %s, %v", conf, err)
	}
}

// TestTrustRemoveUnknown: p2pctl trust rm of a name the node does not
// trust is refused as a change (p2pctl exits 2), with a sentence naming the
// peer and what the node trusts, not control's "not found".
func TestTrustRemoveUnknown(t *testing.T) {
	isolate(t)
	path, _ := nodeDir(t, "\n[[peers]]\nname = \"web\"\nid = \""+webID+"\"\n")
	c := startDaemon(t, path)
	ctx := context.Background()
	if _, err := c.TrustAdd(ctx, control.TrustAddRequest{Name: "laptop", Peer: laptopID}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, want string }{
		{"nosuch", `trust: no trusted peer "nosuch"; the trusted peers are laptop, web (p2pctl peers lists them)`},
		{"Web", `trust: no trusted peer "Web"; did you mean "web"? (names are case-sensitive)`},
	} {
		_, err := c.TrustRemove(ctx, tc.name)
		if err == nil || err.Error() != tc.want || !errors.As(err, new(*control.RejectedError)) {
			t.Errorf("trust rm %s: %v (%T); want a refusal %q", tc.name, err, err, tc.want)
		}
	}
	if _, err := c.TrustRemove(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	_, err := c.TrustRemove(ctx, "web")
	if err == nil || !strings.Contains(err.Error(), `no trusted peer "web": it was removed already`) ||
		!strings.Contains(err.Error(), "p2pctl trust add web "+webID) {
		t.Errorf("second trust rm web: %v; want it to say web was removed, and how to trust it again", err)
	}
}

// TestTrustRemoveOutdatedRemoval: when the config file gives a removed peer
// another key, the recorded removal no longer applies (Load warns) and the
// peer is trusted; p2pctl trust rm then replaces that removal instead of
// being refused for recording the name twice.
func TestTrustRemoveOutdatedRemoval(t *testing.T) {
	isolate(t)
	peer := "\n[[peers]]\nname = \"web\"\nid = %q\n"
	path, _ := nodeDir(t, strings.Replace(peer, "%q", `"`+webID+`"`, 1))
	c := startDaemon(t, path)
	ctx := context.Background()
	if _, err := c.TrustAdd(ctx, control.TrustAddRequest{Name: "laptop", Peer: laptopID}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TrustRemove(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, path, strings.Replace(peer, "%q", `"`+otherID+`"`, 1))
	if err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TrustRemove(ctx, "web"); err != nil {
		t.Fatalf("trust rm web after its ID changed in the config file: %v", err)
	}
	m, err := config.ReadManaged(filepath.Join(filepath.Dir(path), config.TrustFileName))
	if err != nil || len(m.Removed) != 1 || m.Removed[0].ID.String() != otherID {
		t.Errorf("trust file: %+v, %v; want one removal, of web's new ID", m, err)
	}
	if got, want := peersOf(t, c), []string{"laptop/" + laptopID + "/trust"}; !slices.Equal(got, want) {
		t.Errorf("peers %q, want %q", got, want)
	}
}
