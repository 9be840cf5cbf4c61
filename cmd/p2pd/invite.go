package main

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/p2pd/p2pd/config"
	"github.com/p2pd/p2pd/control"
	"github.com/p2pd/p2pd/identity"
)

// newInviteCmd is `p2pd invite`: the invite line made offline, from the
// config and the key file, for a node that is not running yet. A running
// daemon's own (`p2pctl invite`) has the ports it actually bound.
func newInviteCmd(configPath *string) *cobra.Command {
	return &cobra.Command{
		Use:   "invite",
		Short: "print this node's invite line (peer ID, name, addresses) for p2pctl trust add on another node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, key, err := loadConfigAndKey(*configPath)
			if err != nil {
				return err
			}
			inv := makeInvite(key.PeerID(), cfg.Node.Name, cfg.Node.Listen, cfg.Node.TCPAddrs())
			line, err := inv.AppendText(nil)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(line))
			if len(inv.Addrs) == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "p2pd: the invite has no address (no usable interface address); the other node will need discovery or `addresses` in its [[peers]] entry")
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "on the other node, trust this one with: p2pctl trust add %s <the line above>\n", inv.Name)
			return nil
		},
	}
}

func makeInvite(id identity.PeerID, nodeName string, udp, tcp []string) config.Invite {
	return config.Invite{ID: id, Name: config.InviteName(nodeName), Addrs: config.InviteAddrs(udp, tcp, config.InterfaceAddrs())}
}

// Invite implements control.TrustBackend: the invite line with the
// addresses the daemon has bound.
func (b backend) Invite(context.Context) (control.Invite, error) {
	n := b.d.node
	var tcp []string
	for _, a := range n.Endpoint().TCPAddrs() {
		tcp = append(tcp, a.String())
	}
	inv := makeInvite(n.ID(), n.Name(), n.ListenAddrs(), tcp)
	if b.d.disc != nil {
		inv.Addrs = addObserved(inv.Addrs, b.d.disc.Addrs())
	}
	line, err := inv.AppendText(nil)
	if err != nil {
		return control.Invite{}, err
	}
	out := control.Invite{Line: string(line), ID: inv.ID.String(), Name: inv.Name}
	for _, a := range inv.Addrs {
		s := a.IP.String()
		if a.UDP != 0 {
			s += " udp/" + strconv.Itoa(int(a.UDP))
		}
		if a.TCP != 0 {
			s += " tcp/" + strconv.Itoa(int(a.TCP))
		}
		out.Addresses = append(out.Addresses, s)
	}
	return out, nil
}

// addObserved adds to addrs the QUIC addresses discovery's libp2p host
// announces ("/ip4/203.0.113.7/udp/4242/quic-v1/p2p/12D3..."): among them
// the public ones that peers observed, which no interface has behind a NAT.
// The overlay shares that UDP port. Relay circuits and IPs already listed
// are skipped; at most config.MaxInviteAddrs in all.
func addObserved(addrs []config.InviteAddr, multiaddrs []string) []config.InviteAddr {
	for _, m := range multiaddrs {
		f := strings.Split(m, "/")
		if len(addrs) >= config.MaxInviteAddrs || len(f) < 6 || f[0] != "" || (f[1] != "ip4" && f[1] != "ip6") ||
			f[3] != "udp" || f[5] != "quic-v1" || strings.Contains(m, "p2p-circuit") {
			continue
		}
		ip, err := netip.ParseAddr(f[2])
		port, perr := strconv.ParseUint(f[4], 10, 16)
		if err != nil || perr != nil || port == 0 || ip.Zone() != "" || ip.Is4In6() || ip.IsLoopback() ||
			ip.IsUnspecified() || ip.IsMulticast() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() {
			continue
		}
		known := false
		for _, a := range addrs {
			known = known || a.IP == ip
		}
		if !known {
			addrs = append(addrs, config.InviteAddr{IP: ip, UDP: uint16(port)})
		}
	}
	return addrs
}
