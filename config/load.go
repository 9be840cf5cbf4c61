package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unicode"

	"github.com/p2pd/p2pd/identity"
	"github.com/spf13/viper"
)

// maxFileSize bounds what Load reads; a real config is a few kilobytes.
const maxFileSize = 1 << 20

// Load reads the config file at path, applies P2PD_ environment overrides and validates the
// result, reporting every problem at once.
//
// An empty path means DefaultPath(). When that default file does not exist Load returns the
// defaults (with environment overrides) and no error; a path that was named explicitly, as an
// argument or through $P2PD_CONFIG, must exist.
func Load(path string) (*Config, error) {
	explicit := path != "" || os.Getenv(envConfig) != ""
	if path == "" {
		path = DefaultPath()
	}
	data, err := readFile(path, func(dir bool) string {
		if dir {
			return "point --config at the config file in it, e.g. " + filepath.Join(path, defaultFileName)
		}
		return "point --config at the config file"
	})
	switch {
	case errors.Is(err, fs.ErrNotExist) && !explicit:
		return load("", nil)
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("config: %s: %w; create it with `p2pd init --config %s`", path, ErrNotFound, path)
	case err != nil:
		return nil, err
	}
	return load(path, data)
}

// readFile reads the file at path, at most maxFileSize bytes. Anything but a
// regular file is refused with the fix fix gives (dir: it is a directory).
func readFile(path string, fix func(dir bool) string) ([]byte, error) {
	// O_NONBLOCK: a FIFO at the path must not hang start-up; it is refused
	// below, as is anything else that is not a regular file.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("config: %s is a %s, not a regular file; %s", path, identity.FileKind(fi.Mode()), fix(fi.IsDir()))
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("config: %s: file is larger than %d bytes; is it the right file?", path, maxFileSize)
	}
	return data, nil
}

// load builds the Config from the file's bytes (path "" = no file) and the environment.
func load(path string, data []byte) (*Config, error) {
	c := Default()
	v := viper.New()
	v.SetConfigType("toml")
	if path != "" {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, fmt.Errorf("config: %s: %w", path, err)
		}
		c.Path, c.Dir = abs, filepath.Dir(abs)
		c.Node.KeyFile, c.Node.StateDir = defaultKeyFile, ""
		if _, err := readTOML(v, path, data, &c.Warnings); err != nil {
			return nil, err
		}
	}
	d := &decoder{v: v, raw: v.AllSettings(), file: path, c: c, env: map[string]string{}}
	bindEnv(v)
	d.decode()
	c.fillDefaults()
	d.p = append(d.p, c.mergeTrustFile()...) // the trust file (managed.go)
	if err := d.result(c.validate()); err != nil {
		return nil, err
	}
	c.Warnings = append(c.Warnings, c.loadWarnings(os.Environ())...) // warnings.go
	return c, nil
}

// bindEnv binds P2PD_<SECTION>_<KEY> for every key of the plain tables. Viper would ignore
// variables for keys the file does not mention unless each is bound.
func bindEnv(v *viper.Viper) {
	v.SetEnvPrefix(envPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	for _, s := range schema {
		if s.array {
			continue
		}
		for _, f := range s.fields {
			_ = v.BindEnv(s.name + "." + f.name) // fails only without a key
		}
	}
}

// fillDefaults sets per-entry defaults and makes paths absolute.
func (c *Config) fillDefaults() {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(c.Dir, p)
	}
	c.Node.KeyFile = abs(c.Node.KeyFile)
	c.Node.ControlSocket = abs(c.Node.ControlSocket)
	if c.Node.StateDir == "" {
		c.Node.StateDir = c.Dir
	}
	c.Node.StateDir = abs(c.Node.StateDir)
	for i := range c.Services {
		if c.Services[i].Protocol == "" {
			c.Services[i].Protocol = ProtocolTCP
		}
	}
	for i := range c.Forwards {
		if c.Forwards[i].Protocol == "" {
			c.Forwards[i].Protocol = ProtocolTCP
		}
	}
}

