package identity

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestKeyFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state", "identity.key") // parent does not exist yet
	seed := bytes.Repeat([]byte{0x01}, SeedSize)
	k, err := CreateKeyFile(path, bytes.NewReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	if k.PeerID().String() != knownKeys[0].peerID {
		t.Fatalf("created key %s, want %s", k.PeerID(), knownKeys[0].peerID)
	}
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "privkey:" + strings.Repeat("01", SeedSize) + "\n"; string(content) != want {
		t.Fatalf("key file holds %q, want %q", content, want)
	}
	assertMode(t, path, 0o600)
	assertMode(t, filepath.Dir(path), 0o700|fs.ModeDir)
	assertOnlyFile(t, filepath.Dir(path), "identity.key")

	loaded, err := LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.PeerID() != k.PeerID() || !bytes.Equal(loaded.Ed25519(), k.Ed25519()) {
		t.Fatal("loaded key differs from the created one")
	}
}

func TestCreateKeyFileExists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "identity.key")
	first, err := CreateKeyFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	_, err = CreateKeyFile(path, nil)
	if !errors.Is(err, ErrKeyExists) {
		t.Fatalf("second CreateKeyFile err = %v, want ErrKeyExists", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the file", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("CreateKeyFile changed an existing key file")
	}
	assertOnlyFile(t, filepath.Dir(path), "identity.key")
	if k, err := LoadKeyFile(path); err != nil || k.PeerID() != first.PeerID() {
		t.Fatalf("LoadKeyFile after refused create: %v", err)
	}

	// Also when the existing name is a dangling symlink: never write through it.
	link := filepath.Join(t.TempDir(), "link.key")
	if err := os.Symlink(filepath.Join(t.TempDir(), "target"), link); err != nil {
		t.Fatal(err)
	}
	if _, err := CreateKeyFile(link, nil); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("CreateKeyFile over a dangling symlink: err = %v, want ErrKeyExists", err)
	}
}

func TestLoadKeyFileMode(t *testing.T) {
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o620, 0o602, 0o601, 0o610, 0o666, 0o700 | 0o007} {
		t.Run(fmt.Sprintf("%04o", mode), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "identity.key")
			if _, err := CreateKeyFile(path, nil); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
			_, err := LoadKeyFile(path)
			if !errors.Is(err, ErrKeyFileMode) {
				t.Fatalf("LoadKeyFile(mode %04o) err = %v, want ErrKeyFileMode", mode, err)
			}
			for _, want := range []string{
				"identity: key file " + path + fmt.Sprintf(" has mode %04o, ", mode),
				"fix with: chmod 600 " + path,
			} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if _, _, err := LoadOrCreateKeyFile(path); !errors.Is(err, ErrKeyFileMode) {
				t.Fatalf("LoadOrCreateKeyFile(mode %04o) err = %v, want ErrKeyFileMode", mode, err)
			}
		})
	}
	// The exact message for the common case.
	path := filepath.Join(t.TempDir(), "identity.key")
	if _, err := CreateKeyFile(path, nil); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o644)
	_, err := LoadKeyFile(path)
	want := "identity: key file " + path + " has mode 0644, readable by others; fix with: chmod 600 " + path
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant  %s", err, want)
	}
	// Owner-only modes other than 0600 are fine.
	for _, mode := range []os.FileMode{0o400, 0o600, 0o700} {
		os.Chmod(path, mode)
		if _, err := LoadKeyFile(path); err != nil {
			t.Errorf("LoadKeyFile(mode %04o): %v", mode, err)
		}
	}
}

