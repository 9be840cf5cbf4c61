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
	"syscall"
)

// Key file text: keyFilePrefix, 64 lower-case hex digits of the seed, "\n".
const (
	keyFilePrefix  = "privkey:"
	keyFileHexLen  = 2 * SeedSize
	keyFileMaxSize = 4096 // a larger file is not a key file: refused before reading, and reading stops there
	keyFileMode    = 0o600
	keyDirMode     = 0o700
)

var (
	// ErrKeyExists reports that CreateKeyFile found a file at the path.
	ErrKeyExists = errors.New("identity: key file already exists")
	// ErrKeyFileMode reports a key file readable or writable by group or others.
	ErrKeyFileMode = errors.New("identity: key file permissions too open")
	// ErrKeyFileOwner reports a key file owned by a user other than the
	// process's effective user.
	ErrKeyFileOwner = errors.New("identity: key file owned by another user")
	// ErrKeyFileFormat reports a file that is not a p2pd key file: a symbolic
	// link, a named pipe or other non-regular file, a file too large, or
	// garbled text.
	ErrKeyFileFormat = errors.New("identity: not a p2pd key file")
)

// CreateKeyFile generates a key from rand (crypto/rand when nil) and stores it
// at path, creating the parent directory 0700 if it is missing. It never
// replaces an existing file (ErrKeyExists) and never leaves a partial key
// file behind: it writes a temporary file (mode 0600) in the same directory,
// syncs it, hard-links it to path and removes the temporary name. Neither
// step follows a symbolic link planted at a final name: the temporary file is
// created with O_CREATE|O_EXCL (os.CreateTemp), which fails on any existing
// name, links included, and link(2) fails when path exists, link or not.
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

// LoadKeyFile reads the key stored at path. It opens path without following
// a symbolic link at its last element (O_NOFOLLOW) and without blocking on a
// named pipe or device (O_NONBLOCK), then checks the opened descriptor, never
// the path a second time. It refuses:
//   - a symbolic link, a named pipe, a directory or any other file that is
//     not a regular file, a file larger than a key file can be, and text that
//     is not a p2pd key (ErrKeyFileFormat);
//   - a file owned by anyone but the process's effective user, root included
//     (ErrKeyFileOwner);
//   - a file whose mode grants any permission to group or others
//     (ErrKeyFileMode).
//
// Each error names the file, the problem and the fix. A missing file gives an
// error matching fs.ErrNotExist.
func LoadKeyFile(path string) (PrivateKey, error) {
	f, err := openKeyFile(path)
	if err != nil {
		return PrivateKey{}, err
	}
	defer f.Close()
	fi, err := f.Stat() // fstat(2) on the descriptor just opened
	if err != nil {
		return PrivateKey{}, fmt.Errorf("identity: key file %s: %w", path, err)
	}
	if err := checkKeyFile(path, fi); err != nil {
		return PrivateKey{}, err
	}
	buf := make([]byte, keyFileMaxSize+1) // +1: a file grown since fstat is still caught
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

// openKeyFile opens path read-only, close-on-exec, without following a
// symbolic link at its last element and without waiting for a writer if it is
// a named pipe. O_NONBLOCK changes nothing for the regular file that is read.
func openKeyFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err == nil {
		return f, nil
	}
	if errors.Is(err, syscall.ELOOP) { // also returned for too many links on the way; tell them apart
		if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return nil, errorf(ErrKeyFileFormat,
				"identity: key file %s is a symbolic link; p2pd does not follow links for its key: point key_file at the real file", path)
		}
	}
	return nil, fmt.Errorf("identity: open key file: %w", err)
}

// checkKeyFile applies LoadKeyFile's rules to the opened file's fi, in the
// order a user would fix them: what the file is, who owns it, its mode, its
// size.
func checkKeyFile(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return errorf(ErrKeyFileFormat, "identity: key file %s is a %s, not a regular file; point key_file at the real key file",
			path, FileKind(fi.Mode()))
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if euid := os.Geteuid(); int(st.Uid) != euid {
			return errorf(ErrKeyFileOwner, "identity: key file %s is owned by uid %d, not by this process (uid %d); fix with: chown %d %s",
				path, st.Uid, euid, euid, path)
		}
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		what := "readable by others"
		if perm&0o044 == 0 {
			what = "writable or executable by others"
		}
		return errorf(ErrKeyFileMode, "identity: key file %s has mode %04o, %s; fix with: chmod 600 %s",
			path, perm, what, path)
	}
	if fi.Size() > keyFileMaxSize {
		return errorf(ErrKeyFileFormat,
			"identity: key file %s is %d bytes, larger than a key file can be (%d); point key_file at the key file, or move it away and run p2pd init for a new identity",
			path, fi.Size(), keyFileMaxSize)
	}
	return nil
}

// FileKind names the type of a file that is not a regular file, for
// messages such as "X is a directory, not a regular file".
func FileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeDir != 0:
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	default:
		return "special file"
	}
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
