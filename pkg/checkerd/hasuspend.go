package checkerd

// ha_suspend: the checkers of a virtual server with ha_suspend run only
// while one of its addresses is configured on this host, as keepalived's
// checker does (check/check_api.c update_checker_activity and
// register_checkers_thread, check/check_data.c: fwmark virtual servers
// cannot use it). A suspended checker does not run and its real server
// keeps its last result; at start, one whose address is absent never runs,
// and its server keeps the state it starts in.
//
// Like keepalived, whose checker learns addresses from the kernel's
// netlink reflector, checkerd follows the host's addresses over rtnetlink,
// which needs no capability (NETLINK_ROUTE lets anyone join its address
// groups): the VIPs vrrpd adds as MASTER, and any address added by other
// means, count alike. Following vrrpd's event stream instead would give
// vrrpd's view of the VIPs only, and would need vrrpd to accept checkerd's
// uid.

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/vrrpkit/vrrpkit/pkg/check"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// hostAddr is one address on one interface.
type hostAddr struct {
	ifindex int
	addr    netip.Addr
}

// addrSource is the host's addresses: the ones there now, and the changes.
type addrSource interface {
	// Watch follows the host's addresses until ctx ends, from one
	// goroutine: for each (re)subscription, reset (the addresses start
	// from none), fn for every address present, listed, then fn for each
	// change.
	Watch(ctx context.Context, reset func(), fn func(a hostAddr, present bool), listed func())
}

// haSuspend is realServers' ha_suspend state, guarded by its mu.
type haSuspend struct {
	src      addrSource // nil: netlinkAddrs
	watching bool
	ready    chan struct{} // closed after the first listing

	vsOf   map[string]*haVS // health_id -> its virtual server, ha_suspend ones only
	vss    []*haVS
	host   map[hostAddr]bool
	counts map[netip.Addr]int // addresses present, by interfaces holding them
	listed bool               // the current subscription's listing is done
}

type haVS struct {
	name   string
	addrs  []netip.Addr
	active bool
}

// haApply takes the snapshot's ha_suspend virtual servers before apply
// starts any checker and, the first time there is one, starts following
// the host's addresses; it waits (bounded) for their first listing, so
// that no checker of an absent address starts.
func (r *realServers) haApply(snap *pb.ConfigSnapshot) {
	vsOf := map[string]*haVS{}
	var vss []*haVS
	for _, vs := range snap.GetVirtualServers() {
		if !vs.GetHaSuspend() {
			continue
		}
		v := &haVS{name: vs.GetName()}
		for _, s := range vs.GetServices() {
			if a, err := netip.ParseAddr(s.GetAddress()); err == nil {
				v.addrs = append(v.addrs, a.Unmap())
			}
		}
		if len(v.addrs) == 0 {
			// fwmark only: keepalived clears ha_suspend (check_data.c).
			continue
		}
		vss = append(vss, v)
		for _, rs := range vs.GetRealServers() {
			vsOf[rs.GetHealthId()] = v
		}
	}
	r.mu.Lock()
	h := &r.ha
	if r.closed {
		r.mu.Unlock()
		return
	}
	h.vsOf, h.vss = vsOf, vss
	if len(vss) > 0 && !h.watching {
		h.watching = true
		h.host, h.counts, h.ready = map[hostAddr]bool{}, map[netip.Addr]int{}, make(chan struct{})
		src := h.src
		if src == nil {
			src = netlinkAddrs{log: r.log}
		}
		ready := h.ready
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			src.Watch(r.ctx, r.haReset, r.haAddress, func() {
				r.haListed()
				select {
				case <-ready:
				default:
					close(ready)
				}
			})
		}()
	}
	ready := h.ready
	r.mu.Unlock()
	if ready == nil {
		return
	}
	select {
	case <-ready:
	case <-time.After(2 * time.Second):
		r.log.Warn("ha_suspend: the host's addresses are not known yet; checkers start suspended")
	case <-r.ctx.Done():
	}
	r.mu.Lock()
	for _, v := range h.vss {
		v.active = h.activeLocked(v)
	}
	r.mu.Unlock()
}

func (r *realServers) haReset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.ha.host)
	clear(r.ha.counts)
	r.ha.listed = false
}

// haListed: a listing is complete; what it no longer holds is gone.
func (r *realServers) haListed() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ha.listed = true
	r.haRecomputeLocked()
}

func (h *haSuspend) activeLocked(v *haVS) bool {
	for _, a := range v.addrs {
		if h.counts[a] > 0 {
			return true
		}
	}
	return false
}

