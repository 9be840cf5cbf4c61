package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestProxyProtocolAndUnixForwards covers [[services]] proxy_protocol and
// the "unix:/path" form of [[forwards]] listen: what loads and what each
// mistake says.
func TestProxyProtocolAndUnixForwards(t *testing.T) {
	dir, err := os.MkdirTemp("", "p2pd-cfg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "db.sock")
	svc := func(body string) string { return twoPeers + "[[services]]\n" + body }
	fwd := func(listen string) string {
		return twoPeers + "[[forwards]]\nlisten = \"" + listen + "\"\npeer = \"db\"\nservice = \"pg\"\n"
	}
	long := "/" + strings.Repeat("s", 107)
	for _, tt := range []struct{ name, toml, want string }{
		{"proxy_protocol v1", svc("name = \"pg\"\ntarget = \"127.0.0.1:1\"\nproxy_protocol = \"v1\"\n"),
			`config: services[0].proxy_protocol "v1": must be "v2" (a PROXY protocol v2 header with the peer's ID opens each connection to the target) or "" (off)`},
		{"proxy_protocol on udp", svc("name = \"dns\"\ntarget = \"127.0.0.1:53\"\nprotocol = \"udp\"\nproxy_protocol = \"v2\"\n"),
			`config: services[0].proxy_protocol "v2": the PROXY protocol is for tcp services; remove it from this udp service`},
		{"unix forward relative", fwd("unix:db.sock"),
			`config: forwards[0].listen "unix:db.sock": the socket path must be absolute: "unix:/path/to/socket"`},
		{"unix forward too long", fwd("unix:" + long),
			`config: forwards[0].listen "unix:` + long[:75] + `...": the socket path is 108 bytes, a Unix socket path can have at most 107; choose a shorter one`},
		{"unix forward without its directory", fwd("unix:" + dir + "/nodir/db.sock"),
			`config: forwards[0].listen "unix:` + dir + `/nodir/db.sock": the directory ` + dir + `/nodir does not exist; create it (e.g. RuntimeDirectory= in the systemd unit) or choose another path`},
		{"unix forward duplicate", twoPeers + "[[forwards]]\nlisten = \"unix:" + sock + "\"\npeer = \"db\"\nservice = \"pg\"\n" +
			"[[forwards]]\nlisten = \"unix:" + dir + "//./db.sock\"\npeer = \"db\"\nservice = \"pg2\"\n",
			`config: forwards[1].listen "unix:` + sock + `": same address as forwards[0] (unix:` + sock + `); use another path`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t)
			_, err := loadString(t, tt.toml)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if got := messages(err); !slices.Equal(got, []string{tt.want}) {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
		})
	}

	t.Run("valid", func(t *testing.T) {
		isolate(t)
		c, err := loadString(t, svc("name = \"pg\"\ntarget = \"unix:/run/pg.sock\"\nproxy_protocol = \"v2\"\n")+
			"[[forwards]]\nlisten = \"unix:"+dir+"/./db.sock\"\npeer = \"db\"\nservice = \"pg\"\n")
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Services[0].ProxyProtocol; got != ProxyProtocolV2 {
			t.Errorf("proxy_protocol = %q, want %q", got, ProxyProtocolV2)
		}
		if got := c.Forwards[0].Listen; got != "unix:"+sock {
			t.Errorf("forward listen = %q, want the cleaned %q", got, "unix:"+sock)
		}
	})
}
