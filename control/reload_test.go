package control_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/p2pd/p2pd/control"
	"github.com/p2pd/p2pd/control/controltest"
)

// reloadOnly hides the fixture's ReloadReport: a Backend of a release that
// reports nothing about a reload.
type reloadOnly struct{ control.Backend }

// TestReloadReport: the client gets what the backend's ReloadReport says;
// from a backend without one, an empty result, as from an older daemon.
func TestReloadReport(t *testing.T) {
	ctx := context.Background()
	b := fixture()
	b.ReloadResult = control.ReloadResult{RestartNeeded: []string{"metrics"}, Warnings: []string{"config: w"}}
	res, err := control.NewClient(controltest.Serve(t, b)).ReloadReport(ctx)
	if err != nil || !reflect.DeepEqual(res, b.ReloadResult) || b.Reloads() != 1 {
		t.Errorf("ReloadReport: %+v, %v after %d reloads; want %+v after 1", res, err, b.Reloads(), b.ReloadResult)
	}

	old := fixture()
	old.ReloadResult = b.ReloadResult // not reachable through reloadOnly
	res, err = control.NewClient(controltest.Serve(t, reloadOnly{old})).ReloadReport(ctx)
	if err != nil || !reflect.DeepEqual(res, control.ReloadResult{}) || old.Reloads() != 1 {
		t.Errorf("ReloadReport of a backend without it: %+v, %v after %d reloads; want nothing, after 1", res, err, old.Reloads())
	}
}
