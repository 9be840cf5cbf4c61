package control_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/p2pd/p2pd/control"
	"github.com/p2pd/p2pd/control/controltest"
)

func TestWhois(t *testing.T) {
	since := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	b := &controltest.Backend{ConnectionList: []control.Connection{
		{Addr: "127.0.0.1:53422", Target: "127.0.0.1:5432", Service: "postgres", Peer: "web1", PeerID: idWeb, Since: since, AgeSeconds: 3},
		{Addr: "[::1]:4000", Target: "[::1]:80", Service: "www", Peer: "db", PeerID: idDB, Since: since},
	}}
	socket := controltest.Serve(t, b)
	c := control.NewClient(socket)
	ctx := context.Background()

	for i, addr := range []string{"127.0.0.1:53422", "[::1]:4000"} {
		got, err := c.Whois(ctx, netip.MustParseAddrPort(addr))
		if err != nil {
			t.Fatalf("Whois(%s): %v", addr, err)
		}
		if len(got) != 1 || !got[0].Since.Equal(since) {
			t.Fatalf("Whois(%s) = %+v", addr, got)
		}
		got[0].Since = since
		check(t, "Whois "+addr, got[0], b.ConnectionList[i])
	}

	_, err := c.Whois(ctx, netip.MustParseAddrPort("127.0.0.1:9"))
	if !errors.Is(err, control.ErrNotFound) || err.Error() != "control: no overlay connection from 127.0.0.1:9: control: not found" {
		t.Errorf("Whois of an unknown address: %v; want ErrNotFound naming the address", err)
	}

	for _, tt := range []struct {
		path string
		code int
		msg  string
	}{
		{"/v1/whois", 400, `control: bad request: give exactly one addr, the backend's client address like "127.0.0.1:53422"`},
		{"/v1/whois?addr=localhost:5", 400, `control: bad request: addr "localhost:5" is not an IP address and port like "127.0.0.1:53422" or "[::1]:53422"`},
		{"/v1/whois?addr=127.0.0.1", 400, `control: bad request: addr "127.0.0.1" is not an IP address and port like "127.0.0.1:53422" or "[::1]:53422"`},
		{"/v1/whois?addr=127.0.0.1:1&addr=127.0.0.1:2", 400, `control: bad request: give exactly one addr, the backend's client address like "127.0.0.1:53422"`},
		{"/v1/whois?addr=127.0.0.1:1&peer=x", 400, `control: bad request: unknown parameter "peer"; /v1/whois takes addr only`},
		{"/v1/whois?addr=%5B%3A%3A1%5D%3A4001", 404, "control: no overlay connection from [::1]:4001: control: not found"},
	} {
		code, msg := rawDo(t, socket, "GET", tt.path, "")
		if code != tt.code || msg != tt.msg {
			t.Errorf("GET %s: %d %q; want %d %q", tt.path, code, msg, tt.code, tt.msg)
		}
	}
	if code, _ := rawDo(t, socket, "POST", "/v1/whois?addr=127.0.0.1:53422", "{}"); code != 405 {
		t.Errorf("POST /v1/whois: %d, want 405", code)
	}
}
