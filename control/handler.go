package control

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
)

// route is one API endpoint: the method it accepts and the function that
// produces its response body.
type route struct {
	method string
	serve  func(ctx context.Context, r *http.Request) (any, error)
}

func (s *Server) routes() map[string]route {
	return map[string]route{
		"/v1/status":       {http.MethodGet, s.getStatus},
		"/v1/peers":        {http.MethodGet, s.getPeers},
		"/v1/sessions":     {http.MethodGet, s.getSessions},
		"/v1/services":     {http.MethodGet, s.getServices},
		"/v1/forwards":     {http.MethodGet, s.getForwards},
		"/v1/proxies":      {http.MethodGet, s.getProxies},
		"/v1/ping":         {http.MethodPost, s.postPing},
		"/v1/reload":       {http.MethodPost, s.postReload},      // reload.go
		"/v1/invite":       {http.MethodGet, s.getInvite},        // trust.go
		"/v1/pending":      {http.MethodGet, s.getPending},       // trust.go
		"/v1/trust/add":    {http.MethodPost, s.postTrustAdd},    // trust.go
		"/v1/trust/remove": {http.MethodPost, s.postTrustRemove}, // trust.go
		"/v1/whois":        {http.MethodGet, s.getWhois},         // whois.go
		"/v1/flows":        {http.MethodGet, s.getFlows},         // flows.go
	}
}

// noRoute begins the 404 answer to a path the daemon does not serve, which
// the Client tells apart from a 404 for a name the daemon does not know.
const noRoute = "control: no route "

// handler dispatches requests to routes and writes every answer as JSON.
func (s *Server) handler() http.Handler {
	routes := s.routes()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.handlers.Add(1)
		defer s.handlers.Done()
		if r.Context().Value(refusedKey{}) != nil {
			writeJSON(w, http.StatusForbidden, errorResponse{"control: permission denied"})
			return
		}
		if strings.HasPrefix(r.URL.Path, DebugPrefix) {
			serveDebug(w, r)
			return
		}
		start := time.Now()
		code := s.dispatch(w, r, routes)
		s.log.Debug("control: request", "method", r.Method, "path", r.URL.Path,
			"status", code, "duration", time.Since(start))
	})
}

func (s *Server) dispatch(w http.ResponseWriter, r *http.Request, routes map[string]route) int {
	rt, ok := routes[r.URL.Path]
	if !ok {
		return writeJSON(w, http.StatusNotFound, errorResponse{
			noRoute + r.URL.Path + " (do p2pctl and p2pd versions differ?)"})
	}
	if r.Method != rt.method {
		w.Header().Set("Allow", rt.method)
		return writeJSON(w, http.StatusMethodNotAllowed, errorResponse{
			"control: " + r.URL.Path + " takes " + rt.method + ", not " + r.Method})
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxRequestBytes)
	ctx, cancel := context.WithTimeout(r.Context(), handlerTimeout)
	defer cancel()
	body, err := rt.serve(ctx, r)
	if err != nil {
		return writeJSON(w, statusOf(err), errorResponse{err.Error()})
	}
	return writeJSON(w, http.StatusOK, body)
}

// statusOf maps an error to its HTTP status.
func statusOf(err error) int {
	var re *requestError
	switch {
	case errors.As(err, &re), errors.As(err, new(*RejectedError)):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	default:
		return http.StatusInternalServerError
	}
}

// writeJSON writes v as the JSON response with the given status and returns
// the status.
func writeJSON(w http.ResponseWriter, code int, v any) int {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	// An encoding or write error means the client went away; nothing to do.
	_ = json.NewEncoder(w).Encode(v)
	return code
}

func (s *Server) getStatus(ctx context.Context, _ *http.Request) (any, error) {
	st, err := s.backend.Status(ctx)
	st.Listen = nonNil(st.Listen)
	return st, err
}

func (s *Server) getPeers(ctx context.Context, _ *http.Request) (any, error) {
	ps, err := s.backend.Peers(ctx)
	out := make([]Peer, len(ps)) // a copy: the backend's slice is not ours to change
	for i, p := range ps {
		p.Addresses = nonNil(p.Addresses)
		out[i] = p
	}
	return peersResponse{out}, err
}

func (s *Server) getSessions(ctx context.Context, _ *http.Request) (any, error) {
	ss, err := s.backend.Sessions(ctx)
	return sessionsResponse{nonNil(ss)}, err
}

func (s *Server) getServices(ctx context.Context, _ *http.Request) (any, error) {
	ss, err := s.backend.Services(ctx)
	out := make([]Service, len(ss))
	for i, sv := range ss {
		sv.Allow = nonNil(sv.Allow)
		out[i] = sv
	}
	return servicesResponse{out}, err
}

func (s *Server) getForwards(ctx context.Context, _ *http.Request) (any, error) {
	fs, err := s.backend.Forwards(ctx)
	return forwardsResponse{nonNil(fs)}, err
}

func (s *Server) getProxies(ctx context.Context, _ *http.Request) (any, error) {
	ps, err := s.backend.Proxies(ctx)
	return proxiesResponse{nonNil(ps)}, err
}

func (s *Server) postPing(ctx context.Context, r *http.Request) (any, error) {
	req, err := decodePingRequest(r.Body)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, req.timeout())
	defer cancel()
	return s.backend.Ping(ctx, req.Peer)
}
