package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/viper"

	"github.com/p2pd/p2pd/identity"
)

// The trust file holds the trust-list changes made from the command line
// (p2pctl trust add and rm), so that the user's config file is never
// rewritten. It lives in the state directory, TrustFileName, mode 0600, and
// is replaced whole by WriteManaged (a rename). Load merges it into the
// config: its peers join [[peers]], their allow entries join the services'
// allow lists, and the config-file peers it records as removed leave
// [[peers]] and every allow list. A peer in both files (by name, ignoring
// case, or by ID) is an error naming both. A removed peer trusted again with
// p2pctl trust add, under its old name or another, is in both sections of
// the trust file: the [[removed]] entry keeps the config file's entry out,
// the [[peers]] entry trusts the key again with what trust add gave it.
//
//	[[peers]]                          # added by p2pctl trust add
//	name = "db"
//	id = "12D3KooW..."
//	addresses = ["203.0.113.7:4242"]   # optional
//	transport = "auto"                 # optional
//	allow = ["pg"]                     # services this peer may also use
//
//	[[removed]]                        # a config-file peer, removed by p2pctl trust rm
//	name = "old"
//	id = "12D3KooW..."

// TrustFileName is the trust file's name in the state directory.
const TrustFileName = "trust.toml"

// Origins of a peer, for PeerOrigin.
const (
	OriginConfig = "config"
	OriginTrust  = "trust"
)

// Managed is the content of the trust file.
type Managed struct {
	Peers   []ManagedPeer
	Removed []RemovedPeer
}

// ManagedPeer is a peer added by p2pctl trust add.
type ManagedPeer struct {
	Peer
	Allow []string // services whose allow lists also name this peer
}

// RemovedPeer is a config-file peer that p2pctl trust rm took out of the
// trust list. It masks the [[peers]] entry with this name and ID only: an
// entry whose ID has changed since is a new decision of the user's.
type RemovedPeer struct {
	Name string
	ID   identity.PeerID
}

// TrustPath returns the trust file: TrustFileName in the state directory.
func (c *Config) TrustPath() string { return filepath.Join(c.Node.StateDir, TrustFileName) }

// PeerOrigin tells where the trust list's peer name comes from:
// OriginTrust for the trust file, OriginConfig for the config file.
func (c *Config) PeerOrigin(name string) string {
	for _, p := range c.Managed.Peers {
		if p.Name == name {
			return OriginTrust
		}
	}
	return OriginConfig
}

// ReadManaged reads the trust file at path. A missing file is an empty
// Managed. Every problem is reported at once, each naming the file.
func ReadManaged(path string) (Managed, error) {
	data, err := readFile(path, func(bool) string {
		return "it should be the trust file p2pctl trust add and rm write; move it away, or set node.state_dir to another directory"
	})
	if errors.Is(err, fs.ErrNotExist) {
		return Managed{}, nil
	}
	if err != nil {
		return Managed{}, err
	}
	return parseManaged(path, data)
}

func parseManaged(path string, data []byte) (Managed, error) {
	v := viper.New()
	v.SetConfigType("toml")
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return Managed{}, syntaxError(path, data, err)
	}
	md := managedDecoder{path: path}
	raw := v.AllSettings()
	for _, k := range sortedKeys(raw) {
		if k != "peers" && k != "removed" {
			md.fail("", "unknown key %q (the trust file has [[peers]] and [[removed]] only)", k)
		}
	}
	var m Managed
	for i, t := range md.tables(raw, "peers") {
		m.Peers = append(m.Peers, md.peer(i, t))
	}
	for i, t := range md.tables(raw, "removed") {
		key := fmt.Sprintf("removed[%d]", i)
		md.keys(key, t, "name", "id")
		m.Removed = append(m.Removed, RemovedPeer{Name: md.str(key, t, "name"), ID: md.id(key, t)})
	}
	md.check(m)
	return m, errors.Join(md.p...)
}

// managedDecoder collects the problems of one trust file.
type managedDecoder struct {
	path string
	p    []error
}

func (md *managedDecoder) fail(key, format string, args ...any) {
	if key != "" {
		key += ": "
	}
	md.p = append(md.p, fmt.Errorf("config: %s: %s%s; fix it with p2pctl trust add/rm, or delete the file to forget every change made with them",
		md.path, key, fmt.Sprintf(format, args...)))
}

// tables returns the array of tables name of raw.
func (md *managedDecoder) tables(raw map[string]any, name string) []map[string]any {
	var out []map[string]any
	switch x := raw[name].(type) {
	case nil:
	case []map[string]any:
		out = x
	case []any:
		for i, e := range x {
			m, ok := e.(map[string]any)
			if !ok {
				md.fail(fmt.Sprintf("%s[%d]", name, i), "want a table [[%s]], got %s", name, describe(e))
				continue
			}
			out = append(out, m)
		}
	default:
		md.fail(name, "want an array of tables [[%s]], got %s", name, describe(x))
	}
	return out
}

