package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	"github.com/p2pd/p2pd/identity"
)

// Timeouts and sizes of the background work.
const (
	connectTimeout = 10 * time.Second
	connectWorkers = 4
	connectQueue   = 64
	returnTimeout  = 5 * time.Second // for quicreuse to give the sockets back at Close
	maxSightings   = 256             // mDNS announcements of peers not (yet) trusted
	// maxMDNSAddrs bounds the addresses taken from one mDNS announcement:
	// mDNS is not authenticated, so a LAN stranger can announce a trusted
	// peer "at" addresses of its choice, and each is dialled.
	maxMDNSAddrs = 16
)

// Discovery is a node's libp2p host and the address sources built on it.
// Its methods are safe for concurrent use. Close stops everything it started.
type Discovery struct {
	cfg    Config
	log    *slog.Logger
	host   host.Host
	sh     *sharing
	gater  *gater
	boot   []peer.AddrInfo
	relays []peer.AddrInfo
	dht    *dht.IpfsDHT // nil when the DHT is off
	mdns   mdns.Service // nil when mDNS is off or failed to start
	punch  *puncher     // hole punching; nil until the host runs
	em     *emitter
	store  *learnedStore
	holds  *streamHolds // overlay streams' connections, kept from trimming

	connect chan peer.AddrInfo // to the connect workers
	found   chan peer.AddrInfo // mDNS announcements, to mdnsLoop

	mu        sync.Mutex // guards sightings and closed
	sightings map[identity.PeerID][]string
	closed    bool
	finders   sync.WaitGroup // mDNS callbacks in flight (libp2p starts them)

	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup // every goroutine Discovery starts
	emitting bool           // em.run started (it closes the Records channel)
	once     sync.Once
	err      error // of Close
}

// New starts the node's libp2p host on the endpoint's sockets, hands the
// overlay's listeners to the endpoint and starts the configured sources.
// Records of learned addresses from the state directory are queued at once.
func New(cfg Config) (*Discovery, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	boot, berr := peerAddrs("bootstrap", cfg.Bootstrap)
	relays, rerr := peerAddrs("relays", cfg.Relays)
	if err := errors.Join(berr, rerr); err != nil {
		return nil, err
	}
	d := &Discovery{
		cfg:       cfg,
		log:       cfg.Logger,
		gater:     newGater(cfg.Trusted, boot, relays),
		boot:      boot,
		relays:    relays,
		em:        newEmitter(),
		connect:   make(chan peer.AddrInfo, connectQueue),
		found:     make(chan peer.AddrInfo, connectQueue),
		sightings: map[identity.PeerID][]string{},
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	path := ""
	if cfg.StateDir != "" {
		path = filepath.Join(cfg.StateDir, PeersFile)
	}
	store, err := loadLearned(path, time.Now())
	if err != nil {
		d.log.Warn("learned addresses not loaded", "err", err)
	}
	store.onErr = func(err error) { d.log.Warn("learned addresses not saved", "err", err) }
	d.store = store
	if err := d.start(); err != nil {
		d.Close()
		return nil, err
	}
	for _, r := range store.records() {
		d.em.push(r)
	}
	return d, nil
}

func (d *Discovery) start() error {
	sh, err := newSharing(d.cfg.Endpoint)
	if err != nil {
		return err
	}
	d.sh = sh
	hc, err := hostConfig(&d.cfg, sh, d.gater, d.relays, newBoundAddrs(sh).factory)
	if err != nil {
		return err
	}
	pp := preparePunch(hc)
	parts, err := newHostParts()
	if err != nil {
		return err
	}
	h, err := newHost(parts, hc)
	if err != nil {
		return err
	}
	d.host = h
	d.holds = &streamHolds{cm: h.ConnManager(), n: map[peer.ID]int{}}
	if want := d.cfg.Key.PeerID().String(); h.ID().String() != want {
		return fmt.Errorf("discovery: libp2p host id %s is not the node's peer id %s", h.ID(), want)
	}
	if err := sh.listenOverlay(d.cfg.Endpoint); err != nil {
		return err
	}
	h.Network().Notify(&network.NotifyBundle{ConnectedF: d.connected})
	if d.punch, err = newPuncher(h, pp, d.log); err != nil {
		return err
	}
	d.wg.Add(3 + connectWorkers)
	d.emitting = true
	go d.run(d.em.run)
	go d.run(d.punch.observeLoop)
	go d.run(d.punch.punchLoop)
	for range connectWorkers {
		go d.connectWorker()
	}
	if d.cfg.DHT {
		if err := d.startDHT(); err != nil {
			return err
		}
	}
	if d.cfg.MDNS {
		d.startMDNS()
	}
	return nil
}

// run runs f(d.ctx) as one of d's goroutines (wg.Add is the caller's).
func (d *Discovery) run(f func(context.Context)) {
	defer d.wg.Done()
	f(d.ctx)
}

// Records returns the stream of address records from every source. It is
// closed by Close. Records are coalesced per peer and source while the
// reader is behind, so the newest addresses are delivered, not a backlog.
func (d *Discovery) Records() <-chan Record { return d.em.out }

// ID returns the host's peer ID, the node's.
func (d *Discovery) ID() identity.PeerID { return d.cfg.Key.PeerID() }

// Addrs returns the host's addresses, the observed ones included, each
// ending in /p2p/<peer ID> so that it can be pasted into another node's
// [discovery] bootstrap or relays list.
func (d *Discovery) Addrs() []string {
	if d.host == nil {
		return nil
	}
	infos, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: d.host.ID(), Addrs: d.host.Addrs()})
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(infos))
	for _, a := range infos {
		out = append(out, a.String())
	}
	return out
}

