package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"
)

// pairKeys are the two nodes of a topology: A (the forward, on the client
// side) and B (the services, beside the backend). Their keys are made once;
// every pair started from them is a fresh pair of processes.
type pairKeys struct{ a, b *pnode }

func (r *runner) makePairKeys(t *topo, tag string) (pairKeys, error) {
	a, err := r.newNode(filepath.Join(r.work, t.name+"-"+tag+"a"), "a", t.clientIP)
	if err != nil {
		return pairKeys{}, err
	}
	b, err := r.newNode(filepath.Join(r.work, t.name+"-"+tag+"b"), "b", t.serverIP)
	if err != nil {
		return pairKeys{}, err
	}
	return pairKeys{a, b}, nil
}

// pairConfig says how a pair is wired.
type pairConfig struct {
	bAddr string // where A dials B; B's own listen address unless a relay sits between
	wait  bool   // wait until the forward carries an echo
	// transport is A's [[peers]] transport for B ("" for the default);
	// "tcp" makes the system sysP2PDTCP.
	transport string
}

// startPair writes both configs, starts B then A, and returns the pair as a
// system whose connections go through A's forwards.
func (r *runner) startPair(t *topo, be *backend, k pairKeys, pc pairConfig) (*system, error) {
	var fwd [2]string
	var err error
	for i := range fwd {
		if fwd[i], err = hostPort("127.0.0.1", "tcp"); err != nil {
			return nil, err
		}
	}
	level := r.o.logLevel
	if err := k.b.writeConfig(level, peerTOML("a", k.a.id, "")+
		serviceTOML("echo", be.echo, "a")+serviceTOML("bulk", be.bulk, "a")); err != nil {
		return nil, err
	}
	if err := r.startNode(k.b, t.prefix(t.serverNS)); err != nil {
		return nil, err
	}
	if pc.bAddr == "" {
		pc.bAddr = k.b.listen // known only now: B may have moved to another port
	}
	peer := peerTOML("b", k.b.id, pc.bAddr)
	name := sysP2PD
	if pc.transport != "" {
		peer = strings.TrimSuffix(peer, "\n") + fmt.Sprintf("transport = %q\n\n", pc.transport)
		name = sysP2PDTCP
	}
	socks, err := hostPort("127.0.0.1", "tcp")
	if err != nil {
		return nil, err
	}
	proxyTOML := fmt.Sprintf("[proxy]\nsocks5 = %q\nmax_connections = 1048576\n\n", socks)
	if err := k.a.writeConfig(level, proxyTOML+peer+
		forwardTOML(fwd[0], "b", "echo")+forwardTOML(fwd[1], "b", "bulk")); err != nil {
		k.b.proc.stop()
		return nil, err
	}
	if err := r.startNode(k.a, t.prefix(t.clientNS)); err != nil {
		k.b.proc.stop()
		return nil, err
	}
	s := &system{name: name, dial: tcpDialer(t, fwd), connRate: true, client: k.a.proc, server: k.b.proc}
	s.stop = func() { stopProcs([]*proc{k.a.proc, k.b.proc}) }
	if name == sysP2PD {
		s.socks = &system{name: sysSOCKS, dial: socksDialer(t, socks, [2]string{"echo.b.p2p", "bulk.b.p2p"}),
			connRate: true, connOnly: true, client: k.a.proc, server: k.b.proc, stop: func() {}}
	}
	if pc.wait {
		if err := waitEcho(r.ctx, s, 20*time.Second); err != nil {
			s.stop()
			return nil, fmt.Errorf("%w; a: %s; b: %s", err, tail(k.a.proc.logPath, 3), tail(k.b.proc.logPath, 3))
		}
	}
	return s, nil
}

// waitEcho retries one echoed byte through the system until it works.
func waitEcho(ctx context.Context, s *system, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var err error
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if err = echoOnce(ctx, s, 5*time.Second); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("bench: no echo through %s in %s: %v", s.name, limit, err)
}

// echoOnce opens a connection, echoes one byte and closes.
func echoOnce(ctx context.Context, s *system, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	c, err := s.dial(ctx, targetEcho)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	return echoByte(c)
}

// echoByte writes one byte and reads it back.
func echoByte(c io.ReadWriter) error {
	if _, err := c.Write([]byte{'x'}); err != nil {
		return err
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return err
	}
	if b[0] != 'x' {
		return fmt.Errorf("bench: echo returned %q, want %q", b[0], 'x')
	}
	return nil
}

// socksDialer connects through the SOCKS5 proxy at addr to names[target],
// as curl --socks5-hostname does: the greeting, then the CONNECT request,
// each waiting for its answer.
func socksDialer(t *topo, addr string, names [2]string) func(context.Context, int) (io.ReadWriteCloser, error) {
	return func(ctx context.Context, target int) (io.ReadWriteCloser, error) {
		c, err := t.dialTCP(ctx, addr)
		if err != nil {
			return nil, err
		}
		stop := context.AfterFunc(ctx, func() { c.Close() })
		defer stop()
		name := names[target]
		var buf [10]byte
		if _, err = c.Write([]byte{5, 1, 0}); err == nil {
			if _, err = io.ReadFull(c, buf[:2]); err == nil && buf[1] != 0 {
				err = fmt.Errorf("bench: socks5 method %#x", buf[1])
			}
		}
		if err == nil {
			req := append([]byte{5, 1, 0, 3, byte(len(name))}, name...)
			if _, err = c.Write(append(req, 0, 80)); err == nil {
				if _, err = io.ReadFull(c, buf[:]); err == nil && buf[1] != 0 {
					err = fmt.Errorf("bench: socks5 reply %#x for %s", buf[1], name)
				}
			}
		}
		if err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
}