// result joins decoding and validation problems. A validation problem about a key that
// already failed to decode (or lies inside one) is dropped: it would repeat the same mistake.
func (d *decoder) result(validation problems) error {
	failed := map[string]bool{}
	for _, err := range d.p {
		if ke, ok := err.(*KeyError); ok {
			failed[ke.Key] = true
		}
	}
	all := d.p
	for _, err := range validation {
		ke, ok := err.(*KeyError)
		if ok && coveredBy(ke.Key, failed) {
			continue
		}
		if ok && ke.Env == "" {
			ke.Env = d.env[baseKey(ke.Key)]
		}
		all = append(all, err)
	}
	return errors.Join(all...)
}

// coveredBy reports whether key or one of its parents ("peers[0]" for "peers[0].id") failed.
func coveredBy(key string, failed map[string]bool) bool {
	for k := key; k != ""; {
		if failed[k] {
			return true
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return false
}

// baseKey drops array indices: "node.listen[1]" -> "node.listen".
func baseKey(key string) string {
	var b strings.Builder
	depth := 0
	for _, r := range key {
		switch {
		case r == '[':
			depth++
		case r == ']' && depth > 0:
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// maxHeaderFixes bounds how many glued table headers readTOML mends.
const maxHeaderFixes = 64

// readTOML parses data into v. One slip is mended instead of refused: a
// table header glued to the end of the previous line (`id = "x"[[peers]]`,
// which shell scripts that join $(...) outputs produce). TOML has no other
// reading for it, so the header is moved to a line of its own and a warning
// names the place. Every other syntax error is returned as is.
func readTOML(v *viper.Viper, path string, data []byte, warnings *[]string) ([]byte, error) {
	for fixes := 0; ; fixes++ {
		err := v.ReadConfig(bytes.NewReader(data))
		if err == nil {
			return data, nil
		}
		var pos interface{ Position() (int, int) }
		if fixes == maxHeaderFixes || !strings.Contains(err.Error(), "expected newline but got U+005B '['") || !errors.As(err, &pos) {
			return nil, syntaxError(path, data, err)
		}
		line, col := pos.Position()
		off := lineOffset(data, line) + col - 1
		if off <= 0 || off >= len(data) || data[off] != '[' {
			return nil, syntaxError(path, data, err)
		}
		data = append(data[:off:off], append([]byte("\n"), data[off:]...)...)
		*warnings = append(*warnings, fmt.Sprintf("config: %s:%d:%d: a table header must start a line; read as if it did", path, line, col))
	}
}

// lineOffset is the byte offset where 1-based line starts.
func lineOffset(data []byte, line int) int {
	off := 0
	for l := 1; l < line; l++ {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			return len(data)
		}
		off += i + 1
	}
	return off
}

// syntaxError turns viper's parse error about data into one naming the
// file, line and column; when go-toml gives no position (a table or key
// defined twice), locate finds it.
func syntaxError(path string, data []byte, err error) error {
	var pos interface{ Position() (int, int) }
	msg := err.Error()
	var inner interface{ Unwrap() error }
	if errors.As(err, &inner) && inner.Unwrap() != nil {
		msg = inner.Unwrap().Error()
	}
	msg = strings.Map(func(r rune) rune { // keep the message on one line
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, strings.TrimPrefix(msg, "toml: "))
	if errors.As(err, &pos) {
		line, col := pos.Position()
		return fmt.Errorf("config: %s:%d:%d: %w: %s", path, line, col, ErrSyntax, msg)
	}
	if line, col, ok := locate(data); ok {
		return fmt.Errorf("config: %s:%d:%d: %w: %s", path, line, col, ErrSyntax, msg)
	}
	return fmt.Errorf("config: %s: %w: %s", path, ErrSyntax, msg)
}
