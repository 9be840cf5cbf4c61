package main

import (
	"strings"
	"testing"
)

func TestParseGoroutines(t *testing.T) {
	profile := "goroutine profile: total 9\n" +
		"3 @ 0x1 0x2\n#\t0x1\tgithub.com/quic-go/quic-go.(*Conn).run+0x428\t/x/connection.go:660\n#\t0x2\truntime.goexit+0x1\n\n" +
		"4 @ 0x3\n#\t0x3\tgithub.com/quic-go/quic-go.(*sendQueue).Run+0x10f\t/x/send_queue.go:84\n\n" +
		"2 @ 0x4\n#\t0x4\tgithub.com/quic-go/quic-go.(*Conn).run+0x428\t/x/connection.go:660\n"
	total, conns, err := parseGoroutines(strings.NewReader(profile))
	if err != nil || total != 9 || conns != 5 {
		t.Fatalf("got total %d, conns %d, err %v; want 9, 5, nil", total, conns, err)
	}
	if _, _, err := parseGoroutines(strings.NewReader("not a profile\n")); err == nil {
		t.Fatal("a text that is no profile parsed")
	}
}

func TestScaleAddrs(t *testing.T) {
	seen := map[string]bool{}
	for i := range scaleMaxNodes {
		node, router := scaleAddrs(i)
		if seen[node] || seen[router] {
			t.Fatalf("node %d: %s or %s used twice", i, node, router)
		}
		seen[node], seen[router] = true, true
	}
	if node, router := scaleAddrs(65); node != "10.80.1.6" || router != "10.80.1.5" {
		t.Fatalf("node 65: %s via %s, want 10.80.1.6 via 10.80.1.5", node, router)
	}
}

func TestDistOf(t *testing.T) {
	d := distOf([]float64{5, 1, 4, 2, 3, 6, 7, 8, 9, 10})
	if d.mean != 5.5 || d.p50 != 6 || d.p90 != 10 || d.max != 10 {
		t.Fatalf("distOf: %+v", d)
	}
}

func TestScaleRequested(t *testing.T) {
	for _, c := range []struct {
		args []string
		want bool
	}{
		{[]string{"-scale", "50"}, true},
		{[]string{"-bin", "x", "--scale=200"}, true},
		{[]string{"-scale-idle", "1m"}, false},
		{[]string{"-quick"}, false},
		{[]string{"--", "-scale", "5"}, false},
	} {
		if got := scaleRequested(c.args); got != c.want {
			t.Errorf("scaleRequested(%q) = %v, want %v", c.args, got, c.want)
		}
	}
}
