package vrrpd

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/netstate"
	"github.com/vrrpkit/vrrpkit/pkg/vrrp"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// keepalived's gratuitous ARP defaults (vrrp_garp_master_delay 5,
// vrrp_garp_master_repeat 5), used when a snapshot leaves them unset.
const (
	defaultGarpDelay  = 5 * time.Second
	defaultGarpRepeat = 5
)

// instance is one vrrp_instance at run time: its state machine and what
// the engine needs to carry out the machine's actions. Guarded by the
// engine's mu.
type instance struct {
	cfg    *pb.VrrpInstance
	family int
	vrid   uint8
	m      *vrrp.Machine
	checks vrrp.ReceiveChecks
	// Other routers heard on the VRID (peers.go), most recent last heard.
	peers []*peerRecord

	sock *socket // nil while the interface is missing
	src  netip.Addr
	dsts []netip.Addr // the unicast peers; empty for multicast
	// sendTo is where adverts go: the peers, or the socket's group. Kept so
	// that sending allocates nothing.
	sendTo []netip.Addr
	vips   []netip.Addr // advertised (virtual_ipaddress, not _excluded)
	// addrs are every address the instance holds as master.
	addrs []netstate.Address
	// routes and rules are held as master (routes.go); vmac is the
	// use_vmac interface while the instance runs (vmac.go).
	routes []netstate.Route
	rules  []netstate.Rule
	vmac   *vmacState

	pkt  vrrp.Packet // advert template; Priority is set per send
	obuf []byte      // encoded advert, reused

	masterAddr netip.Addr
	stateSince time.Time
	linkUp     bool

	// Tracking (tracking.go). trackers are the instance's own and its sync
	// group's; effects and details are their last evaluation, index for
	// index. ifFault is the fault of the instance's own interface ("" none);
	// faults every current fault reason, the group's included; faulted
	// whether the state machine was told to be in FAULT, and lastFaults
	// why (for the transition out of it).
	trackers   []vrrp.Tracker
	effects    []vrrp.TrackEffect
	details    []trackDetail
	group      *syncGroup
	ifFault    string
	faults     []string
	lastFaults []string
	faulted    bool
	// reason, when set, words the next transition instead of the machine's
	// own account (e.g. a resumed master).
	reason string

	// garp is the next round of the series that follows becoming master:
	// the delayed second round, then (with garp_master_refresh) periodic
	// refresh rounds. garpOnce is a one-off second round of a re-announce
	// (vrrp.ActionAnnounce).
	garp, garpOnce garpRound

	counters counters

	// Position in the engine's deadline heap (-1: not in it) and the
	// deadline it is filed under.
	heapIndex int
	due       time.Time
	// heardFrom and heardPrio are the source and priority of the advert
	// being handled, for the events its actions publish.
	heardFrom netip.Addr
	heardPrio uint8
	// initPending: its only faults are weight-0 trackers with no result
	// yet; holdInit: it is kept in INIT for that reason, not yet started.
	initPending, holdInit bool
}

// garpRound is a scheduled round of gratuitous ARP / unsolicited NA.
type garpRound struct {
	at     time.Time // zero: none
	repeat int       // messages per address
}

func (g garpRound) due(now time.Time) bool { return !g.at.IsZero() && !now.Before(g.at) }

// counters are an instance's monotonic counters; plain fields, so that
// counting on the packet path allocates nothing.
type counters struct {
	rxAdverts, txAdverts, rxPrio0, txPrio0   uint64
	becameMaster, releasedMaster, sendErrors uint64
	otherMaster                              uint64 // peers.go
	drops                                    [vrrp.NumDropReasons]uint64
}

func (in *instance) drop(r vrrp.DropReason) { in.counters.drops[r]++ }

// u8 range-checks a snapshot's uint32 that the wire carries in 8 bits.
func u8(field string, v uint32, lo uint32) (uint8, error) {
	if v < lo || v > 255 {
		return 0, fmt.Errorf("%s %d out of range %d..255", field, v, lo)
	}
	return uint8(v), nil
}