func (md *managedDecoder) keys(key string, t map[string]any, known ...string) {
	for _, k := range sortedKeys(t) {
		if !slices.Contains(known, k) {
			md.fail(key, "unknown key %q", k)
		}
	}
}

func (md *managedDecoder) str(key string, t map[string]any, name string) string {
	v, ok := t[name]
	if !ok {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		md.fail(key+"."+name, "want a string, got %s", describe(v))
	}
	return s
}

func (md *managedDecoder) list(key string, t map[string]any, name string) []string {
	v, ok := t[name]
	if !ok {
		return nil
	}
	l, ok := ofKind(kindList, v)
	if !ok {
		md.fail(key+"."+name, "want a list of strings, got %s", describe(v))
		return nil
	}
	return l.([]string)
}

func (md *managedDecoder) id(key string, t map[string]any) identity.PeerID {
	s := md.str(key, t, "id")
	if s == "" {
		md.fail(key+".id", "required")
		return identity.PeerID{}
	}
	id, err := identity.ParsePeerID(s)
	if err != nil {
		md.fail(key+".id", "%s is not a valid peer ID (%v)", quote(s), err)
	}
	return id
}

func (md *managedDecoder) peer(i int, t map[string]any) ManagedPeer {
	key := fmt.Sprintf("peers[%d]", i)
	md.keys(key, t, "name", "id", "addresses", "transport", "allow")
	return ManagedPeer{Peer: Peer{
		Name: md.str(key, t, "name"), ID: md.id(key, t),
		Addresses: md.list(key, t, "addresses"), Transport: md.str(key, t, "transport"),
	}, Allow: md.list(key, t, "allow")}
}

// check validates the entries' values and their uniqueness within the file:
// among the [[peers]], and among the [[removed]]. A [[peers]] entry may have
// the name or the ID of a [[removed]] one: the removal hides the config
// file's entry, and p2pctl trust add has trusted that key, or that name,
// again (merge applies removals first).
func (md *managedDecoder) check(m Managed) {
	type seen struct {
		names map[string]string
		ids   map[identity.PeerID]string
	}
	peers := seen{map[string]string{}, map[identity.PeerID]string{}}
	removed := seen{map[string]string{}, map[identity.PeerID]string{}}
	unique := func(s seen, key, name string, id identity.PeerID) {
		names, ids := s.names, s.ids
		if !validName(name) {
			md.fail(key+".name", "%s is not a peer name (1-63 letters, digits, '.', '_' or '-')", quote(name))
		} else if prev, dup := names[strings.ToLower(name)]; dup {
			md.fail(key+".name", "%s again (as in %s)", quote(name), prev)
		} else {
			names[strings.ToLower(name)] = key
		}
		if prev, dup := ids[id]; dup && !id.IsZero() {
			md.fail(key+".id", "%s again (as in %s)", id, prev)
		} else {
			ids[id] = key
		}
	}
	for i, p := range m.Peers {
		key := fmt.Sprintf("peers[%d]", i)
		unique(peers, key, p.Name, p.ID)
		for j, a := range p.Addresses {
			if msg := checkEndpoint(a); msg != "" {
				md.fail(fmt.Sprintf("%s.addresses[%d]", key, j), "%s: %s", quote(a), msg)
			}
		}
		switch p.Transport {
		case "", "auto", "quic", "tcp":
		default:
			md.fail(key+".transport", `%s: must be "auto", "quic" or "tcp"`, quote(p.Transport))
		}
		for j, s := range p.Allow {
			if !validName(s) {
				md.fail(fmt.Sprintf("%s.allow[%d]", key, j), "%s is not a service name", quote(s))
			}
		}
	}
	for i, r := range m.Removed {
		unique(removed, fmt.Sprintf("removed[%d]", i), r.Name, r.ID)
	}
}

// mergeTrustFile reads the trust file of c and merges it in (see the top of
// this file); it returns the problems found.
func (c *Config) mergeTrustFile() problems {
	path := c.TrustPath()
	m, err := ReadManaged(path)
	if err != nil {
		c.trustUnread = true
		return problems{err}
	}
	return c.merge(path, m)
}

