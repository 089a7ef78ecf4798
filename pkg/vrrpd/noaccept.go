package vrrpd

import (
	"context"
	"errors"
	"log/slog"

	"github.com/vishvananda/netns"

	"github.com/vrrpkit/vrrpkit/pkg/netstate"
	"github.com/vrrpkit/vrrpkit/pkg/vrrp"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// no_accept (RFC 5798 §6.1 Accept_Mode false, keepalived's "no_accept", or
// vrrp_strict for a non-owner): a master holds its VIPs so that it answers
// ARP and neighbour discovery for them and forwards for them, but it does
// not accept traffic addressed to them. keepalived 2.2.7 enforces that with
// nftables drop rules (vrrp/vrrp.c vrrp_handle_accept_mode,
// vrrp/vrrp_nftables.c); so does vrrpd, through a VIPFirewall.
//
// The firewall follows the addresses a non-accepting master holds: they are
// blocked before they are added and unblocked after they are removed
// (vrrp.c vrrp_state_become_master, vrrp_restore_interface), which
// changeAddresses does for every caller, and Apply reconciles what a reload
// changed. An instance that accepts, or owns its addresses (priority 255),
// is never blocked, nor is one that is not master.

// VIPFirewall drops traffic to and from addresses, and keeps VMACs quiet
// (netstate.NoAccept): keepalived keeps both in one nftables table.
type VIPFirewall interface {
	Block(ctx context.Context, addrs ...netstate.BlockedAddr) error
	Unblock(ctx context.Context, addrs ...netstate.BlockedAddr) error
	// QuietVMAC keeps a VMAC's IGMP/MLD reports and router solicitations
	// from leaving with the virtual MAC (see vmac.go quietVMACLocked);
	// UnquietVMAC undoes it, by the VMAC's interface index.
	QuietVMAC(ctx context.Context, v netstate.QuietVMAC) error
	UnquietVMAC(ctx context.Context, index int) error
	// Close removes everything the firewall created.
	Close() error
}

// FirewallConfig is what a VIPFirewall is made with: the snapshot's
// nftables global_defs.
type FirewallConfig struct {
	Table    string // nftables table name, never empty
	Priority int32  // base chain priority
	Counters bool   // a counter on every rule
}

// FirewallFactory makes the VIPFirewall when an instance first needs one.
// Making it removes what a crashed vrrpd left (netstate.NewNoAccept).
type FirewallFactory func(ctx context.Context, cfg FirewallConfig) (VIPFirewall, error)

// NFTablesFirewall is the FirewallFactory of the running system, in the
// caller's network namespace.
func NFTablesFirewall(log *slog.Logger) FirewallFactory {
	return func(ctx context.Context, cfg FirewallConfig) (VIPFirewall, error) {
		prio := cfg.Priority
		// Netns must be said to be none: the zero NsHandle is descriptor 0,
		// which netns.NsHandle.IsOpen takes for an open namespace.
		n, err := netstate.NewNoAccept(ctx, netstate.NoAcceptOptions{Netns: netns.None(), Table: cfg.Table, Priority: &prio, Counters: cfg.Counters, Log: log})
		if err != nil {
			return nil, err
		}
		return n, nil
	}
}

// noAccept is the engine's firewall state; guarded by the engine's mu.
type noAccept struct {
	factory FirewallFactory // nil: no_accept is not enforced
	cfg     FirewallConfig  // from the running snapshot
	ifindex bool            // nftables_ifindex
	fw      VIPFirewall     // nil until an instance needs it
	fwCfg   FirewallConfig  // what fw was made with
	swept   bool            // the first snapshot was seen
	// held is what each instance has blocked, by the address it guards, so
	// that unblocking removes exactly that whatever the configuration says
	// now; refs counts the instances blocking each address.
	held map[*instance]map[netstate.Address]netstate.BlockedAddr
	refs map[netstate.BlockedAddr]int
	// quiet is the VMAC each use_vmac instance has quieted.
	quiet map[*instance]netstate.QuietVMAC
}

// initNoAccept sets the firewall factory from o. Without one, nftables is
// used when the engine runs the real system; with substitute Addresses
// (tests) there is nothing real to guard, so no_accept is not enforced.
func (e *Engine) initNoAccept(o Options) {
	e.noAccept = noAccept{
		factory: o.Firewall,
		cfg:     FirewallConfig{Table: netstate.DefaultNFTTable, Priority: netstate.DefaultNFTPriority},
		held:    map[*instance]map[netstate.Address]netstate.BlockedAddr{},
		refs:    map[netstate.BlockedAddr]int{},
		quiet:   map[*instance]netstate.QuietVMAC{},
	}
	if o.Firewall == nil && o.Addresses == nil {
		e.noAccept.factory = NFTablesFirewall(e.log)
	}
}

// needsNoAccept: keepalived blocks the addresses of a master that neither
// accepts nor owns them (vrrp.c vrrp_handle_accept_mode).
func (in *instance) needsNoAccept() bool { return !in.cfg.GetAccept() && !in.isOwner() }

// blockedAddr is how address a of the instance is blocked. An IPv6
// link-local address is keyed by interface name rather than index when
// keepalived does so (vrrp_nftables.c nft_update_ipv6_address): no
// nftables_ifindex, dont_track_primary, and the address on the instance's
// interface (the VMAC with use_vmac) or no_track.
func (e *Engine) blockedAddr(in *instance, a netstate.Address) netstate.BlockedAddr {
	b := netstate.BlockedAddr{Addr: a.Prefix.Addr().Unmap()}
	if b.Addr.Is6() && b.Addr.IsLinkLocalUnicast() {
		b.Iface = a.Dev
		b.ByName = !e.noAccept.ifindex && in.cfg.GetDontTrackPrimary() && (a.Dev == addrDev(in.cfg) || noTrack(in.cfg, a))
	}
	return b
}

// noTrack reports whether address a came from a no_track line of cfg.
func noTrack(cfg *pb.VrrpInstance, a netstate.Address) bool {
	for _, list := range [][]*pb.VirtualAddress{cfg.GetVirtualIpaddress(), cfg.GetVirtualIpaddressExcluded()} {
		for _, va := range list {
			if got, err := toAddress(va, addrDev(cfg)); err == nil && got == a {
				return va.GetNoTrack()
			}
		}
	}
	return false
}

// firewallLocked returns the firewall, making it if needed; nil if it
// cannot be made (logged).
func (e *Engine) firewallLocked(ctx context.Context) VIPFirewall {
	na := &e.noAccept
	if na.fw != nil || na.factory == nil {
		return na.fw
	}
	fw, err := na.factory(ctx, na.cfg)
	if err != nil {
		e.log.Error("no_accept and VMAC rules not enforced: cannot set up the nftables table", "table", na.cfg.Table, "err", err)
		return nil
	}
	na.fw, na.fwCfg = fw, na.cfg
	return fw
}

// blockLocked blocks the addresses of list that a non-accepting master
// holds, before they are added.
func (e *Engine) blockLocked(ctx context.Context, in *instance, list []netstate.Address) {
	if !in.needsNoAccept() || e.noAccept.factory == nil || in.m.State() != vrrp.StateMaster {
		return
	}
	want := map[netstate.Address]netstate.BlockedAddr{}
	for _, a := range list {
		want[a] = e.blockedAddr(in, a)
	}
	e.changeBlockedLocked(ctx, in, want, nil)
}

// unblockLocked unblocks what the instance blocked for the addresses of
// list, after they are removed.
func (e *Engine) unblockLocked(ctx context.Context, in *instance, list []netstate.Address) {
	held := e.noAccept.held[in]
	if len(held) == 0 {
		return
	}
	var gone []netstate.Address
	for _, a := range list {
		if _, ok := held[a]; ok {
			gone = append(gone, a)
		}
	}
	e.changeBlockedLocked(ctx, in, nil, gone)
}

// changeBlockedLocked blocks add and then unblocks the instance's entries
// for gone, in one firewall transaction each, counting what other
// instances block too. What fails is logged, and not recorded as done.
func (e *Engine) changeBlockedLocked(ctx context.Context, in *instance, add map[netstate.Address]netstate.BlockedAddr, gone []netstate.Address) {
	na := &e.noAccept
	held := na.held[in]
	if held == nil {
		held = map[netstate.Address]netstate.BlockedAddr{}
		na.held[in] = held
	}
	defer func() {
		if len(held) == 0 {
			delete(na.held, in)
		}
	}()
	var newAddrs []netstate.Address
	var block []netstate.BlockedAddr
	for a, b := range add {
		if _, ok := held[a]; ok {
			continue
		}
		newAddrs = append(newAddrs, a)
		if na.refs[b] == 0 && !containsBlocked(block, b) {
			block = append(block, b)
		}
	}
	if len(block) > 0 {
		fw := e.firewallLocked(ctx)
		var err error
		if fw == nil {
			err = errors.New("no firewall")
		} else {
			err = fw.Block(ctx, block...)
		}
		if err != nil {
			e.log.Error("no_accept: blocking virtual addresses", "instance", in.name(), "err", err)
			newAddrs = nil
		}
	}
	for _, a := range newAddrs {
		held[a] = add[a]
		na.refs[add[a]]++
	}
	var unblock []netstate.BlockedAddr
	for _, a := range gone {
		b, ok := held[a]
		if !ok {
			continue
		}
		if na.refs[b] == 1 && !containsBlocked(unblock, b) {
			unblock = append(unblock, b)
		}
	}
	if len(unblock) > 0 && na.fw != nil {
		if err := na.fw.Unblock(ctx, unblock...); err != nil {
			e.log.Error("no_accept: unblocking virtual addresses", "instance", in.name(), "err", err)
			return // kept, to be retried at the next apply
		}
	}
	for _, a := range gone {
		b, ok := held[a]
		if !ok {
			continue
		}
		delete(held, a)
		if na.refs[b]--; na.refs[b] <= 0 {
			delete(na.refs, b)
		}
	}
}

func containsBlocked(list []netstate.BlockedAddr, b netstate.BlockedAddr) bool {
	for _, x := range list {
		if x == b {
			return true
		}
	}
	return false
}

// applyNoAcceptLocked takes the snapshot's nftables global_defs and makes
// the firewall match every instance: a reload may have changed accept,
// ownership, dont_track_primary, no_track or nftables_ifindex of a running
// master. It runs after the in-place changes and before new instances
// start. At the first snapshot it removes a table a crashed vrrpd left even
// if no instance needs one now.
func (e *Engine) applyNoAcceptLocked(snap *pb.ConfigSnapshot) {
	na := &e.noAccept
	if na.factory == nil {
		return
	}
	g := snap.GetGlobal()
	cfg := FirewallConfig{Table: netstate.DefaultNFTTable, Priority: netstate.DefaultNFTPriority, Counters: g.GetNftablesCounters()}
	if t := g.GetNftablesTable(); t != "" { // a snapshot that is not from pkg/snapshot has neither
		cfg.Table, cfg.Priority = t, g.GetNftablesPriority()
	}
	na.cfg, na.ifindex = cfg, g.GetNftablesIfindex()
	ctx, cancel := context.WithTimeout(context.Background(), addressTimeout)
	defer cancel()
	first := !na.swept
	na.swept = true
	if na.fw != nil && na.fwCfg != cfg {
		e.replaceFirewallLocked(ctx)
	}
	if first && na.fw == nil {
		e.sweepFirewallLocked(ctx, snap)
	}
	live := map[*instance]bool{}
	for _, in := range e.order {
		live[in] = true
		want := map[netstate.Address]netstate.BlockedAddr{}
		if in.needsNoAccept() && in.m.State() == vrrp.StateMaster {
			for _, a := range in.addrs {
				want[a] = e.blockedAddr(in, a)
			}
		}
		var gone []netstate.Address
		for a, b := range na.held[in] {
			if w, ok := want[a]; !ok || w != b {
				gone = append(gone, a)
			}
		}
		e.changeBlockedLocked(ctx, in, nil, gone) // the stale keys first: a changed key has the same address
		e.changeBlockedLocked(ctx, in, want, nil)
	}
	for in, held := range na.held {
		if !live[in] { // stopped without unblocking (cannot happen; be safe)
			var gone []netstate.Address
			for a := range held {
				gone = append(gone, a)
			}
			e.changeBlockedLocked(ctx, in, nil, gone)
		}
	}
}

// sweepFirewallLocked removes what a crashed vrrpd left: making the firewall
// does. It is kept when an instance of the snapshot may need it: one
// without accept, or with use_vmac (keepalived uses nftables for either,
// vrrp.c vrrp_complete_instance: "use_vmac or no_accept/strict specified,
// but no firewall configured - using nftables").
func (e *Engine) sweepFirewallLocked(ctx context.Context, snap *pb.ConfigSnapshot) {
	na := &e.noAccept
	need := false
	for _, c := range snap.GetInstances() {
		need = need || (!c.GetAccept() && c.GetPriority() != 255) || c.GetUseVmac()
	}
	if need {
		e.firewallLocked(ctx)
		return
	}
	fw, err := na.factory(ctx, na.cfg)
	if err != nil {
		e.log.Debug("no nftables table of an earlier vrrpd removed", "table", na.cfg.Table, "err", err)
		return
	}
	if err := fw.Close(); err != nil {
		e.log.Warn("closing the nftables firewall", "err", err)
	}
}

// replaceFirewallLocked moves what is blocked to a firewall made with the
// new configuration (a reload changed the table name, priority or
// counters; keepalived needs a restart for the name, core/main.c).
func (e *Engine) replaceFirewallLocked(ctx context.Context) {
	na := &e.noAccept
	old, oldCfg := na.fw, na.fwCfg
	na.fw = nil
	if oldCfg.Table == na.cfg.Table {
		// Making the new one would remove the old one's table as stale,
		// and closing the old one after would remove the new one's.
		e.closeFirewall(old)
		old = nil
	}
	fw := e.firewallLocked(ctx)
	var all []netstate.BlockedAddr
	for b := range na.refs {
		all = append(all, b)
	}
	ok := fw != nil
	if ok && len(all) > 0 {
		if err := fw.Block(ctx, all...); err != nil {
			e.log.Error("no_accept: blocking virtual addresses in the new nftables table", "table", na.cfg.Table, "err", err)
			ok = false
		}
	}
	for _, q := range na.quiet {
		if !ok {
			break
		}
		if err := fw.QuietVMAC(ctx, q); err != nil {
			e.log.Error("quieting a VMAC in the new nftables table", "table", na.cfg.Table, "ifindex", q.Index, "err", err)
			ok = false
		}
	}
	switch {
	case ok:
		if old != nil {
			e.closeFirewall(old)
		}
		e.log.Info("nftables firewall reconfigured", "table", na.cfg.Table, "priority", na.cfg.Priority, "counters", na.cfg.Counters)
	case old != nil:
		// Keep blocking with what works; the next apply tries again.
		if fw != nil {
			e.closeFirewall(fw)
		}
		na.fw, na.fwCfg = old, oldCfg
	default:
		// Nothing blocks now: forget it, so the next apply blocks again.
		// A VMAC is quieted again when its instance re-creates it.
		clear(na.held)
		clear(na.refs)
		clear(na.quiet)
	}
}

// closeNoAcceptLocked removes the firewall's tables: at shutdown, after
// every instance stepped down.
func (e *Engine) closeNoAcceptLocked() {
	na := &e.noAccept
	if na.fw != nil {
		e.closeFirewall(na.fw)
		na.fw = nil
	}
	clear(na.held)
	clear(na.refs)
	clear(na.quiet)
}

func (e *Engine) closeFirewall(fw VIPFirewall) {
	if err := fw.Close(); err != nil {
		e.log.Error("removing the no_accept nftables table", "err", err)
	}
}

// quietVMACLocked has the firewall keep the instance's VMAC quiet, replacing
// what it quieted for an earlier VMAC (keepalived's nft_add_vmac with
// old_ifp). A failure is logged: the VMAC works, only noisier.
func (e *Engine) quietVMACLocked(ctx context.Context, in *instance, q netstate.QuietVMAC) {
	na := &e.noAccept
	if na.factory == nil {
		return
	}
	old, had := na.quiet[in]
	if had && old == q {
		return
	}
	fw := e.firewallLocked(ctx)
	if fw == nil {
		return // logged
	}
	if had && old.Index != q.Index {
		e.unquietVMACLocked(ctx, in)
	}
	if err := fw.QuietVMAC(ctx, q); err != nil {
		e.log.Error("VMAC: cannot keep its IGMP/MLD reports and router solicitations off the virtual MAC",
			"instance", in.name(), "ifindex", q.Index, "err", err)
		return
	}
	na.quiet[in] = q
}

// unquietVMACLocked removes what quietVMACLocked set up for the instance.
func (e *Engine) unquietVMACLocked(ctx context.Context, in *instance) {
	na := &e.noAccept
	q, ok := na.quiet[in]
	if !ok {
		return
	}
	delete(na.quiet, in)
	if na.fw == nil {
		return
	}
	if err := na.fw.UnquietVMAC(ctx, q.Index); err != nil {
		e.log.Error("VMAC: removing its nftables entries", "instance", in.name(), "ifindex", q.Index, "err", err)
	}
}