// newInstance builds an instance from its configuration, or says what in
// it cannot run.
func newInstance(cfg *pb.VrrpInstance) (*instance, error) {
	in := &instance{cfg: cfg, family: 4, heapIndex: -1}
	if cfg.GetIpv6() {
		in.family = 6
	}
	var err error
	if in.vrid, err = u8("virtual_router_id", cfg.GetVrid(), 1); err != nil {
		return nil, err
	}
	prio, err := u8("priority", cfg.GetPriority(), 1)
	if err != nil {
		return nil, err
	}
	version, err := u8("version", cfg.GetVersion(), 2)
	if err != nil {
		return nil, err
	}
	if cfg.GetInterface() == "" {
		return nil, fmt.Errorf("no interface")
	}
	if err := checkVMAC(cfg, in.vrid); err != nil { // vmac.go
		return nil, err
	}
	if err := in.setAddresses(cfg); err != nil {
		return nil, err
	}
	if err := in.setRoutes(cfg); err != nil { // routes.go
		return nil, err
	}
	for _, p := range cfg.GetUnicastPeer() {
		a, err := netip.ParseAddr(p)
		if err != nil {
			return nil, fmt.Errorf("unicast_peer %q: %w", p, err)
		}
		in.dsts = append(in.dsts, a)
	}
	if s := cfg.GetUnicastSrcIp(); s != "" {
		if _, err := netip.ParseAddr(s); err != nil {
			return nil, fmt.Errorf("unicast_src_ip %q: %w", s, err)
		}
	}
	var authType uint8
	var authData [8]byte
	if cfg.GetAuthType() == pb.AuthType_AUTH_TYPE_PASS && version == 2 {
		authType = vrrp.AuthPass
		copy(authData[:], cfg.GetAuthPass())
	}
	in.checks = vrrp.ReceiveChecks{
		Version: version, Unicast: len(in.dsts) > 0,
		AuthType: authType, AuthData: authData,
		NumAddrs: len(in.vips), SkipAddrCheck: cfg.GetSkipCheckAdvAddr(),
	}
	in.pkt = vrrp.Packet{
		Version:           version,
		Type:              vrrp.TypeAdvertisement,
		VRID:              in.vrid,
		MaxAdvertInterval: cfg.GetAdvertInt().AsDuration(),
		AuthType:          authType,
		AuthData:          authData,
		Addrs:             in.vips,
	}
	m, err := vrrp.New(vrrp.Config{
		VRID:                 in.vrid,
		Version:              version,
		Priority:             prio,
		AdvertInterval:       cfg.GetAdvertInt().AsDuration(),
		Preempt:              !cfg.GetNopreempt(),
		PreemptDelay:         cfg.GetPreemptDelay().AsDuration(),
		Accept:               cfg.GetAccept(),
		LowerPrioNoAdvert:    cfg.GetLowerPrioNoAdvert(),
		HigherPrioSendAdvert: cfg.GetHigherPrioSendAdvert(),
	})
	if err != nil {
		return nil, fmt.Errorf("state machine: %w", err)
	}
	in.m = m
	return in, nil
}

// setAddresses fills addrs and vips from cfg.
func (in *instance) setAddresses(cfg *pb.VrrpInstance) error {
	var addrs []netstate.Address
	var vips []netip.Addr
	for _, va := range cfg.GetVirtualIpaddress() {
		a, err := toAddress(va, addrDev(cfg)) // vmac.go: the VMAC with use_vmac
		if err != nil {
			return err
		}
		addrs = append(addrs, a)
		vips = append(vips, a.Prefix.Addr())
	}
	if len(vips) > 255 {
		return fmt.Errorf("%d virtual addresses; an advert carries at most 255", len(vips))
	}
	for _, va := range cfg.GetVirtualIpaddressExcluded() {
		a, err := toAddress(va, addrDev(cfg)) // vmac.go: the VMAC with use_vmac
		if err != nil {
			return err
		}
		addrs = append(addrs, a)
	}
	in.addrs, in.vips = addrs, vips
	return nil
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

// baseprio is the configured priority (newInstance checked its range).
func (in *instance) baseprio() uint8 { return in.m.Config().Priority }

// isOwner: priority 255, the address owner, whose priority tracking never
// moves.
func (in *instance) isOwner() bool { return in.baseprio() == 255 }

// garpMaster returns keepalived's garp_master_repeat and garp_master_delay
// in force.
func (in *instance) garpMaster() (repeat int, delay time.Duration) {
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

// garpAfterMaster is the round after the one sent on becoming master: the
// second round garp_master_delay later (0: none), else the first refresh.
func (in *instance) garpAfterMaster(now time.Time) garpRound {
	repeat, delay := in.garpMaster()
	if delay > 0 {
		return garpRound{at: now.Add(delay), repeat: repeat}
	}
	return in.garpRefresh(now)
}

// garpRefresh is the next garp_master_refresh round (none if 0).
func (in *instance) garpRefresh(now time.Time) garpRound {
	g := in.cfg.GetGarp()
	every := g.GetMasterRefresh().AsDuration()
	if every <= 0 {
		return garpRound{}
	}
	return garpRound{at: now.Add(every), repeat: max(int(g.GetMasterRefreshRepeat()), 1)}
}

// reannounce is a re-announce's first round and its one-off second:
// garp_lower_prio_repeat now and again garp_lower_prio_delay later for a
// lower-priority master heard, garp_master_repeat and garp_master_delay for
// a master that resumed late (it is as good as new to the hosts).
func (in *instance) reannounce(now time.Time, r vrrp.AnnounceReason) (first int, second garpRound) {
	var delay time.Duration
	if r == vrrp.AnnounceLowerPriorityMaster {
		g := in.cfg.GetGarp()
		first, delay = int(g.GetLowerPrioRepeat()), g.GetLowerPrioDelay().AsDuration()
	} else {
		first, delay = in.garpMaster()
	}
	if first > 0 && delay > 0 {
		second = garpRound{at: now.Add(delay), repeat: first}
	}
	return first, second
}

// deadline is the earliest time the instance needs the loop: its state
// machine's timer or its next gratuitous ARP round.
func (in *instance) deadline() time.Time {
	d := in.m.Deadline()
	for _, g := range [2]garpRound{in.garp, in.garpOnce} {
		if !g.at.IsZero() && (d.IsZero() || g.at.Before(d)) {
			d = g.at
		}
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
	in.reason = "resumed as master after a vrrpd restart"
	return nil
}
