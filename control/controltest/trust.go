package controltest

import (
	"context"
	"fmt"
	"slices"

	"github.com/p2pd/p2pd/control"
)

// Trust is a Backend that also serves the trust endpoints
// (control.TrustBackend) over fixed data. Set its fields before it is
// served; they are read-only afterwards. Its methods are safe for
// concurrent use.
type Trust struct {
	*Backend
	// InviteData is what Invite returns.
	InviteData control.Invite
	// TrustFile is where TrustAdd says it recorded a peer.
	TrustFile string
	// Removed is what TrustRemove of Removed.Name returns; any other name
	// is not found.
	Removed control.TrustChange
	// PendingList is what Pending returns.
	PendingList []control.Pending

	added []control.TrustAddRequest // guarded by Backend.mu
}

var _ control.TrustBackend = (*Trust)(nil)

// Invite returns InviteData.
func (b *Trust) Invite(context.Context) (control.Invite, error) { return b.InviteData, nil }

// TrustAdd refuses, with a *control.RejectedError, the name of a peer in
// PeerList; it records any other request and returns it as trusted, with
// origin "trust" and recorded in TrustFile.
func (b *Trust) TrustAdd(_ context.Context, req control.TrustAddRequest) (control.TrustChange, error) {
	if slices.ContainsFunc(b.PeerList, func(p control.Peer) bool { return p.Name == req.Name }) {
		return control.TrustChange{}, &control.RejectedError{Err: fmt.Errorf("trust: a peer named %q is already trusted", req.Name)}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.added = append(b.added, req)
	return control.TrustChange{Name: req.Name, ID: req.Peer, Origin: "trust", Allowed: req.Allow, TrustFile: b.TrustFile}, nil
}

// Added returns the requests TrustAdd has recorded so far.
func (b *Trust) Added() []control.TrustAddRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.added)
}

// TrustRemove returns Removed for Removed.Name, and for any other name an
// error wrapping control.ErrNotFound.
func (b *Trust) TrustRemove(_ context.Context, name string) (control.TrustChange, error) {
	if name != b.Removed.Name {
		return control.TrustChange{}, fmt.Errorf("trust: no trusted peer %q: %w", name, control.ErrNotFound)
	}
	return b.Removed, nil
}

// Pending returns PendingList.
func (b *Trust) Pending(context.Context) ([]control.Pending, error) { return b.PendingList, nil }
