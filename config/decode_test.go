package config

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestUnknownKeys(t *testing.T) {
	tests := []struct {
		name, toml string
		want       []string // every message, in order, with FILE for the path
	}{
		{"top level", "nodes = 1\n",
			[]string{`config: FILE: unknown key "nodes" (did you mean "node"?)`}},
		{"not implemented yet", "[proxy]\nsocks5 = \"127.0.0.1:1080\"\n[tracing]\nendpoint = \"\"\n",
			[]string{`config: FILE: unknown key "tracing"`}},
		{"in a table", "[node]\nnmae = \"a\"\n",
			[]string{`config: FILE: unknown key "node.nmae" (did you mean "name"?)`}},
		{"nested table", "[node.extra]\nx = 1\n",
			[]string{`config: FILE: unknown key "node.extra"`}},
		{"in an array table", twoPeers + "adress = [\"203.0.113.7:4242\"]\n",
			[]string{`config: FILE: unknown key "peers[1].adress" (did you mean "addresses"?)`}},
		{"services and forwards", twoPeers + "[[services]]\nname = \"s\"\ntarget = \"127.0.0.1:1\"\nallowed = [\"db\"]\n" +
			"[[forwards]]\nlisten = \"1\"\npeer = \"db\"\nservice = \"s\"\nport = 2\n",
			[]string{`config: FILE: unknown key "services[0].allowed" (did you mean "allow"?)`,
				`config: FILE: unknown key "forwards[0].port"`}},
		{"nothing close", "[log]\ncolour = true\n",
			[]string{`config: FILE: unknown key "log.colour"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t)
			path := writeFile(t, "p2pd.toml", tt.toml)
			_, err := Load(path)
			if !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("err = %v, want ErrUnknownKey", err)
			}
			var want []string
			for _, w := range tt.want {
				want = append(want, strings.ReplaceAll(w, "FILE", path))
			}
			if got := messages(err); !slices.Equal(got, want) {
				t.Fatalf("got  %q\nwant %q", got, want)
			}
		})
	}
}

func TestWrongTypes(t *testing.T) {
	tests := []struct {
		name, toml, want string
	}{
		{"listen not a list", "[node]\nlisten = 4242\n",
			`config: node.listen: want a list of "host:port" strings, got 4242`},
		{"listen a bare string", "[node]\nlisten = \"0.0.0.0:4242\"\n",
			`config: node.listen: want a list of "host:port" strings, got "0.0.0.0:4242"`},
		{"listen mixed", "[node]\nlisten = [\"0.0.0.0:4242\", 5]\n",
			`config: node.listen: want a list of "host:port" strings, got ["0.0.0.0:4242", 5]`},
		{"name a number", "[node]\nname = 7\n", `config: node.name: want a string, got 7`},
		{"bool as string", "[discovery]\nmdns = \"yes\"\n", `config: discovery.mdns: want true or false, got "yes"`},
		{"table as value", "node = 3\n", `config: node: want a table [node], got 3`},
		{"peers not an array", "peers = 5\n", `config: peers: want an array of tables [[peers]], got 5`},
		{"peers entry not a table", "peers = [1]\n", `config: peers[0]: want a table [[peers]], got 1`},
		{"allow a string", twoPeers + "[[services]]\nname = \"s\"\ntarget = \"127.0.0.1:1\"\nallow = \"db\"\n",
			`config: services[0].allow: want a list of peer names or "*", got "db"`},
		{"id a number", "[[peers]]\nname = \"db\"\nid = 12\n", `config: peers[0].id: want a peer ID string, got 12`},
		{"level a table", "[log.level]\nx = 1\n", `config: log.level: want "debug", "info", "warn" or "error", got a table`},
		{"date", "[node]\nname = 1979-05-27T07:32:00Z\n", `config: node.name: want a string, got 1979-05-27T07:32:00Z`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t)
			_, err := loadString(t, tt.toml)
			if !errors.Is(err, ErrType) {
				t.Fatalf("err = %v, want ErrType", err)
			}
			if got := messages(err); !slices.Equal(got, []string{tt.want}) {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestBadPeerID(t *testing.T) {
	isolate(t)
	_, err := loadString(t, "[[peers]]\nname = \"db\"\nid = \"12D3KooWnope\"\n")
	got := messages(err)
	if !errors.Is(err, ErrInvalid) || len(got) != 1 {
		t.Fatalf("want exactly one ErrInvalid, got %q", got)
	}
	for _, want := range []string{`config: peers[0].id "12D3KooWnope": not a valid peer ID`, "`p2pd id`", "12D3KooW..."} {
		if !strings.Contains(got[0], want) {
			t.Errorf("message %q lacks %q", got[0], want)
		}
	}
}

func TestSyntaxError(t *testing.T) {
	isolate(t)
	path := writeFile(t, "p2pd.toml", "[node]\nname = \"a\"\nlisten = [\n")
	_, err := Load(path)
	if !errors.Is(err, ErrSyntax) {
		t.Fatalf("err = %v, want ErrSyntax", err)
	}
	if want := "config: " + path + ":"; !strings.Contains(err.Error(), want) {
		t.Fatalf("%q does not name the file as %q", err, want)
	}
}

func TestSuggest(t *testing.T) {
	tests := []struct{ key, want string }{
		{"adress", "addresses"}, {"nmae", "name"}, {"peer", "peers"}, {"service", "services"},
		{"listn", "listen"}, {"x", ""}, {"colour", ""}, {"foo", ""},
	}
	cands := []string{"name", "addresses", "peers", "services", "listen", "id", "level", "format"}
	for _, tt := range tests {
		if got := suggest(tt.key, cands); got != tt.want {
			t.Errorf("suggest(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

// TestDefinedTwiceHasPosition: go-toml reports a table, array of tables or
// key defined twice with no position; the message names the line and
// column of the second definition, in the file and in the trust file.
func TestDefinedTwiceHasPosition(t *testing.T) {
	for _, tt := range []struct{ name, toml, want string }{
		{"table", "[node]\nname = \"a\"\n\n# again\n[node]\nname = \"b\"\n",
			`config: FILE:5:2: invalid TOML: table node already exists`},
		{"table after a multi-line string", "[node]\nname = \"\"\"\n[node]\n\"\"\"\n[log]\nlevel = \"info\"\n  [ node ]\n",
			`config: FILE:7:5: invalid TOML: table node already exists`},
		{"key", "[log]\nlevel = \"info\"\nformat = \"text\"\nlevel = \"debug\"\n",
			`config: FILE:4:1: invalid TOML: key level is already defined`},
		{"array of tables as a table", twoPeers + "[peers]\nname = \"c\"\n",
			`config: FILE:9:2: invalid TOML: key peers should be a table, not a array table`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t)
			path := writeFile(t, "p2pd.toml", tt.toml)
			_, err := Load(path)
			if want := strings.ReplaceAll(tt.want, "FILE", path); err == nil || err.Error() != want || !errors.Is(err, ErrSyntax) {
				t.Fatalf("got  %v\nwant %s", err, want)
			}
		})
	}
	path := writeConfig(t, "", "[[peers]]\nname = \"a\"\nid = \""+idDB+"\"\nname = \"b\"\n")
	trust := filepath.Join(filepath.Dir(path), TrustFileName)
	if _, err := Load(path); err == nil || err.Error() != "config: "+trust+":4:1: invalid TOML: key name is already defined" {
		t.Errorf("trust file: %v", err)
	}
}