// Reload applies the current answers of Config.Trusted: libp2p connections
// of peers no longer trusted are closed, and peers newly trusted that mDNS
// announced earlier are reported and connected.
func (d *Discovery) Reload() {
	if d.ctx.Err() != nil {
		return
	}
	for _, c := range d.host.Network().Conns() {
		if !d.gater.allowed(c.RemotePeer()) {
			c.Close()
		}
	}
	d.mu.Lock()
	var now []peer.AddrInfo
	for id, addrs := range d.sightings {
		if d.cfg.Trusted(id) {
			delete(d.sightings, id)
			if ai, err := overlayInfo(id, addrs); err == nil {
				now = append(now, ai)
			}
		}
	}
	d.mu.Unlock()
	for _, ai := range now {
		d.trustedFound(ai)
	}
}

// Close stops the sources and the host and waits for every goroutine. The
// endpoint's sockets are given back (libp2p no longer uses them); the
// overlay listeners stay with the endpoint. Close the endpoint after.
func (d *Discovery) Close() error {
	d.once.Do(func() {
		d.mu.Lock()
		d.closed = true
		d.mu.Unlock()
		d.cancel()
		var errs []error
		if d.mdns != nil {
			errs = append(errs, d.mdns.Close())
		}
		d.finders.Wait()
		if d.punch != nil {
			errs = append(errs, d.punch.close()) // ends a punch in progress
		}
		d.wg.Wait()
		if d.dht != nil {
			errs = append(errs, d.dht.Close())
		}
		if d.host != nil {
			errs = append(errs, d.host.Close())
			d.awaitSockets()
		}
		if !d.emitting {
			close(d.em.out)
		}
		if d.store != nil {
			errs = append(errs, d.store.flush())
		}
		if err := errors.Join(errs...); err != nil {
			d.err = fmt.Errorf("discovery: close: %w", err)
		}
	})
	return d.err
}

// awaitSockets waits until quicreuse has given back every lent socket.
func (d *Discovery) awaitSockets() {
	timer := time.NewTimer(returnTimeout)
	defer timer.Stop()
	for _, done := range d.sh.done {
		select {
		case <-done:
		case <-timer.C:
			d.log.Warn("libp2p did not give back a shared socket in time")
			return
		}
	}
}
