package control_test

import (
	"context"
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/p2pd/p2pd/control"
	"github.com/p2pd/p2pd/control/controltest"
)

const (
	idDB  = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
	idWeb = "12D3KooWHHzSeKaY8xuZVzkLbKFfvNgPPeKhFBGrMbNzbm5akpqu"
)

func fixture() *controltest.Backend {
	hs := time.Date(2026, 7, 1, 12, 0, 5, 0, time.UTC)
	return &controltest.Backend{
		Node: control.Status{
			ID: "12D3KooWSelf", Name: "alpha", Version: "p2pd/1 test",
			Listen:    []string{"0.0.0.0:4242", "[::]:4242"},
			StartedAt: time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC), UptimeSeconds: 3600.5,
			Peers: 2, Connected: 1, Services: 1, Forwards: 1,
		},
		PeerList: []control.Peer{
			{Name: "db", ID: idDB, State: control.PeerConnected, Addresses: []string{"203.0.113.7:4242"},
				Endpoint: "203.0.113.7:4242", LastHandshake: &hs},
			{Name: "web1", ID: idWeb, State: control.PeerDisconnected, LastError: "no address known"},
		},
		SessionList: []control.Session{{
			Peer: "db", PeerID: idDB, Remote: "203.0.113.7:4242", Initiator: true, State: "established",
			EstablishedAt: hs, AgeSeconds: 95, RTTMillis: 1.25, Streams: 3, BytesSent: 1 << 20, BytesReceived: 42,
		}},
		ServiceList: []control.Service{{Name: "postgres", Target: "127.0.0.1:5432", Protocol: "tcp",
			Allow: []string{"web1"}, Active: 1, Total: 7}},
		ForwardList: []control.Forward{{Listen: "127.0.0.1:15432", Peer: "db", Service: "postgres",
			MaxConnections: 1024, Active: 2, Total: 9, Refused: 4, AcceptErrors: 17}},
		ProxyList: []control.Proxy{{Kind: "socks5", Listen: "127.0.0.1:1080", Auth: true, MaxConnections: 8192,
			Active: 3, Total: 40, Refused: 1, Evicted: 6, AcceptErrors: 2, Errors: map[string]uint64{"access_denied": 2, "not_p2p": 5}}},
		PingRTTMillis: 1.234,
	}
}

func TestRoundTrip(t *testing.T) {
	b := fixture()
	c := control.NewClient(controltest.Serve(t, b))
	ctx := context.Background()

	st, err := c.Status(ctx)
	if err != nil || !st.StartedAt.Equal(b.Node.StartedAt) {
		t.Fatalf("Status: %+v, %v", st, err)
	}
	st.StartedAt = b.Node.StartedAt // drop the monotonic/location difference
	check(t, "Status", st, b.Node)

	peers, err := c.Peers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(peers) != 2 || peers[0].LastHandshake == nil || !peers[0].LastHandshake.Equal(*b.PeerList[0].LastHandshake) {
		t.Fatalf("Peers: %+v", peers)
	}
	peers[0].LastHandshake = b.PeerList[0].LastHandshake
	want := append([]control.Peer(nil), b.PeerList...)
	want[1].Addresses = []string{} // nil lists travel as []
	check(t, "Peers", peers, want)

	sessions, err := c.Sessions(ctx)
	if err != nil || len(sessions) != 1 || !sessions[0].EstablishedAt.Equal(b.SessionList[0].EstablishedAt) {
		t.Fatalf("Sessions: %+v, %v", sessions, err)
	}
	sessions[0].EstablishedAt = b.SessionList[0].EstablishedAt
	check(t, "Sessions", sessions, b.SessionList)

	services, err := c.Services(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "Services", services, b.ServiceList)

	forwards, err := c.Forwards(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "Forwards", forwards, b.ForwardList)

	proxies, err := c.Proxies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "Proxies", proxies, b.ProxyList)

	for _, name := range []string{"db", idDB} {
		pr, err := c.Ping(ctx, name)
		if err != nil {
			t.Fatalf("Ping(%s): %v", name, err)
		}
		check(t, "Ping", pr, control.PingResult{Peer: "db", RTTMillis: 1.234, Remote: "203.0.113.7:4242"})
	}
	if got := b.Pinged(); !reflect.DeepEqual(got, []string{"db", idDB}) {
		t.Fatalf("backend saw pings for %q", got)
	}

	if err := c.Reload(ctx); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if n := b.Reloads(); n != 1 {
		t.Fatalf("backend saw %d reloads, want 1", n)
	}
}

func TestEmptyListsAreEmptyNotNull(t *testing.T) {
	c := control.NewClient(controltest.Serve(t, &controltest.Backend{}))
	peers, err := c.Peers(context.Background())
	if err != nil || peers == nil || len(peers) != 0 {
		t.Fatalf("Peers on an empty backend = %#v, %v; want an empty non-nil list", peers, err)
	}
}

func TestPingUnknownPeerIsNotFound(t *testing.T) {
	c := control.NewClient(controltest.Serve(t, fixture()))
	_, err := c.Ping(context.Background(), "nobody")
	if !errors.Is(err, control.ErrNotFound) {
		t.Fatalf("Ping(nobody): err = %v, want ErrNotFound", err)
	}
	want := `controltest: unknown peer "nobody": control: not found`
	if err.Error() != want {
		t.Fatalf("Ping(nobody): message %q, want the server's %q", err, want)
	}
	var se *control.ServerError
	if !errors.As(err, &se) || se.StatusCode != 404 {
		t.Fatalf("Ping(nobody): err = %#v, want a 404 ServerError", err)
	}
}

func TestServerErrorMessage(t *testing.T) {
	b := fixture()
	b.ReloadErr = errors.New(`config: services[0].target "127.0.0.1:99999": port out of range`)
	c := control.NewClient(controltest.Serve(t, b))
	err := c.Reload(context.Background())
	var se *control.ServerError
	if !errors.As(err, &se) || se.StatusCode != 500 || err.Error() != b.ReloadErr.Error() {
		t.Fatalf("Reload: err = %#v, want a 500 with the backend's message", err)
	}
	if errors.Is(err, control.ErrNotFound) {
		t.Fatal("a 500 matches ErrNotFound")
	}
	// A peer that is not connected is a plain failure, not "not found".
	_, err = c.Ping(context.Background(), "web1")
	if !errors.As(err, &se) || se.StatusCode != 500 || !strings.Contains(err.Error(), "disconnected") {
		t.Fatalf("Ping(web1): err = %v, want a 500 naming the state", err)
	}
}

func TestClientNotRunning(t *testing.T) {
	path := controltest.SocketPath(t) // nothing there
	c := control.NewClient(path)
	_, err := c.Status(context.Background())
	if !errors.Is(err, control.ErrNotRunning) {
		t.Fatalf("Status with no daemon: err = %v, want ErrNotRunning", err)
	}
	want := "p2pctl: no p2pd is running at " + path + " (is the daemon started? see --socket)"
	if err.Error() != want {
		t.Fatalf("message = %q, want %q", err, want)
	}

	// A stale socket file: connection refused, same answer.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	if _, err := c.Peers(context.Background()); !errors.Is(err, control.ErrNotRunning) || err.Error() != want {
		t.Fatalf("Peers on a stale socket: err = %v, want %q", err, want)
	}
}

func check(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}
