package config

import (
	"slices"
	"strings"
	"testing"
)

func TestProxy(t *testing.T) {
	isolate(t)
	c, err := loadString(t, "[proxy]\nsocks5 = \"1080\"\nhttp = \"0.0.0.0:8118\"\nusername = \"u\"\npassword = \"p\"\nmax_connections = 100\n")
	if err != nil {
		t.Fatal(err)
	}
	want := Proxy{SOCKS5: "127.0.0.1:1080", HTTP: "0.0.0.0:8118", Username: "u", Password: "p", MaxConnections: 100}
	if c.Proxy != want {
		t.Fatalf("Proxy = %+v, want %+v", c.Proxy, want)
	}

	isolate(t)
	if c, err = loadString(t, ""); err != nil || c.Proxy != (Proxy{}) {
		t.Fatalf("no [proxy]: %+v, %v; want both proxies off", c.Proxy, err)
	}

	isolate(t)
	t.Setenv("P2PD_PROXY_SOCKS5", ":1081")
	t.Setenv("P2PD_PROXY_PASSWORD", "from-env")
	if c, err = loadString(t, "[proxy]\nusername = \"u\"\n"); err != nil {
		t.Fatal(err)
	}
	if c.Proxy.SOCKS5 != "127.0.0.1:1081" || c.Proxy.Password != "from-env" {
		t.Fatalf("environment: Proxy = %+v, want socks5 127.0.0.1:1081 and the password from P2PD_PROXY_PASSWORD", c.Proxy)
	}
}

func TestProxyInvalid(t *testing.T) {
	long := strings.Repeat("x", 256)
	for _, tt := range []struct{ toml, want string }{
		{"[proxy]\nsocks5 = \"127.0.0.1:99999\"\n", `config: proxy.socks5 "127.0.0.1:99999": port 99999 out of range; use 1-65535`},
		{"[proxy]\nsocks5 = \"1080\"\nhttp = \"127.0.0.1:1080\"\n",
			`config: proxy.http "127.0.0.1:1080": same address as proxy.socks5 (127.0.0.1:1080); use another port`},
		{twoPeers + "[[forwards]]\nlisten = \"1080\"\npeer = \"db\"\nservice = \"pg\"\n[proxy]\nsocks5 = \"1080\"\n",
			`config: proxy.socks5 "127.0.0.1:1080": same address as forwards[0] (127.0.0.1:1080); use another port`},
		{"[proxy]\nusername = \"u\"\n", `config: proxy.username "u": set without proxy.password; set both, or neither for no authentication`},
		{"[proxy]\npassword = \"secret\"\n", `config: proxy.password (hidden): set without proxy.username; set both, or neither for no authentication`},
		{"[proxy]\nusername = \"u\"\npassword = \"" + long + "\"\n", `config: proxy.password (hidden): is 256 bytes; SOCKS5 allows at most 255`},
		{"[proxy]\nmax_connections = -1\n", `config: proxy.max_connections -1: must be between 1 and 1048576; absent or 0 means the default, 8192`},
		{"[proxy]\nsock5 = \"1080\"\n", `config: FILE: unknown key "proxy.sock5" (did you mean "socks5"?)`},
	} {
		isolate(t)
		path := writeFile(t, "p2pd.toml", tt.toml)
		_, err := Load(path)
		want := strings.ReplaceAll(tt.want, "FILE", path)
		if got := messages(err); !slices.Equal(got, []string{want}) {
			t.Errorf("%q:\ngot  %q\nwant %q", tt.toml, got, want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: the error shows the password: %v", tt.toml, err)
		}
	}
}
