package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// stunnelPath finds Debian's stunnel4 binary.
func stunnelPath() (string, error) {
	for _, name := range []string{"stunnel4", "stunnel"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("bench: stunnel4 not installed (apt-get install stunnel4; bench/run.sh does it as root)")
}

// newStunnel starts a TLS tunnel with mutual certificate authentication
// (each side pins the other's self-signed certificate, as p2pd's peers pin
// keys): client stunnel on the harness's side, server stunnel beside the
// backend. TCP_NODELAY on every leg, as Go sets it for p2pd's sockets.
func (r *runner) newStunnel(t *topo, be *backend) (*system, error) {
	bin, err := stunnelPath()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(r.work, t.name+"-stunnel")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	for _, n := range []string{"server", "client"} {
		if err := writeSelfSigned(filepath.Join(dir, n+".pem"), filepath.Join(dir, n+".key"), n); err != nil {
			return nil, err
		}
	}
	var srvAddrs, cliAddrs [2]string
	for i := range 2 {
		if srvAddrs[i], err = hostPort(t.serverIP, "tcp"); err != nil {
			return nil, err
		}
		if cliAddrs[i], err = hostPort("127.0.0.1", "tcp"); err != nil {
			return nil, err
		}
	}
	targets := [2]string{be.echo, be.bulk}
	names := [2]string{"echo", "bulk"}
	var srvConf, cliConf strings.Builder
	for _, b := range []*strings.Builder{&srvConf, &cliConf} {
		fmt.Fprintf(b, "foreground = yes\npid =\nsyslog = no\ndebug = 3\n")
	}
	for i := range 2 {
		fmt.Fprintf(&srvConf, "\n[%s]\naccept = %s\nconnect = %s\ncert = %s\nkey = %s\nCAfile = %s\nverifyPeer = yes\nsocket = l:TCP_NODELAY=1\nsocket = r:TCP_NODELAY=1\n",
			names[i], srvAddrs[i], targets[i], filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key"), filepath.Join(dir, "client.pem"))
		fmt.Fprintf(&cliConf, "\n[%s]\nclient = yes\naccept = %s\nconnect = %s\ncert = %s\nkey = %s\nCAfile = %s\nverifyPeer = yes\nsocket = l:TCP_NODELAY=1\nsocket = r:TCP_NODELAY=1\n",
			names[i], cliAddrs[i], srvAddrs[i], filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key"), filepath.Join(dir, "server.pem"))
	}
	srvPath, cliPath := filepath.Join(dir, "server.conf"), filepath.Join(dir, "client.conf")
	if err := os.WriteFile(srvPath, []byte(srvConf.String()), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(cliPath, []byte(cliConf.String()), 0o600); err != nil {
		return nil, err
	}
	srv, err := r.procs.start("stunnel-server", r.logPath(t, "stunnel-server"), t.prefix(t.serverNS), []string{bin, srvPath}, false)
	if err != nil {
		return nil, err
	}
	cl, err := r.procs.start("stunnel-client", r.logPath(t, "stunnel-client"), t.prefix(t.clientNS), []string{bin, cliPath}, false)
	if err != nil {
		srv.stop()
		return nil, err
	}
	stop := func() { stopProcs([]*proc{cl, srv}) }
	for _, a := range append(cliAddrs[:], srvAddrs[:]...) {
		if err := t.waitTCP(r.ctx, a, 10*time.Second); err != nil {
			stop()
			return nil, fmt.Errorf("%w; stunnel log: %s", err, tail(srv.logPath, 3))
		}
	}
	return &system{name: sysStunnel, dial: tcpDialer(t, cliAddrs), connRate: true, client: cl, server: srv, stop: stop}, nil
}

// writeSelfSigned writes a self-signed ECDSA P-256 certificate and its key
// as PEM files.
func writeSelfSigned(certPath, keyPath, name string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:              []string{name},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
}
