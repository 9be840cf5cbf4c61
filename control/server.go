package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// Server limits and deadlines.
const (
	// MaxRequestBytes bounds a request body.
	MaxRequestBytes = 64 << 10
	// readHeaderTimeout and readTimeout bound how long a client may take to
	// send its request headers and its whole request (body included).
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	idleTimeout       = 60 * time.Second
	// handlerTimeout bounds one Backend call.
	handlerTimeout = 60 * time.Second
	// shutdownTimeout is how long Serve lets requests in flight finish after
	// its context is cancelled before it closes their connections.
	shutdownTimeout = 2 * time.Second
)

var errPeerCredUnsupported = errors.New("control: peer credentials are not supported on this platform")

// refusedKey marks, in a connection's context, a connection whose peer
// credentials were refused.
type refusedKey struct{}

// Server serves the control API for a Backend. Create it with NewServer; it
// is used by one Serve call at a time.
type Server struct {
	backend Backend
	log     *slog.Logger
	// allowUID reports whether a peer uid may use the API: by default the
	// daemon's own uid and root.
	allowUID func(uid uint32) bool
	// handlers counts requests in flight so that Serve waits for them.
	handlers sync.WaitGroup
}

// NewServer returns a Server for b. A nil log discards log records.
func NewServer(b Backend, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	self := uint32(os.Getuid())
	return &Server{
		backend:  b,
		log:      log,
		allowUID: func(uid uint32) bool { return uid == self || uid == 0 },
	}
}

// Serve serves the control API on ln until ctx is cancelled, then shuts down:
// it stops accepting, gives requests in flight shutdownTimeout to finish,
// closes what remains and waits for every handler to return. It closes ln.
// It returns nil after a cancel, or the error that stopped it.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	hs := &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    MaxRequestBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return base },
		ConnContext:       s.connContext,
	}

	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()

	var err error
	select {
	case err = <-served:
		// Serve failed on its own; close the connections it left.
		hs.Close()
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		if serr := hs.Shutdown(sctx); serr != nil {
			s.log.Debug("control: shutdown deadline passed, closing connections", "err", serr)
			hs.Close()
		}
		cancel()
		err = <-served
	}
	cancelBase()
	s.handlers.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("control: serving: %w", err)
}

// connContext checks the peer credentials of a new connection and closes it
// unless its uid is allowed.
func (s *Server) connContext(ctx context.Context, c net.Conn) context.Context {
	uid, pid, err := peerCred(c)
	switch {
	case errors.Is(err, errPeerCredUnsupported):
		return ctx // rely on the socket's mode
	case err != nil:
		s.log.Warn("control: refusing connection without peer credentials", "err", err)
	case !s.allowUID(uid):
		s.log.Warn("control: refusing connection from another user", "uid", uid, "pid", pid)
	default:
		return ctx
	}
	c.Close()
	return context.WithValue(ctx, refusedKey{}, true)
}
