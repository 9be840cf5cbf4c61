package config

import (
	"slices"
	"strings"
	"testing"
)

func TestMetrics(t *testing.T) {
	isolate(t)
	c, err := loadString(t, "[metrics]\nlisten = \"9464\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Metrics.Listen != "127.0.0.1:9464" {
		t.Fatalf("metrics.listen = %q, want a bare port to mean 127.0.0.1:9464", c.Metrics.Listen)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings for a loopback metrics endpoint: %q", c.Warnings)
	}

	isolate(t)
	if c, err = loadString(t, ""); err != nil || c.Metrics.Listen != "" {
		t.Fatalf("no [metrics]: %+v, %v; want metrics off", c.Metrics, err)
	}

	isolate(t)
	t.Setenv("P2PD_METRICS_LISTEN", "0.0.0.0:9464")
	if c, err = loadString(t, ""); err != nil {
		t.Fatal(err)
	}
	want := "config: metrics.listen 0.0.0.0:9464 is reachable from the network; use 127.0.0.1 unless you mean it"
	if c.Metrics.Listen != "0.0.0.0:9464" || !slices.Contains(c.Warnings, want) {
		t.Fatalf("P2PD_METRICS_LISTEN: listen %q, warnings %q; want 0.0.0.0:9464 and the warning %q", c.Metrics.Listen, c.Warnings, want)
	}
}

func TestMetricsInvalid(t *testing.T) {
	for _, tt := range []struct{ toml, want string }{
		{"[metrics]\nlisten = \"127.0.0.1:99999\"\n", `config: metrics.listen "127.0.0.1:99999": port 99999 out of range; use 1-65535`},
		{"[metrics]\nlisten = \"unix:/run/p2pd.metrics\"\n", `config: metrics.listen "unix:/run/p2pd.metrics": must be a TCP "host:port"`},
		{"[metrics]\nlisten = \"1080\"\n[proxy]\nsocks5 = \"127.0.0.1:1080\"\n", `config: metrics.listen "127.0.0.1:1080": same address as a [proxy] listener`},
		{"[metrics]\nlisten = 9464\n", `config: metrics.listen: want a "host:port" string`},
	} {
		isolate(t)
		_, err := loadString(t, tt.toml)
		if err == nil || !slices.ContainsFunc(messages(err), func(m string) bool { return strings.Contains(m, tt.want) }) {
			t.Errorf("%q: err = %v, want a line containing %q", tt.toml, err, tt.want)
		}
	}
}
