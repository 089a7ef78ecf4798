// Package vrrpd is the VRRP engine: it runs every vrrp_instance of a
// configuration snapshot, each a pure state machine (pkg/vrrp), and carries
// out what the machines ask for: adverts on raw sockets, virtual addresses,
// gratuitous ARP / unsolicited NA. It applies new snapshots as a plan of
// what changed, reports status, and publishes an event stream of
// transitions and address changes (design.md, "Processes" and "Flows").
//
// The kernel and the clock are behind the small interfaces of deps.go, so
// the loop, the receive path, apply and status are tested without root.
package vrrpd

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/netstate"
	"github.com/vrrpkit/vrrpkit/pkg/vrrp"
	"github.com/vrrpkit/vrrpkit/pkg/vrrpnet"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// Errors Apply returns; the gRPC server maps them to status codes.
var (
	// ErrOldGeneration: the snapshot is older than the running one.
	ErrOldGeneration = errors.New("vrrpd: snapshot generation is older than the running one")
	// ErrStopped: the engine has shut down.
	ErrStopped = errors.New("vrrpd: engine stopped")
)

// InvalidSnapshotError says what in a snapshot cannot be run. Nothing of
// such a snapshot was applied.
type InvalidSnapshotError struct {
	Instance, DefinedAt string
	Err                 error
}

func (e *InvalidSnapshotError) Error() string {
	return fmt.Sprintf("instance %s (%s): %v", e.Instance, e.DefinedAt, e.Err)
}

func (e *InvalidSnapshotError) Unwrap() error { return e.Err }

// Options configure New. Nil fields get the running system's
// implementation, except Log, which discards.
type Options struct {
	Log       *slog.Logger
	Clock     Clock
	Addresses Addresses
	Links     Links
	Network   Network
	VMACs     VMACs           // use_vmac interfaces (vmac.go)
	Routes    Routes          // virtual routes and rules (routes.go)
	Firewall  FirewallFactory // no_accept; nil: nftables, none with substitute Addresses (noaccept.go)
	LVS       LVSOpener       // IPVS; nil: lvs.OpenKernel, none with substitute Addresses (lvs.go)
	// LVSHealthWait bounds how long IPVS waits for checkerd's health
	// snapshot of a generation before programming checked real servers
	// from the start rules (lvs.go); 0: no wait, for an engine without
	// checkerd. vrrpdcmd uses DefaultLVSHealthWait.
	LVSHealthWait time.Duration
	Scripts       ScriptRunner // quorum_up / quorum_down via the supervisor; nil: not run (quorum.go)
	// LVSGlobals: the IPVS sync daemon, timeouts and flushes; nil:
	// lvs.OpenGlobals, none with substitute LVS or Addresses (lvs_sync.go).
	LVSGlobals LVSGlobalsOpener
}

// Engine runs the VRRP instances. All instance state is guarded by mu:
// socket readers parse each advert and hand it to its state machine
// themselves, so a packet costs one wake-up; Apply, Status and link changes
// run on their callers' goroutines; the loop (Run) only sleeps until the
// earliest deadline and fires the timers, and is woken when a deadline
// moves earlier.
type Engine struct {
	log   *slog.Logger
	clock Clock
	addrs Addresses
	links Links
	net   Network

	vmacs  VMACs  // vmac.go
	routes Routes // routes.go

	noAccept noAccept // no_accept firewall (noaccept.go); guarded by mu

	mu      sync.Mutex
	sleeper Sleeper   // set by Run; guarded by mu
	armed   time.Time // the deadline the loop sleeps until; guarded by mu
	stopped bool
	wg      sync.WaitGroup // socket readers, the link watcher, the GARP pacers
	pacers  map[Announcer]*garpPacer
	// applyMu serializes Apply: it releases mu while the old link watcher
	// stops.
	applyMu sync.Mutex

	// Guarded by mu.
	deadlines  deadlineHeap
	instances  map[string]*instance
	order      []*instance // snapshot order
	socks      map[sockKey]*socket
	generation uint64
	actions    []vrrp.Action
	watchStop  context.CancelFunc
	watchDone  chan struct{}
	subs       map[*Subscription]struct{}
	seq        uint64

	// Tracking (tracking.go): checkerd's last results, the state of the
	// tracked interfaces, the scripts that start failed, the sync groups.
	health     map[trackKey]healthResult
	linkStates map[string]netstate.LinkState
	initFail   map[string]bool
	groups     map[string]*syncGroup

	statics staticSet // statics.go: static_ipaddress/_routes/_rules; guarded by mu

	lvs lvsRun // lvs.go: IPVS
	// rsResults: real servers' last results by health_id, for status
	// (lvs_status.go).
	rsResults map[string]*pb.TrackerResult

	quorum  *quorumRun // quorum.go: quorum_up / quorum_down
	lvsSync lvsSyncRun // lvs_sync.go: IPVS sync daemon, timeouts, flushes
}

