package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/quic-go/quic-go"
)

// Stream prefix of the quic-go baselines: one byte naming the target, after
// which the stream carries the application's bytes. The client does not wait
// for an answer (p2pd waits for a status; that round trip is part of what the
// comparison shows).
const (
	targetEcho = 0
	targetBulk = 1
)

// qtunServer accepts QUIC connections and, on each stream, either connects
// to a TCP target and splices (tunnel mode) or serves echo and bulk itself
// (in-process mode: the raw quic-go baseline).
type qtunServer struct {
	ln      *quic.Listener
	targets []string // tunnel mode; nil in in-process mode
	wg      sync.WaitGroup
	ctx     context.Context
	cancel  context.CancelFunc
}

// startQtunServer serves ln until close.
func startQtunServer(ln *quic.Listener, targets []string) *qtunServer {
	s := &qtunServer{ln: ln, targets: targets}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.acceptConns()
	return s
}

// close stops accepting, ends every connection and waits.
func (s *qtunServer) close() {
	s.cancel()
	s.ln.Close()
	s.wg.Wait()
}

// runQtunServer is `bench qtun-server -listen UDPADDR (-targets A,B | -inproc)`.
func runQtunServer(args []string) error {
	fs := flag.NewFlagSet("qtun-server", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "UDP address")
	targets := fs.String("targets", "", "TCP targets by index, comma-separated (echo,bulk)")
	inproc := fs.Bool("inproc", false, "serve echo and bulk in this process (raw quic-go baseline)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !*inproc && *targets == "" {
		return fmt.Errorf("bench qtun-server: give -targets or -inproc")
	}
	tlsConf, err := benchServerTLS()
	if err != nil {
		return err
	}
	ln, err := quic.ListenAddr(*listen, tlsConf, benchQUICConfig())
	if err != nil {
		return fmt.Errorf("bench qtun-server: listen on %s: %w", *listen, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var tl []string
	if !*inproc {
		tl = strings.Split(*targets, ",")
	}
	s := startQtunServer(ln, tl)
	fmt.Fprintln(os.Stdout, "ready", ln.Addr())
	<-ctx.Done()
	s.close()
	return nil
}

func (s *qtunServer) acceptConns() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept(s.ctx)
		if err != nil {
			return
		}
		s.wg.Add(1)
		go s.acceptStreams(c)
	}
}

func (s *qtunServer) acceptStreams(c *quic.Conn) {
	defer s.wg.Done()
	defer c.CloseWithError(0, "")
	for {
		st, err := c.AcceptStream(s.ctx)
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(st)
		}()
	}
}

func (s *qtunServer) handle(st *quic.Stream) {
	var idx [1]byte
	if _, err := io.ReadFull(st, idx[:]); err != nil {
		st.CancelRead(1)
		st.CancelWrite(1)
		return
	}
	if s.targets == nil {
		var err error
		switch idx[0] {
		case targetEcho:
			err = serveEcho(st)
		case targetBulk:
			err = serveBulk(st)
		}
		if err != nil {
			st.CancelWrite(1)
		}
		st.Close()
		return
	}
	if int(idx[0]) >= len(s.targets) {
		st.CancelRead(1)
		st.CancelWrite(1)
		return
	}
	c, err := net.Dial("tcp", s.targets[idx[0]])
	if err != nil {
		st.CancelRead(1)
		st.CancelWrite(1)
		return
	}
	spliceStream(st, c.(*net.TCPConn))
}
