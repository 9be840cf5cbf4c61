package config

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestFuzzSeeds keeps the checked-in seed corpus honest: files named valid_* load, the others
// fail.
func TestFuzzSeeds(t *testing.T) {
	isolate(t)
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzLoad", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no seed corpus: %v", err)
	}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		body, ok := strings.CutPrefix(string(raw), "go test fuzz v1\n[]byte(")
		body, ok2 := strings.CutSuffix(body, ")\n")
		data, err := strconv.Unquote(body)
		if !ok || !ok2 || err != nil {
			t.Fatalf("%s: not a one-[]byte corpus file: %v", file, err)
		}
		_, err = loadString(t, data)
		if valid := strings.HasPrefix(filepath.Base(file), "valid_"); valid != (err == nil) {
			t.Errorf("%s: Load error = %v, want valid = %v", file, err, valid)
		}
	}
}
