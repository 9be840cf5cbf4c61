package buildinfo

import (
	"regexp"
	"runtime/debug"
	"testing"
)

func TestCommitOf(t *testing.T) {
	rev := "0123456789abcdef0123456789abcdef01234567"
	for _, tt := range []struct {
		settings []debug.BuildSetting
		want     string
	}{
		{nil, "unknown"},
		{[]debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: "false"}}, rev},
		{[]debug.BuildSetting{{Key: "vcs.modified", Value: "true"}, {Key: "vcs.revision", Value: rev}}, rev + "-dirty"},
		{[]debug.BuildSetting{{Key: "vcs.modified", Value: "true"}}, "unknown"},
	} {
		if got := commitOf(tt.settings); got != tt.want {
			t.Errorf("commitOf(%v) = %q, want %q", tt.settings, got, tt.want)
		}
	}
}

func TestText(t *testing.T) {
	re := regexp.MustCompile(`^p2pd ` + regexp.QuoteMeta(Version) + `\ncommit: (unknown|[0-9a-f]{40}(-dirty)?)\n` +
		`go:     go1\.\d+\S* [a-z0-9]+/[a-z0-9]+\n$`)
	if got := Text("p2pd"); !re.MatchString(got) {
		t.Errorf("Text printed %q, want the shape %s", got, re)
	}
}