type sockKey struct {
	iface   string
	family  int
	unicast bool
	local   netip.Addr
	group   netip.Addr // multicast: mcast_group, or invalid for RFC 5798's
}

// socket is one raw VRRP socket and the instances it serves, by VRID.
type socket struct {
	key    sockKey
	conn   Conn
	ann    Announcer
	byVRID map[uint8][]*instance
	closed bool // guarded by mu: its reader drops what it still reads
	// drops of packets no instance could be charged with.
	unknownVRID uint64
	// badPackets are too short to name a VRID; counted by the reader.
	badPackets atomic.Uint64
}

// rxEvent is one received advert, already parsed and checksummed by the
// reader; a value type so the receive path allocates nothing.
type rxEvent struct {
	sock     *socket
	rx       vrrp.Received
	drop     vrrp.DropReason
	vrid     uint8
	interval time.Duration
	at       time.Time
}

// New returns an engine with no instances; Apply gives it some, Run drives
// their timers.
func New(o Options) *Engine {
	e := &Engine{
		log:       o.Log,
		clock:     o.Clock,
		addrs:     o.Addresses,
		links:     o.Links,
		net:       o.Network,
		instances: map[string]*instance{},
		socks:     map[sockKey]*socket{},
		subs:      map[*Subscription]struct{}{},

		health:     map[trackKey]healthResult{},
		linkStates: map[string]netstate.LinkState{},
		initFail:   map[string]bool{},
		groups:     map[string]*syncGroup{},
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.clock == nil {
		e.clock = SystemClock{Log: e.log}
	}
	if e.addrs == nil {
		e.addrs = netstate.New(nil, e.log)
	}
	if e.links == nil {
		e.links = netstate.NewLinks(e.log)
	}
	if e.net == nil {
		e.net = OSNetwork{}
	}
	e.initVMACRoutes(o) // routes.go
	e.initNoAccept(o)   // noaccept.go
	e.initLVS(o)        // lvs.go
	e.initQuorum(o)     // quorum.go
	e.initLVSSync(o)    // lvs_sync.go
	return e
}

// Run drives the instances' timers until ctx ends; then every instance
// steps down (a master sends priority 0 and removes its VIPs), the sockets
// close, and Run returns once every goroutine of the engine has ended.
func (e *Engine) Run(ctx context.Context) error {
	sl, err := e.clock.NewSleeper()
	if err != nil {
		return err
	}
	defer sl.Close()
	e.mu.Lock()
	e.sleeper = sl
	e.mu.Unlock()
	stopWake := context.AfterFunc(ctx, sl.Wake)
	defer stopWake()
	defer e.shutdown()
	for {
		e.mu.Lock()
		if ctx.Err() != nil {
			e.mu.Unlock()
			return nil
		}
		e.fireTimersLocked()
		d := e.nextDeadline()
		precise := e.takeoverNextLocked()
		e.armed = d
		e.mu.Unlock()
		sl.Sleep(d, precise)
	}
}

// takeoverNextLocked reports whether the earliest deadline is a backup's
// Master_Down_Timer: a takeover, if no advert comes first.
func (e *Engine) takeoverNextLocked() bool {
	if len(e.deadlines) == 0 {
		return false
	}
	in := e.deadlines[0]
	return in.m.State() == vrrp.StateBackup && in.due.Equal(in.m.Deadline())
}

// wakeIfEarlierLocked wakes the loop when the earliest deadline is now
// before the one it sleeps until.
func (e *Engine) wakeIfEarlierLocked() {
	if e.sleeper == nil {
		return
	}
	if d := e.nextDeadline(); !d.IsZero() && (e.armed.IsZero() || d.Before(e.armed)) {
		e.armed = d
		e.sleeper.Wake()
	}
}

// catchUpBudget bounds how long a due down timer waits for adverts still in
// the sockets to be read.
const catchUpBudget = 20 * time.Millisecond

func (e *Engine) nextDeadline() time.Time {
	if len(e.deadlines) == 0 {
		return time.Time{}
	}
	return e.deadlines[0].due
}

// fireTimersLocked runs every timer that is due, in deadline order.
func (e *Engine) fireTimersLocked() {
	now := e.clock.Now()
	caughtUp := false
	// Each instance is handled at most once per call; its new deadline is
	// in the future.
	for n := len(e.deadlines); n > 0 && len(e.deadlines) > 0 && !e.deadlines[0].due.After(now); n-- {
		in := e.deadlines[0]
		t := in.m.Deadline()
		timerDue := !t.IsZero() && !now.Before(t)
		if timerDue && !caughtUp && in.m.State() == vrrp.StateBackup {
			caughtUp = true
			if e.catchUpLocked() {
				// Adverts that arrived in time were waiting to be read (the
				// process was stalled); they may have pushed this and other
				// down timers out: look at the heap again.
				now = e.clock.Now()
				n++ // this instance was not handled
				continue
			}
		}
		switch {
		case timerDue && in.m.State() == vrrp.StateBackup && !e.syncAllowsMasterLocked(in):
			// vrrp_sync_can_goto_master: wait for the rest of the group.
			in.m.HoldBackup(now)
		case timerDue:
			e.do(in, in.m.Timer(now, e.actions[:0]), now)
		}
		if in.garp.due(now) {
			e.announce(in, in.addrs, in.garp.repeat)
			in.garp = in.garpRefresh(now)
		}
		if in.garpOnce.due(now) {
			e.announce(in, in.addrs, in.garpOnce.repeat)
			in.garpOnce = garpRound{}
		}
		e.reschedule(in)
	}
}

// catchUpLocked lets the readers handle the adverts still in the sockets
// before a backup may declare its master down: after a stall of this
// process they are there, and they arrived in time. It releases mu while
// the readers work, and reports whether it waited for any. The budget is
// real time: it is about real readers.
func (e *Engine) catchUpLocked() bool {
	waited := false
	deadline := time.Now().Add(catchUpBudget)
	for {
		pending := false
		for _, s := range e.socks {
			if s.conn.Pending() {
				pending = true
				break
			}
		}
		if !pending || time.Now().After(deadline) {
			return waited
		}
		waited = true
		e.mu.Unlock()
		time.Sleep(100 * time.Microsecond)
		e.mu.Lock()
	}
}

// reschedule files the instance under its current deadline.
func (e *Engine) reschedule(in *instance) {
	d := in.deadline()
	switch {
	case d.IsZero() && in.heapIndex >= 0:
		heap.Remove(&e.deadlines, in.heapIndex)
	case d.IsZero():
	case in.heapIndex >= 0:
		in.due = d
		heap.Fix(&e.deadlines, in.heapIndex)
	default:
		in.due = d
		heap.Push(&e.deadlines, in)
	}
}

// deadlineHeap orders instances by due time (container/heap).
type deadlineHeap []*instance

func (h deadlineHeap) Len() int           { return len(h) }
func (h deadlineHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h deadlineHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIndex, h[j].heapIndex = i, j
}
func (h *deadlineHeap) Push(x any) {
	in := x.(*instance)
	in.heapIndex = len(*h)
	*h = append(*h, in)
}
func (h *deadlineHeap) Pop() any {
	old := *h
	in := old[len(old)-1]
	old[len(old)-1] = nil
	in.heapIndex = -1
	*h = old[:len(old)-1]
	return in
}

// handleRxLocked finds the advert's instance, applies its receive checks
// (vrrp.ReceiveChecks), counts what it drops, and feeds the rest to the
// state machine.
func (e *Engine) handleRxLocked(ev *rxEvent) {
	cands := ev.sock.byVRID[ev.vrid]
	if len(cands) == 0 {
		ev.sock.unknownVRID++
		return
	}
	var in *instance
	for _, c := range cands {
		if len(c.dsts) == 0 || !ev.sock.key.unicast || containsAddr(c.dsts, ev.rx.Src) {
			in = c
			break
		}
	}
	if in == nil {
		cands[0].drop(vrrp.DropUnknownPeer)
		cands[0].droppedLocked(ev.rx.Src, vrrp.DropUnknownPeer, ev.at) // peers.go
		return
	}
	if ev.rx.Src == in.src {
		return // our own advert, looped back by a unicast peer list
	}
	if ev.drop != 0 {
		in.drop(ev.drop)
		in.droppedLocked(ev.rx.Src, ev.drop, ev.at)
		return
	}
	drop, mismatch := in.checks.Check(&ev.rx)
	if drop != 0 {
		in.drop(drop)
		in.droppedLocked(ev.rx.Src, drop, ev.at)
		return
	}
	if mismatch != 0 {
		in.drop(mismatch) // counted, and accepted as keepalived does
	}
	in.heardLocked(&ev.rx, ev.interval, mismatch, ev.at)
	in.counters.rxAdverts++
	if ev.rx.Priority == 0 {
		in.counters.rxPrio0++
	}
	if in.m.State() != vrrp.StateMaster && ev.rx.Priority != 0 {
		in.masterAddr = ev.rx.Src
	}
	in.heardFrom, in.heardPrio = ev.rx.Src, ev.rx.Priority
	e.do(in, in.m.ReceiveAdvert(ev.at, vrrp.Advert{Src: ev.rx.Src, Priority: ev.rx.Priority, MaxAdvertInterval: ev.interval}, e.actions[:0]), ev.at)
}

func containsAddr(list []netip.Addr, a netip.Addr) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

// do carries out a state machine's actions, in order.
func (e *Engine) do(in *instance, acts []vrrp.Action, now time.Time) {
	e.actions = acts[:0]
	defer e.reschedule(in)
	var follow []vrrp.Action // transitions the sync group follows
	defer func() {
		for _, a := range follow {
			e.syncFollowLocked(in, a, now)
		}
	}()
	for _, a := range acts {
		if in.group != nil && a.IsTransition() {
			follow = append(follow, a)
		}
		switch a.Kind {
		case vrrp.ActionSendAdvert:
			e.sendAdvert(in, a.Priority)
		case vrrp.ActionBecomeMaster:
			e.transition(in, a, now)
			e.changeAddresses(in, in.addrs, true)
			e.changeRoutesLocked(in, true) // routes.go
			in.counters.becameMaster++
			in.masterAddr = in.src
			repeat, _ := in.garpMaster()
			e.announce(in, in.addrs, repeat)
			in.garp, in.garpOnce = in.garpAfterMaster(now), garpRound{}
		case vrrp.ActionAnnounce:
			first, second := in.reannounce(now, a.Reason)
			e.log.Info("re-announcing virtual addresses", "instance", in.name(), "reason", a.Reason.String(), "repeat", first)
			e.announce(in, in.addrs, first)
			in.garpOnce = second
			if a.Reason == vrrp.AnnounceLowerPriorityMaster {
				// notify_master_rx_lower_pri and its FIFO line hang off this.
				e.publishLocked(now, &pb.VrrpEvent{Event: &pb.VrrpEvent_LowerPriorityMaster{LowerPriorityMaster: &pb.LowerPriorityMaster{
					Instance: in.name(), From: in.heardFrom.String(), TheirPriority: uint32(in.heardPrio), Priority: uint32(in.m.Priority()),
				}}})
			}
		case vrrp.ActionBecomeBackup, vrrp.ActionEnterFault, vrrp.ActionStop:
			wasMaster := a.From == vrrp.StateMaster
			e.transition(in, a, now)
			in.garp, in.garpOnce = garpRound{}, garpRound{}
			if wasMaster {
				e.changeRoutesLocked(in, false) // routes.go
				e.changeAddresses(in, in.addrs, false)
				in.counters.releasedMaster++
			}
			if a.Kind != vrrp.ActionBecomeBackup {
				in.masterAddr = netip.Addr{}
			}
		}
	}
}

func (e *Engine) transition(in *instance, a vrrp.Action, now time.Time) {
	in.stateSince = now
	reason := in.reason
	if reason == "" {
		reason = transitionReason(a, in)
	}
	in.reason = ""
	e.lvsSyncTransitionLocked(in, a.To) // lvs_sync.go: the sync daemon follows its instance
	e.log.Info("state change", "instance", in.name(), "from", a.From.String(), "to", a.To.String(),
		"priority", in.m.Priority(), "reason", reason)
	e.publishLocked(now, &pb.VrrpEvent{Event: &pb.VrrpEvent_Transition{Transition: &pb.StateTransition{
		Instance: in.name(), From: stateToPB(a.From), To: stateToPB(a.To), Reason: reason, Priority: uint32(in.m.Priority()),
	}}})
}

// transitionReason words why the machine moved, from what it says of it.
func transitionReason(a vrrp.Action, in *instance) string {
	switch a.Kind {
	case vrrp.ActionBecomeMaster:
		switch in.m.Stats().NewMasterReason {
		case vrrp.MasterReasonPriority:
			return "the master sent priority 0"
		case vrrp.MasterReasonPreempted:
			if a.From == vrrp.StateInitialize {
				return "address owner or resumed master at start"
			}
			return "preempted a lower priority master"
		}
		return "master down timer expired"
	case vrrp.ActionBecomeBackup:
		switch a.From {
		case vrrp.StateMaster:
			return "higher priority advert"
		case vrrp.StateFault:
			return "fault cleared"
		}
		return "startup"
	case vrrp.ActionEnterFault:
		if len(in.faults) > 0 {
			return in.faults[0]
		}
		return "interface " + in.cfg.GetInterface() + " down or missing"
	}
	return "shutdown"
}

func (e *Engine) sendAdvert(in *instance, prio uint8) {
	if in.sock == nil || !in.src.IsValid() {
		return
	}
	in.pkt.Priority = prio
	for _, dst := range in.sendTo {
		b, err := in.pkt.AppendBinary(in.obuf[:0], in.src, dst)
		if err != nil {
			e.log.Error("encoding advert", "instance", in.name(), "err", err)
			return
		}
		in.obuf = b
		if err := in.sock.conn.WriteTo(b, in.src, dst); err != nil {
			in.counters.sendErrors++
			e.log.Warn("sending advert", "instance", in.name(), "dst", dst, "err", err)
			continue
		}
		in.counters.txAdverts++
		if prio == 0 {
			in.counters.txPrio0++
		}
	}
}

// addressTimeout bounds one netlink address change.
const addressTimeout = 2 * time.Second

// changeAddresses adds (add) or removes the instance's addresses in list,
// publishing each change that took.
func (e *Engine) changeAddresses(in *instance, list []netstate.Address, add bool) {
	ctx, cancel := context.WithTimeout(context.Background(), addressTimeout)
	defer cancel()
	change, what := e.addrs.Remove, "removing virtual address"
	if add {
		change, what = e.addrs.Add, "adding virtual address"
		e.blockLocked(ctx, in, list) // noaccept.go: no_accept blocks before adding
	}
	for _, a := range list {
		if err := change(ctx, a); err != nil {
			e.log.Error(what, "instance", in.name(), "address", a.String(), "err", err)
			continue
		}
		e.publishAddressLocked(in, a, add)
	}
	if !add {
		e.unblockLocked(ctx, in, list) // noaccept.go: and unblocks after removing
	}
}

// announce sends repeat rounds of gratuitous ARP / unsolicited NA for the
// addresses in list (RFC 5798 §6.4.1, keepalived's garp_*).
func (e *Engine) announce(in *instance, list []netstate.Address, repeat int) {
	ann := in.announcer() // vmac.go: the VMAC's, else the socket's
	if ann == nil {
		return
	}
	if arp, na := in.cfg.GetGarp().GetInterval().AsDuration(), in.cfg.GetGarp().GetNaInterval().AsDuration(); arp > 0 || na > 0 {
		p := e.pacerLocked(ann, arp, na) // garp_pacer.go
		for i := 0; i < repeat; i++ {
			for _, a := range list {
				p.enqueue(a.Prefix.Addr())
			}
		}
		return
	}
	for i := 0; i < repeat; i++ {
		for _, a := range list {
			ip := a.Prefix.Addr()
			var err error
			if ip.Is4() {
				err = ann.GratuitousARP(ip)
			} else {
				err = ann.UnsolicitedNA(ip)
			}
			if err != nil {
				e.log.Warn("announcing address", "instance", in.name(), "addr", ip, "err", err)
			}
		}
	}
}

func (e *Engine) stopInstance(in *instance, now time.Time) {
	e.do(in, in.m.Shutdown(now, e.actions[:0]), now)
	if in.sock != nil {
		e.detach(in)
	}
	e.releaseVMACLocked(in) // vmac.go
}

// startInstance finds the instance's interface and joins it to its socket;
// what is wrong with the interface becomes its ifFault. Apply then
// evaluates tracking and calls the machine's Startup, so that an instance
// starts in FAULT or at its effective priority.
func (e *Engine) startInstance(ctx context.Context, in *instance, now time.Time) {
	in.stateSince = now
	iface := in.cfg.GetInterface()
	ls, err := e.links.LinkByName(iface)
	if err != nil || !ls.Exists {
		e.log.Warn("interface missing; instance is in FAULT until it appears", "instance", in.name(), "interface", iface)
		in.ifFault = "interface " + iface + " missing"
		return
	}
	in.linkUp = ls.Up
	if err := e.attach(ctx, in); err != nil {
		e.log.Error("opening VRRP socket; instance is in FAULT", "instance", in.name(), "err", err)
		in.ifFault = "interface " + iface + ": cannot open the VRRP socket"
		return
	}
	in.ifFault = linkFault(in, ls.Up)
}

// linkFault is the fault of an instance whose interface is up or down:
// none with dont_track_primary (keepalived then ignores the interface's
// state).
func linkFault(in *instance, up bool) string {
	if up || in.cfg.GetDontTrackPrimary() {
		return ""
	}
	return "interface " + in.cfg.GetInterface() + " down"
}

// attach finds the instance's source address and joins it to the socket
// for its interface and family, opening that socket if needed.
func (e *Engine) attach(ctx context.Context, in *instance) error {
	if err := e.ensureVMACLocked(ctx, in); err != nil { // vmac.go
		return err
	}
	iface := in.cfg.GetInterface()
	if s := in.cfg.GetUnicastSrcIp(); s != "" {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("unicast_src_ip %q: %w", s, err)
		}
		in.src = a
	} else {
		a, err := e.net.PrimaryAddr(iface, in.family)
		if err != nil {
			return err
		}
		in.src = a
	}
	iface = in.sockIface() // vmac.go: the VMAC unless vmac_xmit_base
	key := sockKey{iface: iface, family: in.family, unicast: len(in.dsts) > 0}
	if key.unicast {
		key.local = in.src
	} else if g := in.cfg.GetMcastGroup(); g != "" {
		a, err := netip.ParseAddr(g)
		if err != nil {
			return fmt.Errorf("multicast group %q: %w", g, err)
		}
		key.group = a
	}
	s, ok := e.socks[key]
	if !ok {
		conn, err := e.net.Listen(ctx, vrrpnet.Config{Interface: iface, Family: in.family, Unicast: key.unicast, Local: key.local, Group: key.group})
		if err != nil {
			return err
		}
		ann, err := e.net.OpenAnnouncer(ctx, vrrpnet.AnnouncerConfig{Interface: iface})
		if err != nil {
			e.log.Warn("no gratuitous ARP/NA on this interface", "interface", iface, "err", err)
			ann = nil
		}
		s = &socket{key: key, conn: conn, ann: ann, byVRID: map[uint8][]*instance{}}
		e.socks[key] = s
		e.wg.Add(1)
		go e.read(s)
	}
	vrid := in.vrid
	s.byVRID[vrid] = append(s.byVRID[vrid], in)
	in.sock = s
	in.m.SetPrimaryAddr(in.src)
	in.sendTo = in.dsts
	if len(in.dsts) == 0 {
		in.sendTo = []netip.Addr{s.conn.Group()}
	}
	return nil
}

