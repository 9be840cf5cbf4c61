package identity

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Key file text: keyFilePrefix, 64 lower-case hex digits of the seed, "\n".
const (
	keyFilePrefix  = "privkey:"
	keyFileHexLen  = 2 * SeedSize
	keyFileMaxSize = 4096 // more than this is not a key file; reading stops there
	keyFileMode    = 0o600
	keyDirMode     = 0o700
)

var (
	// ErrKeyExists reports that CreateKeyFile found a file at the path.
	ErrKeyExists = errors.New("identity: key file already exists")
	// ErrKeyFileMode reports a key file readable or writable by group or others.
	ErrKeyFileMode = errors.New("identity: key file permissions too open")
	// ErrKeyFileFormat reports a file that is not a p2pd key file.
	ErrKeyFileFormat = errors.New("identity: not a p2pd key file")
)

// CreateKeyFile generates a key from rand (crypto/rand when nil) and stores it
// at path, creating the parent directory 0700 if it is missing. It never
// replaces an existing file (ErrKeyExists) and never leaves a partial key
// file behind: it writes a temporary file (mode 0600) in the same directory,
// syncs it, hard-links it to path and removes the temporary name.
func CreateKeyFile(path string, rand io.Reader) (PrivateKey, error) {
	k, err := GenerateKey(rand)
	if err != nil {
		return PrivateKey{}, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, keyDirMode); err != nil {
		return PrivateKey{}, fmt.Errorf("identity: create key directory: %w", err)
	}
	if _, err := os.Lstat(path); err == nil {
		return PrivateKey{}, errorf(ErrKeyExists, "identity: key file %s already exists; remove it first to make a new identity", path)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*") // created 0600
	if err != nil {
		return PrivateKey{}, fmt.Errorf("identity: create key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := writeKeyFile(tmp, k); err != nil {
		return PrivateKey{}, fmt.Errorf("identity: write key file %s: %w", tmp.Name(), err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return PrivateKey{}, errorf(ErrKeyExists, "identity: key file %s already exists; remove it first to make a new identity", path)
		}
		return PrivateKey{}, fmt.Errorf("identity: create key file: %w", err)
	}
	syncDir(dir)
	return k, nil
}

// writeKeyFile writes k in the key file format to f, syncs and closes it.
func writeKeyFile(f *os.File, k PrivateKey) error {
	seed := k.seed()
	text := make([]byte, 0, len(keyFilePrefix)+keyFileHexLen+1)
	text = append(text, keyFilePrefix...)
	text = hex.AppendEncode(text, seed)
	text = append(text, '\n')
	_, err := f.Write(text)
	clear(text)
	clear(seed)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir makes a new directory entry durable. It is best effort: some file
// systems refuse to sync a directory, and the key is already on disk.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// LoadKeyFile reads the key stored at path. It refuses (ErrKeyFileMode) a
// file whose mode grants any permission to group or others, and a file that
// is not a p2pd key file (ErrKeyFileFormat). A missing file gives an error
// matching fs.ErrNotExist.
func LoadKeyFile(path string) (PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return PrivateKey{}, fmt.Errorf("identity: open key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return PrivateKey{}, fmt.Errorf("identity: key file %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return PrivateKey{}, errorf(ErrKeyFileFormat, "identity: key file %s is a %s, not a regular file", path, fi.Mode().Type())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		what := "readable by others"
		if perm&0o044 == 0 {
			what = "writable or executable by others"
		}
		return PrivateKey{}, errorf(ErrKeyFileMode, "identity: key file %s has mode %04o, %s; fix with: chmod 600 %s",
			path, perm, what, path)
	}
	buf := make([]byte, keyFileMaxSize+1)
	defer clear(buf)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return PrivateKey{}, fmt.Errorf("identity: read key file %s: %w", path, err)
	}
	k, perr := parseKeyFile(buf[:n])
	if perr != nil {
		return PrivateKey{}, errorf(ErrKeyFileFormat,
			"identity: key file %s %s; restore it from a backup, or move it away and run p2pd init for a new identity", path, perr)
	}
	return k, nil
}

// parseKeyFile parses the key file text. Its errors never quote the content.
func parseKeyFile(b []byte) (PrivateKey, error) {
	if len(b) > keyFileMaxSize {
		return PrivateKey{}, fmt.Errorf("is larger than %d bytes", keyFileMaxSize)
	}
	s := strings.TrimRight(string(b), " \t\r\n")
	if !strings.HasPrefix(s, keyFilePrefix) {
		return PrivateKey{}, fmt.Errorf("does not start with %q", keyFilePrefix)
	}
	h := s[len(keyFilePrefix):]
	if len(h) != keyFileHexLen {
		return PrivateKey{}, fmt.Errorf("holds %d characters after %q, want %d hex digits", len(h), keyFilePrefix, keyFileHexLen)
	}
	seed, err := hex.DecodeString(h)
	if err != nil {
		return PrivateKey{}, fmt.Errorf("holds a non-hex character after %q", keyFilePrefix)
	}
	defer clear(seed)
	return PrivateKeyFromSeed(seed)
}

// LoadOrCreateKeyFile loads the key at path, or creates it with a fresh key
// from crypto/rand when no file exists there; created reports which. Any other
// load error (bad mode, garbled file) is returned, never papered over.
func LoadOrCreateKeyFile(path string) (k PrivateKey, created bool, err error) {
	k, err = LoadKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, false, err
	}
	k, err = CreateKeyFile(path, nil)
	if errors.Is(err, ErrKeyExists) {
		// Another process created it between our load and create.
		k, err = LoadKeyFile(path)
		return k, false, err
	}
	return k, err == nil, err
}
