package control_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/p2pd/p2pd/control"
	"github.com/p2pd/p2pd/control/controltest"
)

func TestTrustEndpoints(t *testing.T) {
	at := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	b := &controltest.Trust{Backend: fixture(),
		InviteData: control.Invite{Line: "p2pd1:xyz", ID: idDB, Name: "alpha"},
		TrustFile:  "/s/trust.toml",
		Removed:    control.TrustChange{Name: "web1", ID: idWeb, Origin: "config", Allowed: []string{"postgres"}, Closed: 1},
		PendingList: []control.Pending{{ID: idWeb, AltID: idDB, Name: "x", Remote: "192.0.2.1:4242", Carrier: "quic", Count: 3,
			FirstSeen: at, LastSeen: at}},
	}
	c := control.NewClient(controltest.Serve(t, b))
	ctx := context.Background()

	inv, err := c.Invite(ctx)
	if err != nil || inv.Line != "p2pd1:xyz" || inv.Addresses == nil {
		t.Errorf("Invite: %+v, %v (addresses must be [] not null)", inv, err)
	}
	ch, err := c.TrustAdd(ctx, control.TrustAddRequest{Name: "new", Peer: idWeb, Allow: []string{"postgres"}})
	if err != nil || ch.Name != "new" || !reflect.DeepEqual(ch.Allowed, []string{"postgres"}) {
		t.Errorf("TrustAdd: %+v, %v", ch, err)
	}
	var re *control.RejectedError
	if _, err := c.TrustAdd(ctx, control.TrustAddRequest{Name: "db", Peer: idDB}); !errors.As(err, &re) || !strings.Contains(err.Error(), "already trusted") {
		t.Errorf("TrustAdd of a taken name: %v, want a RejectedError with the daemon's message", err)
	}
	for _, bad := range []control.TrustAddRequest{{Peer: idDB}, {Name: "x"}, {Name: "x\n", Peer: idDB}, {Name: "x", Peer: idDB, Allow: []string{""}}} {
		var se *control.ServerError
		if _, err := c.TrustAdd(ctx, bad); !errors.As(err, &se) || se.StatusCode != http.StatusBadRequest {
			t.Errorf("TrustAdd(%+v): %v, want 400", bad, err)
		}
	}
	if added := b.Added(); len(added) != 1 {
		t.Errorf("the backend saw %d adds, want 1: bad requests stop at the server", len(added))
	}
	if ch, err := c.TrustRemove(ctx, "web1"); err != nil || ch.Closed != 1 || ch.Origin != "config" {
		t.Errorf("TrustRemove: %+v, %v", ch, err)
	}
	if _, err := c.TrustRemove(ctx, "nobody"); !errors.Is(err, control.ErrNotFound) || !errors.As(err, &re) {
		t.Errorf("TrustRemove of an unknown name: %v, want a RejectedError matching ErrNotFound", err)
	}
	ps, err := c.Pending(ctx)
	if err != nil || len(ps) != 1 || ps[0].AltID != idDB || ps[0].Count != 3 {
		t.Errorf("Pending: %+v, %v", ps, err)
	}

	// A backend without the trust endpoints says so.
	plain := control.NewClient(controltest.Serve(t, fixture()))
	if _, err := plain.Pending(ctx); err == nil || !strings.Contains(err.Error(), "upgrade p2pd") {
		t.Errorf("Pending on a backend without them: %v", err)
	}
}
