package control

import (
	"context"
	"net/http"
)

// ReloadResult is the answer to POST /v1/reload: what the reload did not
// apply. A daemon that applied everything, or one of a release before these
// fields, answers {}.
type ReloadResult struct {
	// RestartNeeded names the tables whose changes the reload left for a
	// restart ("node", "discovery", "metrics", "log"): the daemon runs on
	// their old values until then.
	RestartNeeded []string `json:"restart_needed,omitempty"`
	// Warnings are the new configuration's warnings, as the daemon logged
	// them (a P2PD_ variable that sets nothing, a forward reachable from the
	// network...).
	Warnings []string `json:"warnings,omitempty"`
}

// ReloadReporter is the part of a Backend that tells what a reload did not
// apply. The Server calls ReloadReport instead of Reload when the Backend
// implements it.
type ReloadReporter interface {
	// ReloadReport reloads as Backend.Reload does and returns what the
	// reload left for a restart, and the new configuration's warnings.
	ReloadReport(ctx context.Context) (ReloadResult, error)
}

var _ ReloadReporter = (*Client)(nil)

// ReloadReport asks the daemon to reload its configuration and returns what
// the reload did not apply (nothing from an older daemon).
func (c *Client) ReloadReport(ctx context.Context) (ReloadResult, error) {
	var r ReloadResult
	err := c.do(ctx, http.MethodPost, "/v1/reload", struct{}{}, &r)
	return r, err
}

func (s *Server) postReload(ctx context.Context, r *http.Request) (any, error) {
	if err := decodeEmptyRequest(r.Body); err != nil {
		return nil, err
	}
	if rr, ok := s.backend.(ReloadReporter); ok {
		return rr.ReloadReport(ctx)
	}
	if err := s.backend.Reload(ctx); err != nil {
		return nil, err
	}
	return ReloadResult{}, nil
}
