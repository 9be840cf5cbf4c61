package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/p2pd/p2pd"
	"github.com/p2pd/p2pd/config"
	"github.com/p2pd/p2pd/control"
	"github.com/p2pd/p2pd/discovery"
	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/node"
	"github.com/p2pd/p2pd/proxy"
)

// daemon is a running p2pd: the node, the forwards and the control server.
type daemon struct {
	path string
	log  *slog.Logger
	node *node.Node
	fwd  *proxy.Forwarder
	prx  *proxy.Server        // the SOCKS5 and HTTP proxies
	disc *discovery.Discovery // nil without discovery
	sd   notifier             // systemd notifications; no-op outside a Type=notify unit

	mu  sync.Mutex // serialises reloads and guards cfg and started
	cfg *config.Config
	// started is the config the daemon started with, for the tables a
	// reload does not apply (reload.go); the first reload sets it.
	started *config.Config
}

func runDaemon(ctx context.Context, path string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	cfg, err := loadConfig(path)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log)
	routeForeignLogs(log)
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	logConfig(log, cfg)
	key, created, err := loadKey(cfg)
	if err != nil {
		return err
	}
	if created {
		log.Info("created a new key", "file", cfg.Node.KeyFile)
	}
	if err := checkOwnID(cfg, key.PeerID()); err != nil {
		return err
	}
	// The node and discovery are an embedded p2pd.Server, as a Go program
	// would run them; the daemon adds forwards, proxies, the control
	// socket, metrics and systemd notifications around it.
	var mx *metricsEndpoint
	var mxErr error
	srv := &p2pd.Server{Config: cfg, Logger: log, Key: key, Tune: func(nc *node.Config) {
		mx, mxErr = openMetrics(cfg, &nc.Transport, log) // metrics.go; nil when [metrics] is off
	}}
	err = srv.Start()
	if mxErr != nil {
		srv.Close()
		return mxErr
	}
	defer mx.close()
	if err != nil {
		return err
	}
	n := srv.Node()
	d := &daemon{path: cfg.Path, log: log, node: n, disc: srv.Discovery(), cfg: cfg, sd: newNotifier()}
	d.fwd = proxy.NewForwarder(n, log)
	d.fwd.SetClassifier(classifyOverlayError)
	d.prx = proxy.NewServer(n, classifyOverlayError, log)
	ln, err := control.Listen(cfg.Node.ControlSocket)
	if err != nil {
		srv.Close()
		return err
	}
	if err := d.fwd.Apply(forwards(cfg)); err != nil {
		ln.Close()
		srv.Close()
		d.fwd.Close(context.Background())
		return err
	}
	if err := d.prx.Apply(proxyConfig(cfg)); err != nil {
		ln.Close()
		srv.Close()
		d.fwd.Close(context.Background())
		d.prx.Close(context.Background())
		return err
	}
	log.Info("p2pd running", "peer", n.ID().String(), "name", n.Name(), "listen", n.ListenAddrs(), "control", cfg.Node.ControlSocket)

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var wg sync.WaitGroup
	ctl := control.NewServer(backend{d}, log)
	wg.Add(2)
	go func() { defer wg.Done(); ctl.Serve(ctx, ln) }()
	go func() { defer wg.Done(); d.reloadOnHUP(ctx) }()
	mx.start(ctx, &wg, d)
	d.notify(d.sd.ready())

	<-ctx.Done()
	d.notify(d.sd.stopping())
	// The local listeners close at once, so that no client is taken in
	// only to be refused while the sessions drain; their open connections
	// finish alongside the sessions' streams (they are mostly the same).
	drain, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	var local sync.WaitGroup
	local.Go(func() { d.fwd.Close(drain) })
	local.Go(func() { d.prx.Close(drain) })
	srv.Close() // drains the sessions, then stops discovery and the sockets
	local.Wait()
	cancel()
	stop()
	wg.Wait()
	log.Info("p2pd stopped")
	return nil
}

func loadKey(cfg *config.Config) (identity.PrivateKey, bool, error) {
	key, err := identity.LoadKeyFile(cfg.Node.KeyFile)
	if err == nil {
		return key, false, nil
	}
	if errors.Is(err, identity.ErrKeyFileMode) || errors.Is(err, identity.ErrKeyFileOwner) || errors.Is(err, identity.ErrKeyFileFormat) {
		return identity.PrivateKey{}, false, usageError{err} // the file is wrong: the user fixes it, exit 2
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return identity.PrivateKey{}, false, err
	}
	if cfg.Path != "" {
		return identity.PrivateKey{}, false, usageError{fmt.Errorf("no key at %s; make one with: p2pd init --config %s", cfg.Node.KeyFile, cfg.Path)}
	}
	// Running on defaults: make the key, as `p2pd init` would.
	return identity.LoadOrCreateKeyFile(cfg.Node.KeyFile)
}

func newLogger(c config.Log) *slog.Logger {
	var lvl slog.Level
	lvl.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

func forwards(cfg *config.Config) []proxy.Forward {
	var out []proxy.Forward
	for _, f := range cfg.Forwards {
		out = append(out, proxy.Forward{Listen: f.Listen, Peer: f.Peer, Service: f.Service, MaxConnections: f.MaxConnections,
			Protocol: f.Protocol, IdleTimeout: f.IdleTimeout})
	}
	return out
}

func (d *daemon) reloadOnHUP(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			if _, err := d.reload(); err != nil {
				d.log.Error("reload failed; running config unchanged", "err", err)
			}
		case <-ctx.Done():
			return
		}
	}
}

// reload applies a new trust list, services and forwards at once. A config
// that fails to load or validate, or a forward that cannot listen, changes
// nothing. The result names what it left for a restart (reload.go).
func (d *daemon) reload() (control.ReloadResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reloadLocked()
}

// reloadLocked is reload with d.mu held: a trust change (trust.go) holds it
// from reading the trust file to applying the new one.
func (d *daemon) reloadLocked() (control.ReloadResult, error) {
	d.notify(d.sd.reloading())
	defer func() { d.notify(d.sd.ready()) }()
	cfg, err := loadConfig(d.path)
	if err != nil {
		return control.ReloadResult{}, err
	}
	for _, w := range cfg.Warnings {
		d.log.Warn(w)
	}
	if err := d.fwd.Apply(forwards(cfg)); err != nil {
		return control.ReloadResult{}, err
	}
	if err := d.prx.Apply(proxyConfig(cfg)); err != nil {
		d.fwd.Apply(forwards(d.cfg))
		return control.ReloadResult{}, err
	}
	peers, services := p2pd.Trust(cfg)
	if err := d.node.Apply(peers, services); err != nil {
		d.fwd.Apply(forwards(d.cfg))
		d.prx.Apply(proxyConfig(d.cfg))
		return control.ReloadResult{}, err
	}
	if d.disc != nil {
		d.disc.Reload()
	}
	if d.started == nil {
		d.started = d.cfg
	}
	res := control.ReloadResult{RestartNeeded: restartNeeded(d.started, cfg), Warnings: cfg.Warnings}
	for _, t := range res.RestartNeeded {
		d.log.Warn("reload: [" + t + "] changes take effect after a restart")
	}
	d.cfg = cfg
	d.log.Info("reloaded", "peers", len(peers), "services", len(services), "forwards", len(cfg.Forwards))
	return res, nil
}
