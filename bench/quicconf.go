package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"time"

	"github.com/quic-go/quic-go"
)

// The QUIC settings of the quic-go baselines: p2pd's flow-control windows,
// idle timeout and keep-alive (transport/endpoint.go), TLS 1.3 with a
// throwaway Ed25519 certificate and no session tickets, as p2pd's.
const (
	benchALPN          = "bench/1"
	initialStreamWin   = 512 << 10
	maxStreamWin       = 16 << 20
	initialConnWin     = 1 << 20
	maxConnWin         = 64 << 20
	quicIdleTimeout    = 30 * time.Second
	quicKeepAlive      = 10 * time.Second
	quicHandshakeLimit = 10 * time.Second
	// qtunMaxStreams lets one tunnel connection hold the memory figure's
	// open connections; p2pd allows 4096 streams per session.
	qtunMaxStreams = 1 << 15
)

func benchQUICConfig() *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout:           quicHandshakeLimit,
		MaxIdleTimeout:                 quicIdleTimeout,
		KeepAlivePeriod:                quicKeepAlive,
		MaxIncomingStreams:             qtunMaxStreams,
		MaxIncomingUniStreams:          -1,
		InitialStreamReceiveWindow:     initialStreamWin,
		MaxStreamReceiveWindow:         maxStreamWin,
		InitialConnectionReceiveWindow: initialConnWin,
		MaxConnectionReceiveWindow:     maxConnWin,
	}
}

func benchServerTLS() (*tls.Config, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("bench: certificate key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "bench"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		DNSNames:     []string{"bench"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		return nil, fmt.Errorf("bench: certificate: %w", err)
	}
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: priv}},
		NextProtos:             []string{benchALPN},
		SessionTicketsDisabled: true,
	}, nil
}

func benchClientTLS() *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		InsecureSkipVerify:     true, // a baseline: no authentication, as little work as QUIC needs
		NextProtos:             []string{benchALPN},
		ServerName:             "bench",
		SessionTicketsDisabled: true,
	}
}