func (e *Engine) detach(in *instance) {
	s := in.sock
	list := s.byVRID[in.vrid]
	for i, x := range list {
		if x == in {
			s.byVRID[in.vrid] = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(s.byVRID[in.vrid]) == 0 {
		delete(s.byVRID, in.vrid)
	}
	in.sock = nil
}

func (e *Engine) closeIdleSockets() {
	for k, s := range e.socks {
		if len(s.byVRID) == 0 {
			e.closeSocket(s)
			delete(e.socks, k)
		}
	}
}

func (e *Engine) closeSocket(s *socket) {
	s.closed = true
	s.conn.Close()
	if s.ann != nil {
		e.stopPacerLocked(s.ann) // garp_pacer.go
		s.ann.Close()
	}
}

// read is a socket's reader goroutine: it validates what it can without the
// instance (length, version, checksum) and hands the advert to its instance.
func (e *Engine) read(s *socket) {
	defer e.wg.Done()
	buf := make([]byte, vrrpnet.ReadBufferSize)
	var pkt vrrp.Packet
	pkt.Addrs = make([]netip.Addr, 0, 255)
	for {
		msg, err := s.conn.ReadFrom(buf)
		ev := rxEvent{sock: s, rx: vrrp.Received{Src: msg.Src, TTL: msg.TTL}, at: arrival(e.clock.Now(), msg.Received)}
		switch {
		case err == nil:
		case errors.Is(err, vrrpnet.ErrTruncated), errors.Is(err, vrrpnet.ErrMalformed):
			// One bad packet: charge it to its VRID if that much arrived,
			// and read on at once; a flood of them must not stall the
			// adverts queued behind.
			if len(msg.Payload) < 2 {
				s.badPackets.Add(1)
				continue
			}
			ev.vrid, ev.drop = msg.Payload[1], vrrp.DropBadLength
			e.deliver(&ev)
			continue
		case errors.Is(err, net.ErrClosed):
			return
		default:
			e.log.Warn("reading VRRP socket", "interface", s.key.iface, "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if err := vrrp.Parse(msg.Payload, msg.Src, msg.Dst, s.key.family == 6, &pkt); err != nil {
			var pe *vrrp.ParseError
			if !errors.As(err, &pe) || len(msg.Payload) < 2 {
				s.badPackets.Add(1)
				continue
			}
			ev.vrid = msg.Payload[1]
			ev.drop = pe.Reason
		} else {
			ev.vrid, ev.interval = pkt.VRID, pkt.MaxAdvertInterval
			ev.rx.Version, ev.rx.Priority = pkt.Version, pkt.Priority
			ev.rx.AuthType, ev.rx.AuthData, ev.rx.NumAddrs = pkt.AuthType, pkt.AuthData, len(pkt.Addrs)
		}
		e.deliver(&ev)
	}
}

// arrival is when a packet arrived, on now's clock: the kernel's stamp
// (vrrpnet.Message.Received, wall clock) moved onto now's monotonic
// reading, so that the Master_Down_Timer runs from the advert's arrival and
// not from when this goroutine was scheduled to read it (RFC 5798 §6.4.2
// resets it "on receipt"). A stamp from the future or more than a second
// old means the wall clock stepped: then now.
func arrival(now, kernel time.Time) time.Time {
	if kernel.IsZero() {
		return now
	}
	d := now.Sub(kernel)
	if d < 0 || d > time.Second {
		return now
	}
	return now.Add(-d)
}

// deliver hands one received advert to its instance, on the reader's
// goroutine.
func (e *Engine) deliver(ev *rxEvent) {
	e.mu.Lock()
	if !ev.sock.closed {
		e.handleRxLocked(ev)
		e.wakeIfEarlierLocked()
	}
	e.mu.Unlock()
}

// restartWatchLocked follows the links the instances use.
func (e *Engine) restartWatchLocked(ctx context.Context) {
	if e.watchStop != nil {
		e.watchStop()
		done := e.watchDone
		// The watcher's callback takes mu: let it finish.
		e.mu.Unlock()
		<-done
		e.mu.Lock()
	}
	names := map[string]bool{}
	for _, in := range e.order {
		names[in.cfg.GetInterface()] = true
	}
	for name := range e.linkStates {
		names[name] = true // track_interface
	}
	list := make([]string, 0, len(names))
	for n := range names {
		list = append(list, n)
	}
	sort.Strings(list)
	if len(list) == 0 {
		// No instance and no track_interface (an LVS-only configuration):
		// nothing to watch.
		e.watchStop, e.watchDone = nil, nil
		return
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	e.watchStop, e.watchDone = cancel, done
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer close(done)
		err := e.links.WatchLinks(wctx, list, func(ls netstate.LinkState) {
			e.mu.Lock()
			defer e.mu.Unlock()
			if wctx.Err() == nil && !e.stopped {
				e.handleLinkLocked(wctx, ls)
				e.wakeIfEarlierLocked()
			}
		})
		if err != nil && wctx.Err() == nil {
			e.log.Error("watching links", "err", err)
		}
	}()
}

// handleLinkLocked moves instances in and out of FAULT as their interface
// or a tracked one comes and goes.
func (e *Engine) handleLinkLocked(ctx context.Context, ls netstate.LinkState) {
	now := e.clock.Now()
	if _, ok := e.linkStates[ls.Name]; ok {
		e.linkStates[ls.Name] = ls
	}
	for _, in := range e.order {
		if in.cfg.GetInterface() != ls.Name {
			continue
		}
		up := ls.Exists && ls.Up
		switch {
		case !ls.Exists:
			in.linkUp = false
			in.ifFault = "interface " + ls.Name + " missing"
		case up && (in.sock == nil || in.linkIndex() != ls.Index):
			if in.sock != nil {
				e.detach(in)
				e.closeIdleSockets()
			}
			if err := e.attach(ctx, in); err != nil {
				e.log.Error("opening VRRP socket", "instance", in.name(), "err", err)
				in.ifFault = "interface " + ls.Name + ": cannot open the VRRP socket"
				continue
			}
			in.linkUp = true
			in.ifFault = ""
		case in.sock == nil:
			in.linkUp = false
			in.ifFault = "interface " + ls.Name + " down"
		default:
			in.linkUp = up
			in.ifFault = linkFault(in, up)
		}
	}
	e.evaluateLocked(now)
}

func (e *Engine) shutdown() {
	e.mu.Lock()
	e.stopped = true
	now := e.clock.Now()
	for _, in := range e.order {
		e.stopInstance(in, now)
	}
	e.removeStaticsLocked() // statics.go: after the instances stepped down
	e.closeNoAcceptLocked() // noaccept.go
	for k, s := range e.socks {
		e.closeSocket(s)
		delete(e.socks, k)
	}
	e.stopPacersLocked()
	for sub := range e.subs {
		sub.closeLocked()
	}
	stop := e.watchStop
	stopLVS := e.stopLVSLocked()      // lvs.go: its worker removes what vrrpkit owns
	stopSync := e.stopLVSSyncLocked() // lvs_sync.go: stops the sync daemon, restores timeouts
	e.mu.Unlock()
	if stop != nil {
		stop()
	}
	if stopLVS != nil {
		stopLVS()
	}
	e.stopQuorum() // quorum.go: omega's quorum_down, then the queues end
	if stopSync != nil {
		stopSync()
	}
	e.wg.Wait()
	e.flushLVSAtStop() // lvs_sync.go: lvs_flush_on_stop, after lvs.go's worker ended
}
