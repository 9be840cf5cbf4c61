package proxy

import (
	"errors"
	"net"
	"strconv"
	"syscall"
	"time"
)

// A forward's accept loop ends only when its listener is closed. A failed
// accept (EMFILE when the process is out of descriptors, ENFILE, ENOBUFS,
// ENOMEM, ECONNABORTED, or anything else) is counted and retried after a
// backoff, as net/http's Server.Serve does: 5 ms doubling to 1 s. The
// ceiling bounds how long a forward stays deaf once descriptors are free.
//
// An episode runs from the first failed accept to the next accept that
// succeeds. It logs one warning when it starts and one info line when it
// ends; when accepts keep failing and succeeding in turn (a process at its
// descriptor limit while connections come and go), at most one warning per
// warnEvery is logged and the counters tell the rest.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
	warnEvery        = 10 * time.Second
)

// acceptState is the accept loop's own bookkeeping; only serve touches it.
type acceptState struct {
	delay      time.Duration // the current backoff; 0 while accepts succeed
	failed     uint64        // failed accepts in the current episode
	warned     bool          // the current episode logged its warning
	lastWarn   time.Time     // the last failing-accept warning
	lastRefuse time.Time     // the last at-the-cap warning
}

func (f *Forwarder) serve(l *listener) {
	defer f.wg.Done()
	fw := l.fwd.Load()
	f.log.Info("forward listening", "listen", l.ln.Addr().String(), "peer", fw.Peer, "service", fw.Service)
	var st acceptState
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			f.acceptFailed(l, &st, err)
			select {
			case <-time.After(st.delay):
			case <-l.closed:
				return
			}
			continue
		}
		fw := l.fwd.Load()
		if st.failed > 0 {
			if st.warned {
				f.log.Info("forward: accepting again after "+strconv.FormatUint(st.failed, 10)+" failed accepts",
					"listen", fw.Listen, "peer", fw.Peer, "service", fw.Service)
			}
			st.failed, st.warned, st.delay = 0, false, 0
		}
		if limit := fw.maxConnections(); l.active.Load() >= int64(limit) {
			l.refused.Add(1)
			NetConn(c).Abort()
			if now := time.Now(); now.Sub(st.lastRefuse) >= warnEvery {
				st.lastRefuse = now
				f.log.Warn("forward: at its connection cap; new connections are reset",
					"listen", fw.Listen, "peer", fw.Peer, "service", fw.Service,
					"max_connections", limit, "refused", l.refused.Load(),
					"fix", "raise max_connections in this [[forwards]] entry, then p2pctl reload")
			}
			continue
		}
		l.active.Add(1)
		l.total.Add(1)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer l.active.Add(-1)
			f.handle(*l.fwd.Load(), c)
		}()
	}
}

// acceptFailed counts a failed accept, logs the episode's warning when one
// is due and sets the next backoff.
func (f *Forwarder) acceptFailed(l *listener, st *acceptState, err error) {
	l.acceptErrors.Add(1)
	if !st.fail() {
		return
	}
	fw := l.fwd.Load()
	f.log.Warn("forward: accept failing; retrying until it works",
		"listen", fw.Listen, "peer", fw.Peer, "service", fw.Service, "err", err,
		"rlimit_nofile", nofileText(), "accept_errors", l.acceptErrors.Load(), "fix", acceptFix(err))
}

// fail records a failed accept and sets the next backoff; it reports
// whether the episode's one warning is due now.
func (st *acceptState) fail() bool {
	st.failed++
	st.delay = min(max(2*st.delay, acceptBackoffMin), acceptBackoffMax)
	if st.failed > 1 {
		return false
	}
	now := time.Now()
	if !st.lastWarn.IsZero() && now.Sub(st.lastWarn) < warnEvery {
		return false
	}
	st.lastWarn, st.warned = now, true
	return true
}

// nofileText is the process's RLIMIT_NOFILE for a log line.
func nofileText() string {
	if n, ok := nofileLimit(); ok {
		return strconv.FormatUint(n, 10)
	}
	return "unknown"
}

// acceptFix names what an operator can do about a failed accept.
func acceptFix(err error) string {
	switch {
	case errors.Is(err, syscall.EMFILE):
		return "the process is out of file descriptors: raise LimitNOFILE= in the service unit or ulimit -n, or lower max_connections"
	case errors.Is(err, syscall.ENFILE):
		return "the system's file table is full: raise fs.file-max (sysctl) or close files elsewhere"
	case errors.Is(err, syscall.ENOBUFS), errors.Is(err, syscall.ENOMEM):
		return "the kernel is short of memory for sockets: free memory or lower max_connections"
	}
	return "none known; p2pd retries at least once a second"
}
