package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"
)

// runQtunClient is `bench qtun-client -server UDPADDR -listen A,B`: one QUIC
// connection to the server, one stream per accepted TCP connection; the
// stream's first byte is the index of the listener that accepted it.
func runQtunClient(args []string) error {
	fs := flag.NewFlagSet("qtun-client", flag.ContinueOnError)
	server := fs.String("server", "", "qtun-server UDP address")
	listen := fs.String("listen", "", "TCP listen addresses by target index, comma-separated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	conn, err := dialQUICRetry(ctx, *server, 10*time.Second)
	if err != nil {
		return err
	}
	defer conn.CloseWithError(0, "")
	var servers []*connServer
	defer func() {
		for _, s := range servers {
			s.Close()
		}
	}()
	for i, addr := range strings.Split(*listen, ",") {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("bench qtun-client: listen on %s: %w", addr, err)
		}
		idx := byte(i)
		servers = append(servers, serveConns(ln, func(c net.Conn) error {
			return tunnel(ctx, conn, idx, c.(*net.TCPConn))
		}))
	}
	fmt.Fprintln(os.Stdout, "ready")
	select {
	case <-ctx.Done():
		return nil
	case <-conn.Context().Done():
		return fmt.Errorf("bench qtun-client: connection to %s ended: %w", *server, context.Cause(conn.Context()))
	}
}

func tunnel(ctx context.Context, conn *quic.Conn, idx byte, c *net.TCPConn) error {
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		c.SetLinger(0)
		return err
	}
	if _, err := st.Write([]byte{idx}); err != nil {
		st.CancelRead(1)
		st.CancelWrite(1)
		c.SetLinger(0)
		return err
	}
	spliceStream(st, c)
	return nil
}

// dialQUICRetry dials until the server answers or the time is up.
func dialQUICRetry(ctx context.Context, addr string, limit time.Duration) (*quic.Conn, error) {
	deadline := time.Now().Add(limit)
	for {
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		conn, err := quic.DialAddr(dctx, addr, benchClientTLS(), benchQUICConfig())
		cancel()
		if err == nil {
			return conn, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("bench: dial quic %s: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
