package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteInitial(t *testing.T) {
	isolate(t)
	for _, name := range []string{"alpha", `quote " and \ back`, "ünïcode", ""} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "new", "dir", "p2pd.toml")
			if err := WriteInitial(path, name); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want 0600", st.Mode().Perm())
			}
			if st, _ := os.Stat(filepath.Dir(path)); st.Mode().Perm() != 0o700 {
				t.Errorf("directory mode %v, want 0700", st.Mode().Perm())
			}
			c, err := Load(path)
			if err != nil {
				t.Fatalf("the written config does not load: %v", err)
			}
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			want := name
			if want == "" {
				want = defaultName()
			}
			if c.Node.Name != want || c.Node.KeyFile != filepath.Join(filepath.Dir(path), "identity.key") {
				t.Errorf("name %q key %q", c.Node.Name, c.Node.KeyFile)
			}
			// The comment on environment overrides names every table they set.
			data, _ := os.ReadFile(path)
			sentence, _, _ := strings.Cut(string(data), "P2PD_<TABLE>_<KEY>")
			_, sentence, _ = strings.Cut(sentence, "# Every key of ")
			for _, s := range schema {
				if has := strings.Contains(sentence, "["+s.name+"]"); has == s.array {
					t.Errorf("the comment on environment overrides (%q) names [%s]: %v, want %v", sentence, s.name, has, !s.array)
				}
			}
		})
	}
}

func TestWriteInitialRefusesToOverwrite(t *testing.T) {
	isolate(t)
	path := writeFile(t, "p2pd.toml", "# mine\n")
	err := WriteInitial(path, "alpha")
	if !errors.Is(err, ErrExists) {
		t.Fatalf("err = %v, want ErrExists", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "# mine\n" {
		t.Fatalf("file changed to %q", data)
	}
}

func TestWriteInitialBadName(t *testing.T) {
	isolate(t)
	path := filepath.Join(t.TempDir(), "p2pd.toml")
	err := WriteInitial(path, "a\nb")
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a file was written despite the bad name: %v", err)
	}
}