// haSuspendedLocked reports whether the checkers of server id are
// suspended now. r.mu is held.
func (r *realServers) haSuspendedLocked(id string) bool {
	v := r.ha.vsOf[id]
	return v != nil && !v.active
}

// haAddress follows one address change.
func (r *realServers) haAddress(a hostAddr, present bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := &r.ha
	if r.closed || h.host[a] == present {
		return
	}
	if present {
		h.host[a] = true
		h.counts[a.addr]++
	} else {
		delete(h.host, a)
		if h.counts[a.addr]--; h.counts[a.addr] <= 0 {
			delete(h.counts, a.addr)
		}
	}
	if h.listed {
		r.haRecomputeLocked()
	}
}

// haRecomputeLocked sets each virtual server's state from the addresses,
// and suspends or resumes checkers when one changed. r.mu is held.
func (r *realServers) haRecomputeLocked() {
	if r.closed {
		return
	}
	changed := false
	for _, v := range r.ha.vss {
		if act := r.ha.activeLocked(v); act != v.active {
			v.active, changed = act, true
			r.log.Info("ha_suspend: virtual server address", "virtual_server", v.name, "on_this_host", act)
		}
	}
	if changed {
		r.haFollowLocked()
	}
}

// haFollowLocked suspends or resumes every checker to match its virtual
// server's state; after an apply it also catches a reload that only
// changed ha_suspend. r.mu is held.
func (r *realServers) haFollowLocked() {
	for id, s := range r.servers {
		suspend := r.haSuspendedLocked(id)
		for i, c := range s.checks {
			if c.sc.Err != nil {
				continue
			}
			running := c.task != nil
			switch {
			case suspend && running:
				// The stopped task's late reports go to the old rsCheck,
				// which report ignores: the result stands.
				c.task.Cancel()
				// Its attempt in flight ends in its own time (bounded by
				// its timeout); close waits for it with the rest.
				r.wg.Add(1)
				go func(t *check.Task) { defer r.wg.Done(); t.Wait() }(c.task)
				nc := &rsCheck{sc: c.sc, ran: c.ran, last: c.last}
				nc.lastCheck.Store(c.lastCheck.Load())
				s.checks[i] = nc
				r.log.Info("Suspending healthchecker", "real_server", id, "checker", c.sc.Type,
					"reason", "ha_suspend: no address of the virtual server on this host")
			case !suspend && !running:
				r.haRunLocked(s, c)
				r.log.Info("Activating healthchecker", "real_server", id, "checker", c.sc.Type)
			}
		}
	}
}

// haFollow is haFollowLocked after an apply.
func (r *realServers) haFollow() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.haFollowLocked()
	}
}

// haRunLocked starts a suspended checker, as startLocked starts one.
func (r *realServers) haRunLocked(s *rsServer, c *rsCheck) { r.runLocked(s, c) }

// netlinkAddrs is the host's addresses over rtnetlink.
type netlinkAddrs struct{ log *slog.Logger }

func (n netlinkAddrs) Watch(ctx context.Context, reset func(), fn func(hostAddr, bool), listed func()) {
	for ctx.Err() == nil {
		n.watchOnce(ctx, reset, fn, listed)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// watchOnce subscribes before listing, so no change falls between the two;
// the changes queued meanwhile replay in order over the listing.
func (n netlinkAddrs) watchOnce(ctx context.Context, reset func(), fn func(hostAddr, bool), listed func()) {
	ch := make(chan netlink.AddrUpdate, 256)
	done := make(chan struct{})
	defer close(done)
	err := netlink.AddrSubscribeWithOptions(ch, done, netlink.AddrSubscribeOptions{
		ErrorCallback: func(err error) {
			if ctx.Err() == nil { // closing the subscription at stop fails its read
				n.log.Warn("ha_suspend: address watch", "err", err)
			}
		},
	})
	if err != nil {
		n.log.Error("ha_suspend: subscribing to address changes", "err", err)
		return
	}
	list, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		n.log.Error("ha_suspend: listing addresses", "err", err)
		return
	}
	reset()
	for _, a := range list {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			fn(hostAddr{ifindex: a.LinkIndex, addr: ip.Unmap()}, true)
		}
	}
	listed()
	for {
		select {
		case <-ctx.Done():
			return
		case u, ok := <-ch:
			if !ok {
				return // an error ended the subscription: resubscribe
			}
			if ip, ok := netip.AddrFromSlice(u.LinkAddress.IP); ok {
				fn(hostAddr{ifindex: u.LinkIndex, addr: ip.Unmap()}, u.NewAddr)
			}
		}
	}
}