func TestLoadKeyFileFormat(t *testing.T) {
	seedHex := strings.Repeat("ab", SeedSize)
	good := []string{
		"privkey:" + seedHex + "\n",
		"privkey:" + seedHex,
		"privkey:" + seedHex + "\r\n",
		"privkey:" + seedHex + "  \n\n\t",
		"privkey:" + strings.ToUpper(seedHex) + "\n",
	}
	for _, content := range good {
		path := writeTestFile(t, content)
		k, err := LoadKeyFile(path)
		if err != nil {
			t.Errorf("LoadKeyFile(%q): %v", content, err)
			continue
		}
		if want := bytes.Repeat([]byte{0xab}, SeedSize); !bytes.Equal(k.Ed25519().Seed(), want) {
			t.Errorf("LoadKeyFile(%q) seed = %x", content, k.Ed25519().Seed())
		}
	}
	bad := []string{
		"",
		"\n",
		seedHex + "\n",
		"privkey:\n",
		"privkey:" + seedHex[:62] + "\n",
		"privkey:" + seedHex + "ab\n",
		"privkey:" + seedHex[:62] + "zz\n",
		" privkey:" + seedHex + "\n",
		"PRIVKEY:" + seedHex + "\n",
		"privkey:" + seedHex + "\nprivkey:" + seedHex + "\n",
		"privkey: " + seedHex + "\n",
		strings.Repeat("x", 10000),
	}
	for _, content := range bad {
		path := writeTestFile(t, content)
		_, err := LoadKeyFile(path)
		if !errors.Is(err, ErrKeyFileFormat) {
			t.Errorf("LoadKeyFile(%.40q) err = %v, want ErrKeyFileFormat", content, err)
			continue
		}
		if !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), seedHex[:16]) {
			t.Errorf("LoadKeyFile(%.40q) err = %q: want the path named and no key material", content, err)
		}
	}
	if _, err := LoadKeyFile(t.TempDir()); !errors.Is(err, ErrKeyFileFormat) {
		t.Errorf("LoadKeyFile(a directory) err = %v, want ErrKeyFileFormat", err)
	}
}

func TestLoadKeyFileMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope", "identity.key")
	_, err := LoadKeyFile(path)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Fatalf("LoadKeyFile(missing) err = %v, want fs.ErrNotExist naming the path", err)
	}
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "identity.key")
	k1, created, err := LoadOrCreateKeyFile(path)
	if err != nil || !created || k1.IsZero() {
		t.Fatalf("first LoadOrCreateKeyFile: created=%v err=%v", created, err)
	}
	assertMode(t, path, 0o600)
	k2, created, err := LoadOrCreateKeyFile(path)
	if err != nil || created || k2.PeerID() != k1.PeerID() {
		t.Fatalf("second LoadOrCreateKeyFile: created=%v err=%v same=%v", created, err, k2.PeerID() == k1.PeerID())
	}
	// A garbled file is reported, never replaced.
	garbled := writeTestFile(t, "garbage\n")
	if _, _, err := LoadOrCreateKeyFile(garbled); !errors.Is(err, ErrKeyFileFormat) {
		t.Fatalf("LoadOrCreateKeyFile(garbled) err = %v, want ErrKeyFileFormat", err)
	}
	if b, _ := os.ReadFile(garbled); string(b) != "garbage\n" {
		t.Fatal("LoadOrCreateKeyFile replaced a garbled key file")
	}
}

func writeTestFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "identity.key")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func assertMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode() & (fs.ModePerm | fs.ModeDir); got != want {
		t.Fatalf("%s has mode %v, want %v", path, got, want)
	}
}

// assertOnlyFile checks that no temporary file was left beside the key.
func assertOnlyFile(t *testing.T, dir, name string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != name {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("%s holds %v, want only %s", dir, names, name)
	}
}

// TestLoadOrCreateKeyFileRace starts several creators at once: exactly one
// creates the key and all of them end up with that same key.
func TestLoadOrCreateKeyFileRace(t *testing.T) {
	for round := range 20 {
		path := filepath.Join(t.TempDir(), "identity.key")
		const n = 8
		var (
			wg      sync.WaitGroup
			ids     [n]PeerID
			created [n]bool
			errs    [n]error
		)
		for i := range n {
			wg.Go(func() {
				var k PrivateKey
				k, created[i], errs[i] = LoadOrCreateKeyFile(path)
				ids[i] = k.PeerID()
			})
		}
		wg.Wait()
		creators := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d: LoadOrCreateKeyFile: %v", round, errs[i])
			}
			if ids[i] != ids[0] {
				t.Fatalf("round %d: callers got different keys", round)
			}
			if created[i] {
				creators++
			}
		}
		if creators != 1 {
			t.Fatalf("round %d: %d callers report created, want 1", round, creators)
		}
		assertOnlyFile(t, filepath.Dir(path), "identity.key")
	}
}
