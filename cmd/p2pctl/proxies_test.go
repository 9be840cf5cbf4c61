package main

import (
	"encoding/json"
	"testing"

	"github.com/p2pd/p2pd/control"
	"github.com/p2pd/p2pd/control/controltest"
)

func TestProxies(t *testing.T) {
	b := fixture()
	b.ProxyList = []control.Proxy{
		{Kind: "socks5", Listen: "127.0.0.1:1080", Auth: true, MaxConnections: 8192, Active: 3, Total: 40,
			Refused: 1, Evicted: 6, AcceptErrors: 2, Errors: map[string]uint64{"not_p2p": 5, "access_denied": 2}},
		{Kind: "http", Listen: "127.0.0.1:8118", MaxConnections: 100, Total: 7, Errors: map[string]uint64{}},
	}
	sock := controltest.Serve(t, b)
	const ws = ` +`
	rowsMatch(t, mustRun(t, "--socket", sock, "proxies"),
		`^KIND`+ws+`LISTEN`+ws+`AUTH`+ws+`ACTIVE`+ws+`MAX`+ws+`TOTAL`+ws+`REFUSED`+ws+`EVICTED`+ws+`ACCEPT-ERRORS`+ws+`ERRORS$`,
		`^socks5`+ws+`127\.0\.0\.1:1080`+ws+`on`+ws+`3`+ws+`8192`+ws+`40`+ws+`1`+ws+`6`+ws+`2`+ws+`access_denied=2 not_p2p=5$`,
		`^http`+ws+`127\.0\.0\.1:8118`+ws+`off`+ws+`0`+ws+`100`+ws+`7`+ws+`0`+ws+`0`+ws+`0`+ws+`-$`)

	var doc map[string][]control.Proxy
	if err := json.Unmarshal([]byte(mustRun(t, "--socket", sock, "--json", "proxies")), &doc); err != nil ||
		len(doc["proxies"]) != 2 || doc["proxies"][0].Errors["not_p2p"] != 5 || !doc["proxies"][0].Auth {
		t.Fatalf("proxies --json: %+v, %v", doc, err)
	}

	b2 := fixture()
	if out := mustRun(t, "--socket", controltest.Serve(t, b2), "--json", "proxies"); out != "{\n  \"proxies\": []\n}\n" {
		t.Fatalf("no proxies, --json: %q", out)
	}
}
