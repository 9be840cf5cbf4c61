package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/p2pd/p2pd/node"
	"github.com/p2pd/p2pd/proxy"
	"github.com/p2pd/p2pd/transport"
)

func TestClassifyOverlayError(t *testing.T) {
	status := func(s transport.Status) error {
		return fmt.Errorf("node: peer %q: %w", "db", &transport.StatusError{Status: s, Service: "files"})
	}
	for _, tt := range []struct {
		err  error
		want proxy.ErrorKind
	}{
		{fmt.Errorf("%w %q (not in [[peers]])", node.ErrUnknownPeer, "x"), proxy.KindUnknownPeer},
		{status(transport.StatusUnknownService), proxy.KindUnknownService},
		{status(transport.StatusAccessDenied), proxy.KindAccessDenied},
		{status(transport.StatusTargetRefused), proxy.KindTargetRefused},
		{status(transport.StatusTargetUnreachable), proxy.KindTargetUnreachable},
		{status(transport.StatusOverloaded), proxy.KindOverloaded},
		{status(transport.StatusBadRequest), proxy.KindBadRequest},
		{status(transport.Status(99)), proxy.KindOther},
		{fmt.Errorf("node: peer %q: %w", "db", context.DeadlineExceeded), proxy.KindTimeout},
		{os.ErrDeadlineExceeded, proxy.KindTimeout},
		{fmt.Errorf("node: peer %q: %w", "db", transport.ErrHandshake), proxy.KindPeerUnreachable},
		{errors.New("node: no address known"), proxy.KindPeerUnreachable},
		{&node.PeerError{Peer: "db", Reason: node.ReasonUnreachable, Detail: "no address answered", Err: context.DeadlineExceeded}, proxy.KindPeerUnreachable},
	} {
		if got := classifyOverlayError(tt.err); got != tt.want {
			t.Errorf("%v: %v, want %v", tt.err, got, tt.want)
		}
	}
}
