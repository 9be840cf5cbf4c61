package config

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/p2pd/p2pd/identity"
)

const idNew = "12D3KooWM3uToZPY9seRFvUAsXwtgj7KAguNErixgNHd4z8C98Ai"

const managedBase = `# the user's comments stay as written
[node]
name = "alpha"

[[peers]]
name = "db"
id = "` + idDB + `"

[[peers]]
name = "web"
id = "` + idWeb + `"

[[services]]
name = "pg"
target = "127.0.0.1:5432"
allow = ["db", "web"]

[[services]]
name = "files"
target = "127.0.0.1:8080"
allow = ["db"]
`

func mustID(t *testing.T, s string) identity.PeerID {
	t.Helper()
	id, err := identity.ParsePeerID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// writeConfig writes the config and, unless trust is "", the trust file
// into the same directory (the state directory by default).
func writeConfig(t *testing.T, conf, trust string) string {
	t.Helper()
	isolate(t)
	path := writeFile(t, "p2pd.toml", conf)
	if trust != "" {
		if err := os.WriteFile(filepath.Join(filepath.Dir(path), TrustFileName), []byte(trust), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func peerNames(c *Config) []string {
	var out []string
	for _, p := range c.Peers {
		out = append(out, p.Name+"/"+c.PeerOrigin(p.Name))
	}
	return out
}

func TestTrustFileMerged(t *testing.T) {
	path := writeConfig(t, managedBase, `
[[peers]]
name = "newbie"
id = "`+idNew+`"
addresses = ["192.0.2.1:4242"]
allow = ["pg", "gone"]

[[removed]]
name = "web"
id = "`+idWeb+`"
`)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := peerNames(c), []string{"db/config", "newbie/trust"}; !slices.Equal(got, want) {
		t.Fatalf("peers %v, want %v", got, want)
	}
	if got := c.Services[0].Allow; !slices.Equal(got, []string{"db", "newbie"}) {
		t.Errorf("pg allow %v, want [db newbie]: web masked, newbie added", got)
	}
	if got := c.Services[1].Allow; !slices.Equal(got, []string{"db"}) {
		t.Errorf("files allow %v, want [db]", got)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], `service "gone"`) {
		t.Errorf("warnings %q, want one about the unknown service", c.Warnings)
	}
	if c.TrustPath() != filepath.Join(filepath.Dir(path), TrustFileName) {
		t.Errorf("TrustPath %s", c.TrustPath())
	}
}

func TestTrustFileDuplicateNamesBothFiles(t *testing.T) {
	for _, tc := range []struct{ name, entry string }{
		{"same name", `name = "DB"` + "\nid = \"" + idNew + `"`},
		{"same id", `name = "other"` + "\nid = \"" + idDB + `"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, managedBase, "[[peers]]\n"+tc.entry+"\n")
			_, err := Load(path)
			if err == nil {
				t.Fatal("loaded")
			}
			msg := err.Error()
			if !strings.Contains(msg, path) || !strings.Contains(msg, filepath.Join(filepath.Dir(path), TrustFileName)) ||
				!strings.Contains(msg, "p2pctl trust rm") {
				t.Errorf("error %q does not name both files and the fix", msg)
			}
		})
	}
}

func TestTrustFileStaleMaskIgnored(t *testing.T) {
	path := writeConfig(t, managedBase, "[[removed]]\nname = \"web\"\nid = \""+idNew+"\"\n")
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.PeerByName("web"); !ok {
		t.Error("web was masked though its ID changed")
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "stays trusted") {
		t.Errorf("warnings %q", c.Warnings)
	}
}

func TestTrustFileMaskedForwardIsAnError(t *testing.T) {
	conf := managedBase + "\n[[forwards]]\nlisten = \"15432\"\npeer = \"web\"\nservice = \"pg\"\n"
	path := writeConfig(t, conf, "[[removed]]\nname = \"web\"\nid = \""+idWeb+"\"\n")
	_, err := Load(path)
	msgs := messages(err)
	if len(msgs) != 1 || !strings.Contains(msgs[0], "forwards[0].peer") || !strings.Contains(msgs[0], "p2pctl trust rm") {
		t.Errorf("errors %q, want one naming the forward and why", msgs)
	}
}

func TestTrustFileBadEntries(t *testing.T) {
	path := writeConfig(t, managedBase, `
[[peers]]
name = "bad name"
id = "nope"
addresses = ["x:0"]
transport = "udp"
colour = "red"

[[removed]]
name = "db"
`)
	_, err := Load(path)
	msgs := messages(err)
	for _, want := range []string{"peers[0].name", "peers[0].id", "peers[0].addresses[0]", "peers[0].transport", `unknown key "colour"`, "removed[0].id: required"} {
		if !slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, want) && strings.Contains(m, TrustFileName) }) {
			t.Errorf("no error about %s in %q", want, msgs)
		}
	}
}

func TestWriteManagedRoundTripAndMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	path := filepath.Join(dir, TrustFileName)
	m := Managed{
		Peers: []ManagedPeer{{Peer: Peer{Name: "newbie", ID: mustID(t, idNew), Addresses: []string{"192.0.2.1:4242", "[2001:db8::1]:4242"}, Transport: "tcp"},
			Allow: []string{"pg"}}},
		Removed: []RemovedPeer{{Name: "web", ID: mustID(t, idWeb)}},
	}
	if err := WriteManaged(path, m); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	got, err := ReadManaged(path)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if !bytes.Equal(got.AppendTOML(nil), data) {
		t.Errorf("read back differs:\n%s\nwant\n%s", got.AppendTOML(nil), data)
	}
	if len(got.Peers) != 1 || got.Peers[0].ID != m.Peers[0].ID || !slices.Equal(got.Peers[0].Addresses, m.Peers[0].Addresses) ||
		got.Peers[0].Transport != "tcp" || !slices.Equal(got.Peers[0].Allow, []string{"pg"}) || got.Removed[0] != m.Removed[0] {
		t.Errorf("read back %+v, want %+v", got, m)
	}
	// Replacing leaves no temporary file behind.
	if err := WriteManaged(path, Managed{}); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d files after two writes, want 1", len(ents))
	}
}

func TestReadManagedMissingIsEmpty(t *testing.T) {
	m, err := ReadManaged(filepath.Join(t.TempDir(), TrustFileName))
	if err != nil || len(m.Peers) != 0 || len(m.Removed) != 0 {
		t.Fatalf("ReadManaged of a missing file: %+v, %v", m, err)
	}
}

// FuzzTrustFile: any bytes as a trust file load without panic, and a file
// that parses writes back to one that parses the same.
func FuzzTrustFile(f *testing.F) {
	f.Add([]byte("[[peers]]\nname = \"a\"\nid = \"" + idNew + "\"\nallow = [\"x\"]\n[[removed]]\nname = \"b\"\nid = \"" + idDB + "\"\n"))
	f.Add([]byte("peers = 3\n"))
	f.Add([]byte("[[peers]]\naddresses = [1]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseManaged("trust.toml", data)
		if err != nil {
			return
		}
		out := m.AppendTOML(nil)
		m2, err := parseManaged("trust.toml", out)
		if err != nil {
			t.Fatalf("written file does not parse: %v\n%s", err, out)
		}
		if !bytes.Equal(m2.AppendTOML(nil), out) {
			t.Fatalf("round trip differs:\n%s\n%s", out, m2.AppendTOML(nil))
		}
	})
}

// TestTrustFileRemovedThenAdded: a config-file peer removed with p2pctl
// trust rm and added again with p2pctl trust add is in both sections of the
// trust file. It loads: the peer is the trust file's, with the trust file's
// allow entries only, and a forward may name it. The same ID under another
// name loads too, and the old name is gone.
func TestTrustFileRemovedThenAdded(t *testing.T) {
	conf := managedBase + "\n[[forwards]]\nlisten = \"15432\"\npeer = \"web\"\nservice = \"pg\"\n"
	removed := "\n[[removed]]\nname = \"web\"\nid = \"" + idWeb + "\"\n"
	path := writeConfig(t, conf, "[[peers]]\nname = \"web\"\nid = \""+idWeb+"\"\nallow = [\"files\"]\n"+removed)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := peerNames(c), []string{"db/config", "web/trust"}; !slices.Equal(got, want) {
		t.Errorf("peers %v, want %v", got, want)
	}
	if pg, files := c.Services[0].Allow, c.Services[1].Allow; !slices.Equal(pg, []string{"db"}) || !slices.Equal(files, []string{"db", "web"}) {
		t.Errorf("allow lists pg %v, files %v; want web in files only, as the trust file says", pg, files)
	}

	path = writeConfig(t, managedBase, "[[peers]]\nname = \"www\"\nid = \""+idWeb+"\"\n"+removed)
	c, err = Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := peerNames(c), []string{"db/config", "www/trust"}; !slices.Equal(got, want) {
		t.Errorf("peers %v, want %v", got, want)
	}
}

// TestTrustFileUnreadableNoFalseReferences: when the trust file does not
// load, its problems are reported, and not the config's references to the
// peers it would have added (laptop), which would be false.
func TestTrustFileUnreadableNoFalseReferences(t *testing.T) {
	conf := managedBase + `
[[services]]
name = "ssh"
target = "127.0.0.1:22"
allow = ["db", "laptop"]

[[forwards]]
listen = "2222"
peer = "laptop"
service = "ssh"
`
	for _, trust := range []string{
		"[[peers]]\nname = \"laptop\"\nid = \"" + idNew + "\"\ncolour = \"red\"\n",
		"[[peers]\nname = \"laptop\"\n",
	} {
		path := writeConfig(t, conf, trust)
		_, err := Load(path)
		msgs := messages(err)
		if len(msgs) != 1 || !strings.Contains(msgs[0], TrustFileName) {
			t.Errorf("errors %q; want the trust file's one alone", msgs)
		}
	}
}
