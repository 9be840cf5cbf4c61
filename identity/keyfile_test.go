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
	"syscall"
	"testing"
	"time"
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

// within runs load and stops the test if it has not returned within two
// seconds, as an open(2) waiting for the writer of the named pipe at path
// would not. It then releases such an open so that no goroutine is left.
func within(t *testing.T, path string, load func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- load() }()
	select {
	case err := <-done:
		return err
	case <-time.After(2 * time.Second):
		// A writer that comes and goes releases the open, and the read then ends.
		if w, err := os.OpenFile(path, os.O_RDWR, 0); err == nil {
			w.Close()
		}
		<-done
		t.Fatalf("loading the key from %s still blocked after 2s", path)
		return nil
	}
}

func TestLoadKeyFileNamedPipe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "identity.key")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	err := within(t, path, func() error { _, err := LoadKeyFile(path); return err })
	want := "identity: key file " + path + " is a named pipe, not a regular file; point key_file at the real key file"
	if !errors.Is(err, ErrKeyFileFormat) || err.Error() != want {
		t.Fatalf("LoadKeyFile(named pipe) err = %v\nwant  %s", err, want)
	}
	// LoadOrCreateKeyFile must neither block nor replace it.
	err = within(t, path, func() error { _, _, err := LoadOrCreateKeyFile(path); return err })
	if !errors.Is(err, ErrKeyFileFormat) {
		t.Fatalf("LoadOrCreateKeyFile(named pipe) err = %v, want ErrKeyFileFormat", err)
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != fs.ModeNamedPipe {
		t.Fatalf("the named pipe was replaced: %v, %v", fi, err)
	}
}

func TestLoadKeyFileDevice(t *testing.T) {
	_, err := LoadKeyFile(os.DevNull)
	want := "identity: key file " + os.DevNull + " is a character device, not a regular file"
	if !errors.Is(err, ErrKeyFileFormat) || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("LoadKeyFile(%s) err = %v, want one starting %q", os.DevNull, err, want)
	}
}

func TestLoadKeyFileSymlink(t *testing.T) {
	real := filepath.Join(t.TempDir(), "identity.key")
	if _, err := CreateKeyFile(real, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyFile(real); err != nil {
		t.Fatalf("the link's target itself is a valid key: %v", err)
	}
	dangling := filepath.Join(t.TempDir(), "missing.key")
	for name, target := range map[string]string{"to a valid key": real, "dangling": dangling} {
		t.Run(name, func(t *testing.T) {
			link := filepath.Join(t.TempDir(), "identity.key")
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			_, err := LoadKeyFile(link)
			want := "identity: key file " + link + " is a symbolic link; p2pd does not follow links for its key: point key_file at the real file"
			if !errors.Is(err, ErrKeyFileFormat) || err.Error() != want {
				t.Fatalf("LoadKeyFile(symlink) err = %v\nwant  %s", err, want)
			}
			if _, _, err := LoadOrCreateKeyFile(link); !errors.Is(err, ErrKeyFileFormat) {
				t.Fatalf("LoadOrCreateKeyFile(symlink) err = %v, want ErrKeyFileFormat", err)
			}
		})
	}
	if _, err := os.Lstat(dangling); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a key was written through the dangling link: %v", err)
	}
}

// TestCreateKeyFileOverSymlink plants a link to a file of ours at the key
// path: CreateKeyFile must refuse and leave the target as it was.
func TestCreateKeyFileOverSymlink(t *testing.T) {
	target := filepath.Join(t.TempDir(), "precious")
	if err := os.WriteFile(target, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "identity.key")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if _, err := CreateKeyFile(link, nil); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("CreateKeyFile over a symlink: err = %v, want ErrKeyExists", err)
	}
	if b, err := os.ReadFile(target); err != nil || string(b) != "precious\n" {
		t.Fatalf("link target changed: %q, %v", b, err)
	}
	assertOnlyFile(t, filepath.Dir(link), "identity.key")
}

func TestLoadKeyFileOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot give a key file to another user")
	}
	path := filepath.Join(t.TempDir(), "identity.key")
	if _, err := CreateKeyFile(path, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	assertMode(t, path, 0o600)
	_, err := LoadKeyFile(path)
	want := "identity: key file " + path + " is owned by uid 65534, not by this process (uid 0); fix with: chown 0 " + path
	if !errors.Is(err, ErrKeyFileOwner) || err.Error() != want {
		t.Fatalf("LoadKeyFile(owned by 65534) err = %v\nwant  %s", err, want)
	}
	if _, _, err := LoadOrCreateKeyFile(path); !errors.Is(err, ErrKeyFileOwner) {
		t.Fatalf("LoadOrCreateKeyFile(owned by 65534) err = %v, want ErrKeyFileOwner", err)
	}
	// Given back, the same file loads.
	if err := os.Chown(path, 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyFile(path); err != nil {
		t.Fatalf("LoadKeyFile after chown back: %v", err)
	}
}

func TestLoadKeyFileTooLarge(t *testing.T) {
	valid := "privkey:" + strings.Repeat("ab", SeedSize) + "\n"
	for _, size := range []int64{keyFileMaxSize + 1, 1 << 40} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			// A valid key at the start, then more: refused for its size alone.
			path := writeTestFile(t, valid)
			if err := os.Truncate(path, size); err != nil { // sparse: costs no disk
				t.Fatal(err)
			}
			_, err := LoadKeyFile(path)
			want := fmt.Sprintf("identity: key file %s is %d bytes, larger than a key file can be (%d); ", path, size, keyFileMaxSize)
			if !errors.Is(err, ErrKeyFileFormat) || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("LoadKeyFile(%d bytes) err = %v, want one starting %q", size, err, want)
			}
		})
	}
	// At the bound it is read and judged by its text.
	path := writeTestFile(t, valid+strings.Repeat("\n", keyFileMaxSize-len(valid)))
	if _, err := LoadKeyFile(path); err != nil {
		t.Fatalf("LoadKeyFile(%d bytes, a key and blank lines): %v", keyFileMaxSize, err)
	}
}
