package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/p2pd/p2pd/config"
	"github.com/p2pd/p2pd/control"
	"github.com/p2pd/p2pd/identity"
)

// Trust-list changes from p2pctl (control.TrustBackend). Each writes the
// trust file (config.WriteManaged, never the user's config file) and
// applies it through reload, under d.mu; when the reload fails the old trust
// file is put back, so a refused change changes nothing.

var _ control.TrustBackend = backend{}

func (b backend) TrustAdd(_ context.Context, req control.TrustAddRequest) (control.TrustChange, error) {
	return b.d.trustAdd(req)
}

func (b backend) TrustRemove(_ context.Context, name string) (control.TrustChange, error) {
	return b.d.trustRemove(name)
}

func (b backend) Pending(context.Context) ([]control.Pending, error) {
	var out []control.Pending
	for _, p := range b.d.node.Pending() {
		cp := control.Pending{ID: p.ID.String(), Name: p.Name, Remote: p.Remote, Carrier: p.Carrier,
			Count: p.Count, FirstSeen: p.FirstSeen, LastSeen: p.LastSeen}
		if !p.AltID.IsZero() {
			cp.AltID = p.AltID.String()
		}
		out = append(out, cp)
	}
	return out, nil
}

func rejectf(format string, args ...any) error {
	return &control.RejectedError{Err: fmt.Errorf(format, args...)}
}

// trustedPeer reads the PEER argument of trust add: a peer ID or an invite line.
func trustedPeer(name, arg string) (config.Peer, error) {
	if err := config.CheckPeerName(name); err != nil {
		return config.Peer{}, err
	}
	arg = strings.TrimSpace(arg)
	if strings.HasPrefix(arg, "p2pd") && strings.Contains(arg, ":") {
		inv, err := config.ParseInvite(arg)
		if err != nil {
			return config.Peer{}, err
		}
		return inv.Peer(name), nil
	}
	id, err := identity.ParsePeerID(arg)
	if err != nil {
		return config.Peer{}, fmt.Errorf("trust: %q is neither a peer ID (12D3KooW..., from `p2pd id` or `p2pctl pending`) nor an invite line (p2pd1:..., from `p2pctl invite`): %w", arg, err)
	}
	return config.Peer{Name: name, ID: id}, nil
}

