package transport

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"time"
)

// ALPN is the TLS application protocol of the overlay. libp2p, on the same
// UDP port, keeps its own.
const ALPN = "p2pd/1"

// Channel binding: the exporter label and the number of bytes mixed into the
// Noise prologue.
const (
	ExporterLabel = "EXPORTER-p2pd/1 noise-ik channel binding"
	ExporterLen   = 32
)

// throwawayCert makes a self-signed certificate that nobody verifies. TLS
// gives QUIC its ephemeral key exchange and packet protection; Noise gives
// authentication, so the certificate carries no identity.
func throwawayCert() (tls.Certificate, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("transport: certificate key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "p2pd"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(10 * 365 * 24 * time.Hour),
		DNSNames:     []string{"p2pd"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("transport: certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}, nil
}

func serverTLS(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{cert},
		NextProtos:             []string{ALPN},
		SessionTicketsDisabled: true,
	}
}

func clientTLS() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// Authentication is Noise's job; the certificate is throwaway.
		InsecureSkipVerify: true,
		NextProtos:         []string{ALPN},
		// No server name: none is checked, none goes out in the clear,
		// and quic-go then keys the address tokens it keeps
		// (quicConfig's TokenStore) by the peer's address.
		SessionTicketsDisabled: true,
		ClientSessionCache:     nil,
	}
}

// exporter returns the channel-binding bytes of a TLS connection state.
func exporter(cs tls.ConnectionState) ([]byte, error) {
	b, err := cs.ExportKeyingMaterial(ExporterLabel, nil, ExporterLen)
	if err != nil {
		return nil, fmt.Errorf("transport: tls exporter: %w", err)
	}
	return b, nil
}
