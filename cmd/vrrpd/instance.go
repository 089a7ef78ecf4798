package main

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/netstate"
	"github.com/vrrpkit/vrrpkit/pkg/vrrp"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// keepalived's gratuitous ARP defaults (vrrp_garp_master_delay 5,
// vrrp_garp_master_repeat 5).
const (
	defaultGarpDelay  = 5 * time.Second
	defaultGarpRepeat = 5
)

// instance is one vrrp_instance at run time: its state machine and what
// the engine needs to carry out the machine's actions. The engine's loop
// goroutine owns it.
type instance struct {
	cfg    *pb.VrrpInstance
	family int
	m      *vrrp.Machine

	sock *socket // nil while the interface is missing
	src  netip.Addr
	dsts []netip.Addr // the unicast peers; empty for multicast
	// sendTo is where adverts go: the peers, or the socket's group. Kept so
	// that sending allocates nothing.
	sendTo []netip.Addr
	vips   []netip.Addr // advertised (virtual_ipaddress, not _excluded)
	// addrs are every address the instance holds as master.
	addrs []netstate.Address

	authType uint8
	authData [8]byte

	pkt  vrrp.Packet // advert template; Priority is set per send
	obuf []byte      // encoded advert, reused

	masterAddr netip.Addr
	stateSince time.Time
	linkUp     bool

	// The next gratuitous ARP / NA round as master: the delayed second
	// round, then (with garp_master_refresh) periodic refresh rounds.
	garpAt         time.Time
	garpRefreshing bool

	counters counters

	// Position in the engine's deadline heap (-1: not in it) and the
	// deadline it is filed under.
	heapIndex int
	due       time.Time
}

// newInstance builds an instance from its configuration.
func newInstance(cfg *pb.VrrpInstance) (*instance, error) {
	in := &instance{cfg: cfg, family: 4, heapIndex: -1}
	if cfg.GetIpv6() {
		in.family = 6
	}
	for _, va := range cfg.GetVirtualIpaddress() {
		a, err := toAddress(va, cfg.GetInterface())
		if err != nil {
			return nil, err
		}
		in.addrs = append(in.addrs, a)
		in.vips = append(in.vips, a.Prefix.Addr())
	}
	for _, va := range cfg.GetVirtualIpaddressExcluded() {
		a, err := toAddress(va, cfg.GetInterface())
		if err != nil {
			return nil, err
		}
		in.addrs = append(in.addrs, a)
	}
	for _, p := range cfg.GetUnicastPeer() {
		a, err := netip.ParseAddr(p)
		if err != nil {
			return nil, fmt.Errorf("unicast_peer %q: %w", p, err)
		}
		in.dsts = append(in.dsts, a)
	}
	if cfg.GetAuthType() == pb.AuthType_AUTH_TYPE_PASS && cfg.GetVersion() == 2 {
		in.authType = vrrp.AuthPass
		copy(in.authData[:], cfg.GetAuthPass())
	}
	in.pkt = vrrp.Packet{
		Version:           uint8(cfg.GetVersion()),
		Type:              vrrp.TypeAdvertisement,
		VRID:              uint8(cfg.GetVrid()),
		MaxAdvertInterval: cfg.GetAdvertInt().AsDuration(),
		AuthType:          in.authType,
		AuthData:          in.authData,
		Addrs:             in.vips,
	}
	m, err := vrrp.New(vrrp.Config{
		VRID:           uint8(cfg.GetVrid()),
		Version:        uint8(cfg.GetVersion()),
		Priority:       uint8(cfg.GetPriority()),
		AdvertInterval: cfg.GetAdvertInt().AsDuration(),
		Preempt:        !cfg.GetNopreempt(),
		PreemptDelay:   cfg.GetPreemptDelay().AsDuration(),
		Accept:         cfg.GetAccept(),
	})
	if err != nil {
		return nil, fmt.Errorf("state machine: %w", err)
	}
	in.m = m
	return in, nil
}

func toAddress(va *pb.VirtualAddress, defDev string) (netstate.Address, error) {
	p, err := netip.ParsePrefix(va.GetPrefix())
	if err != nil {
		return netstate.Address{}, fmt.Errorf("virtual address %q: %w", va.GetPrefix(), err)
	}
	a := netstate.Address{Prefix: p, Dev: va.GetDev(), Label: va.GetLabel(), Scope: va.GetScope(), NoDAD: p.Addr().Is6()}
	if a.Dev == "" {
		a.Dev = defDev
	}
	if b := va.GetBroadcast(); b != "" {
		if a.Broadcast, err = netip.ParseAddr(b); err != nil {
			return netstate.Address{}, fmt.Errorf("virtual address %s brd %q: %w", p, b, err)
		}
	}
	return a, nil
}

func (in *instance) name() string { return in.cfg.GetName() }

// counters are an instance's monotonic counters; plain fields, so that
// counting on the packet path allocates nothing.
type counters struct {
	rxAdverts, txAdverts, rxPrio0, txPrio0   uint64
	becameMaster, releasedMaster, sendErrors uint64
	lowerPrioMasterHeard, resumedLate        uint64
	drops                                    [vrrp.NumDropReasons]uint64
}

func (in *instance) drop(r vrrp.DropReason) { in.counters.drops[r]++ }

// garpSettings returns keepalived's garp_master_repeat and
// garp_master_delay in force.
func (in *instance) garpSettings() (repeat int, delay time.Duration) {
	repeat, delay = defaultGarpRepeat, defaultGarpDelay
	if g := in.cfg.GetGarp(); g != nil {
		if g.MasterRepeat != 0 {
			repeat = int(g.MasterRepeat)
		}
		if g.MasterDelay != nil {
			delay = g.MasterDelay.AsDuration()
		}
	}
	return repeat, delay
}

// garpRefresh returns garp_master_refresh (0: none) and
// garp_master_refresh_repeat.
func (in *instance) garpRefresh() (every time.Duration, repeat int) {
	g := in.cfg.GetGarp()
	repeat = max(int(g.GetMasterRefreshRepeat()), 1)
	return g.GetMasterRefresh().AsDuration(), repeat
}

// scheduleGarp arms the next round after one was sent at now.
func (in *instance) scheduleGarp(now time.Time) {
	in.garpAt = time.Time{}
	if every, _ := in.garpRefresh(); every > 0 {
		in.garpRefreshing = true
		in.garpAt = now.Add(every)
	}
}

// deadline is the earliest time the instance needs the loop: its state
// machine's timer or its next gratuitous ARP round.
func (in *instance) deadline() time.Time {
	d := in.m.Deadline()
	if !in.garpAt.IsZero() && (d.IsZero() || in.garpAt.Before(d)) {
		d = in.garpAt
	}
	return d
}

// resumeAsMaster makes the instance start as master: a restarted vrrpd
// taking back what its predecessor held.
func (in *instance) resumeAsMaster() error {
	cfg := in.m.Config()
	cfg.StartAsMaster = true
	m, err := vrrp.New(cfg)
	if err != nil {
		return err
	}
	in.m = m
	return nil
}