func (d *daemon) trustAdd(req control.TrustAddRequest) (control.TrustChange, error) {
	p, err := trustedPeer(req.Name, req.Peer)
	if err != nil {
		return control.TrustChange{}, &control.RejectedError{Err: err}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	cfg := d.cfg
	path := cfg.TrustPath()
	m, err := config.ReadManaged(path)
	if err != nil {
		return control.TrustChange{}, &control.RejectedError{Err: err}
	}
	if p.ID == d.node.ID() {
		return control.TrustChange{}, rejectf("trust: %s is this node's own ID; run p2pctl trust add on the other node, with this node's invite", p.ID)
	}
	for _, cp := range cfg.Peers {
		switch {
		case strings.EqualFold(cp.Name, p.Name):
			return control.TrustChange{}, rejectf("trust: a peer named %q is already trusted (%s, from %s); choose another name, or p2pctl trust rm %s first",
				cp.Name, cp.ID, origin(cfg, cp.Name), cp.Name)
		case cp.ID == p.ID:
			return control.TrustChange{}, rejectf("trust: %s is already trusted as %q (from %s); p2pctl trust rm %s first to rename it",
				p.ID, cp.Name, origin(cfg, cp.Name), cp.Name)
		case sameNoiseKey(cp.ID, p.ID):
			return control.TrustChange{}, rejectf("trust: %s is the other form of %s, already trusted as %q (from %s): the same key",
				p.ID, cp.ID, cp.Name, origin(cfg, cp.Name))
		}
	}
	var allow []string
	for _, svc := range req.Allow {
		if !slices.ContainsFunc(cfg.Services, func(s config.Service) bool { return s.Name == svc }) {
			return control.TrustChange{}, rejectf("trust: --allow %s: this node has no service %q (it has: %s)", svc, svc, serviceNames(cfg))
		}
		if !slices.Contains(allow, svc) {
			allow = append(allow, svc)
		}
	}
	m.Peers = append(m.Peers, config.ManagedPeer{Peer: p, Allow: allow})
	if err := d.applyManaged(path, m); err != nil {
		return control.TrustChange{}, err
	}
	d.log.Info("trusted a peer", "peer", p.ID.String(), "name", p.Name, "allow", allow, "file", path)
	return control.TrustChange{Name: p.Name, ID: p.ID.String(), Addresses: p.Addresses, Origin: config.OriginTrust,
		Allowed: allowedTo(d.cfg, p.Name), TrustFile: path}, nil
}

func (d *daemon) trustRemove(name string) (control.TrustChange, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cfg := d.cfg
	path := cfg.TrustPath()
	m, err := config.ReadManaged(path)
	if err != nil {
		return control.TrustChange{}, &control.RejectedError{Err: err}
	}
	p, ok := cfg.PeerByName(name)
	if !ok {
		return control.TrustChange{}, notFound{noSuchPeer(cfg, name)}
	}
	from := cfg.PeerOrigin(name)
	if i := slices.IndexFunc(m.Peers, func(mp config.ManagedPeer) bool { return mp.Name == name }); i >= 0 {
		m.Peers = slices.Delete(m.Peers, i, i+1)
	} else {
		// A removal of this name or ID still in the file masks nothing (the
		// config file's entry has changed since, or it would not be
		// trusted): this one replaces it.
		m.Removed = slices.DeleteFunc(m.Removed, func(r config.RemovedPeer) bool {
			return strings.EqualFold(r.Name, p.Name) || r.ID == p.ID
		})
		m.Removed = append(m.Removed, config.RemovedPeer{Name: p.Name, ID: p.ID})
	}
	allowed := allowedTo(cfg, name)
	sessions := 0
	for _, s := range d.node.Sessions() {
		if s.Peer == name {
			sessions++
		}
	}
	if err := d.applyManaged(path, m); err != nil {
		return control.TrustChange{}, err
	}
	d.log.Info("removed a peer from the trust list", "peer", p.ID.String(), "name", name, "was_allowed", allowed, "file", path)
	return control.TrustChange{Name: name, ID: p.ID.String(), Addresses: p.Addresses, Origin: from,
		Allowed: allowed, TrustFile: path, Closed: sessions}, nil
}

// maxNamesListed bounds the peer names an error lists.
const maxNamesListed = 10

// noSuchPeer says that cfg trusts no peer name, and what it trusts instead.
func noSuchPeer(cfg *config.Config, name string) error {
	for _, p := range cfg.Peers {
		if strings.EqualFold(p.Name, name) {
			return fmt.Errorf("trust: no trusted peer %q; did you mean %q? (names are case-sensitive)", name, p.Name)
		}
	}
	for _, r := range cfg.Managed.Removed {
		if r.Name == name {
			return fmt.Errorf("trust: no trusted peer %q: it was removed already (recorded in %s); p2pctl trust add %s %s trusts it again",
				name, cfg.TrustPath(), name, r.ID)
		}
	}
	if len(cfg.Peers) == 0 {
		return fmt.Errorf("trust: no trusted peer %q: this node trusts no peer yet", name)
	}
	var names []string
	for _, p := range cfg.Peers {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	list := strings.Join(names, ", ")
	if len(names) > maxNamesListed {
		list = fmt.Sprintf("%s and %d more", strings.Join(names[:maxNamesListed], ", "), len(names)-maxNamesListed)
	}
	return fmt.Errorf("trust: no trusted peer %q; the trusted peers are %s (p2pctl peers lists them)", name, list)
}

// applyManaged writes m as the trust file and reloads. d.mu is held. When
// the reload fails, the trust file is put back as it was.
func (d *daemon) applyManaged(path string, m config.Managed) error {
	old, err := os.ReadFile(path)
	existed := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("trust: %w", err)
	}
	if err := config.WriteManaged(path, m); err != nil {
		return err
	}
	_, rerr := d.reloadLocked()
	if rerr == nil {
		return nil
	}
	var restore error
	if existed {
		restore = config.RestoreManaged(path, old)
	} else {
		restore = os.Remove(path)
	}
	if restore != nil {
		return fmt.Errorf("trust: the change does not apply (%w), and putting %s back failed: %v", rerr, path, restore)
	}
	if errors.As(rerr, new(usageError)) {
		return &control.RejectedError{Err: fmt.Errorf("trust: the change does not apply; nothing changed: %w", rerr)}
	}
	return fmt.Errorf("trust: the change does not apply; nothing changed: %w", rerr)
}

// sameNoiseKey reports whether two peer IDs share a Noise key: the two
// forms p2pctl pending can show for one refused key.
func sameNoiseKey(a, b identity.PeerID) bool {
	ka, erra := a.PublicKey().NoisePublic()
	kb, errb := b.PublicKey().NoisePublic()
	return erra == nil && errb == nil && ka == kb
}

func origin(cfg *config.Config, name string) string {
	if cfg.PeerOrigin(name) == config.OriginTrust {
		return cfg.TrustPath()
	}
	if cfg.Path == "" {
		return "the defaults"
	}
	return cfg.Path
}

// allowedTo lists the services cfg lets the peer name use.
func allowedTo(cfg *config.Config, name string) []string {
	var out []string
	for _, s := range cfg.Services {
		if slices.Contains(s.Allow, name) || slices.Contains(s.Allow, "*") {
			out = append(out, s.Name)
		}
	}
	return out
}

func serviceNames(cfg *config.Config) string {
	if len(cfg.Services) == 0 {
		return "none"
	}
	var names []string
	for _, s := range cfg.Services {
		names = append(names, s.Name)
	}
	return strings.Join(names, ", ")
}

// peerOrigin is config.OriginConfig or config.OriginTrust for a peer of the
// running config.
func (d *daemon) peerOrigin(name string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg.PeerOrigin(name)
}