// merge applies m, read from path, to c.
func (c *Config) merge(path string, m Managed) problems {
	var p problems
	file := c.Path
	if file == "" {
		file = "the defaults (no config file)"
	}
	// Removals first: a name or ID freed by one may be taken by an added peer.
	removed := map[string]bool{}
	for _, r := range m.Removed {
		i := slices.IndexFunc(c.Peers, func(cp Peer) bool { return cp.Name == r.Name })
		switch {
		case i < 0:
			// Gone from the config file too: nothing left to mask.
		case c.Peers[i].ID != r.ID:
			c.Warnings = append(c.Warnings, fmt.Sprintf("config: %s removes peer %q with ID %s, but %s lists %q with ID %s now; "+
				"that entry stays trusted (p2pctl trust rm %s removes it)", path, r.Name, r.ID, file, r.Name, c.Peers[i].ID, r.Name))
		default:
			removed[r.Name] = true
			c.Peers = slices.Delete(c.Peers, i, i+1)
		}
	}
	for i := range c.Services {
		c.Services[i].Allow = slices.DeleteFunc(slices.Clone(c.Services[i].Allow), func(a string) bool { return removed[a] })
	}
	for i, f := range c.Forwards {
		readded := slices.ContainsFunc(m.Peers, func(mp ManagedPeer) bool { return mp.Name == f.Peer })
		if removed[f.Peer] && !readded {
			p = append(p, &KeyError{Key: fmt.Sprintf("forwards[%d].peer", i), Value: quote(f.Peer), Err: ErrInvalid,
				Msg: fmt.Sprintf("was removed from the trust list with p2pctl trust rm (recorded in %s); remove this forward from %s, or trust the peer again with p2pctl trust add", path, file)})
		}
	}
	var added []ManagedPeer
	for _, mp := range m.Peers {
		if j := slices.IndexFunc(c.Peers, func(cp Peer) bool { return strings.EqualFold(cp.Name, mp.Name) || cp.ID == mp.ID }); j >= 0 {
			what := fmt.Sprintf("name %q", mp.Name)
			if c.Peers[j].ID == mp.ID {
				what = "ID " + mp.ID.String()
			}
			p = append(p, fmt.Errorf("config: peer %q (%s) is in both %s (peers[%d], %q) and %s; "+
				"remove it from %s, or run p2pctl trust rm %s to drop the trust file's entry", mp.Name, what, file, j, c.Peers[j].Name, path, file, mp.Name))
			continue
		}
		added = append(added, mp)
	}
	for _, mp := range added {
		c.Peers = append(c.Peers, mp.Peer)
		for _, svc := range mp.Allow {
			i := slices.IndexFunc(c.Services, func(s Service) bool { return s.Name == svc })
			if i < 0 {
				c.Warnings = append(c.Warnings, fmt.Sprintf("config: %s allows peer %q to service %q, which %s no longer has; ignored",
					path, mp.Name, svc, file))
				continue
			}
			if !slices.Contains(c.Services[i].Allow, mp.Name) {
				c.Services[i].Allow = append(c.Services[i].Allow, mp.Name)
			}
		}
	}
	c.Managed = Managed{Peers: added, Removed: m.Removed}
	return p
}

// WriteManaged replaces the trust file at path with m, atomically: it writes
// a temporary file (mode 0600) in the same directory, syncs it and renames
// it over path, so a reader sees the old file or the new one, never a part.
func WriteManaged(path string, m Managed) error { return writeAtomic(path, m.AppendTOML(nil)) }

// RestoreManaged puts back, atomically, the bytes a trust file had before a
// change that did not apply.
func RestoreManaged(path string, data []byte) error { return writeAtomic(path, data) }

func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("config: trust file: %w", err)
	}
	f, err := os.CreateTemp(dir, ".trust-*.toml")
	if err != nil {
		return fmt.Errorf("config: trust file: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("config: trust file %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // the rename itself survives a crash
		d.Close()
	}
	return nil
}

const managedHeader = `# p2pd trust file: trust-list changes made with p2pctl trust add and
# p2pctl trust rm. p2pd merges it with the config file's [[peers]] when it
# loads its configuration: [[peers]] here are trusted too, [[removed]] are
# config-file peers that are not (a [[peers]] entry of the same name or ID
# trusts that peer again). It is rewritten whole on every change; change it
# with those commands (or delete it to undo every change made with them).
`

// AppendTOML appends m as the trust file's TOML to b.
func (m Managed) AppendTOML(b []byte) []byte {
	b = append(b, managedHeader...)
	for _, p := range m.Peers {
		b = append(b, "\n[[peers]]\n"...)
		b = appendKV(b, "name", tomlString(p.Name))
		b = appendKV(b, "id", tomlString(p.ID.String()))
		if len(p.Addresses) > 0 {
			b = appendKV(b, "addresses", tomlList(p.Addresses))
		}
		if p.Transport != "" {
			b = appendKV(b, "transport", tomlString(p.Transport))
		}
		if len(p.Allow) > 0 {
			b = appendKV(b, "allow", tomlList(p.Allow))
		}
	}
	for _, r := range m.Removed {
		b = append(b, "\n[[removed]]\n"...)
		b = appendKV(b, "name", tomlString(r.Name))
		b = appendKV(b, "id", tomlString(r.ID.String()))
	}
	return b
}

func appendKV(b []byte, k, v string) []byte { return append(b, k+" = "+v+"\n"...) }

func tomlList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = tomlString(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// CheckPeerName reports whether name can name a peer: 1-63 letters,
// digits, '.', '_' or '-', starting with a letter or digit.
func CheckPeerName(name string) error {
	if !validName(name) {
		return fmt.Errorf("config: peer name %s: use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", quote(name))
	}
	return nil
}
