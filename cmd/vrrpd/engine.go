package main

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vrrpkit/vrrpkit/pkg/netstate"
	"github.com/vrrpkit/vrrpkit/pkg/vrrp"
	"github.com/vrrpkit/vrrpkit/pkg/vrrpnet"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// engine runs every VRRP instance. All instance state is guarded by mu.
// Socket readers parse each advert and hand it to its state machine
// themselves, so a packet costs one wake-up, not a hand-off between
// goroutines; the loop (run) drives timers, link changes and configuration
// pushes, and is kicked when a reader moves the earliest deadline forward.
type engine struct {
	log   *slog.Logger
	addrs *netstate.Addresses
	links *netstate.Links

	mu      sync.Mutex
	kick    chan struct{}
	armed   time.Time // the deadline the loop's timer is set for; guarded by mu
	linkEv  chan netstate.LinkState
	applyCh chan applyReq
	statCh  chan chan *pb.StatusResponse

	runDir string // where the masters record is kept

	// Guarded by mu.
	deadlines  deadlineHeap
	instances  map[string]*instance
	order      []*instance // stable iteration order
	socks      map[sockKey]*socket
	generation uint64
	actions    []vrrp.Action
	watchStop  context.CancelFunc
	watchDone  chan struct{}
	wg         sync.WaitGroup // socket readers
}

type sockKey struct {
	iface   string
	family  int
	unicast bool
	local   netip.Addr
}

// socket is one raw VRRP socket and the instances it serves, by VRID.
type socket struct {
	key    sockKey
	conn   *vrrpnet.Conn
	ann    *vrrpnet.Announcer
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
	src      netip.Addr
	ttl      uint8
	drop     vrrp.DropReason
	version  uint8
	vrid     uint8
	priority uint8
	interval time.Duration
	authType uint8
	authData [8]byte
	nAddrs   int
	at       time.Time
}

type applyReq struct {
	snap *pb.ConfigSnapshot
	done chan applyResult
}

type applyResult struct {
	resp *pb.ApplyConfigResponse
	err  error
}

func newEngine(log *slog.Logger, runDir string) *engine {
	return &engine{
		log:       log,
		runDir:    runDir,
		addrs:     netstate.New(nil, log),
		links:     netstate.NewLinks(log),
		kick:      make(chan struct{}, 1),
		linkEv:    make(chan netstate.LinkState, 64),
		applyCh:   make(chan applyReq),
		statCh:    make(chan chan *pb.StatusResponse),
		instances: map[string]*instance{},
		socks:     map[sockKey]*socket{},
	}
}

// Apply hands a snapshot to the loop and waits for the result.
func (e *engine) Apply(ctx context.Context, snap *pb.ConfigSnapshot) (*pb.ApplyConfigResponse, error) {
	req := applyReq{snap: snap, done: make(chan applyResult, 1)}
	select {
	case e.applyCh <- req:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-req.done:
		return r.resp, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Status asks the loop for every instance's state.
func (e *engine) Status(ctx context.Context) (*pb.StatusResponse, error) {
	ch := make(chan *pb.StatusResponse, 1)
	select {
	case e.statCh <- ch:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// run is the event loop. When ctx ends, every instance steps down (a master
// sends priority 0 and removes its VIPs) before run returns.
func (e *engine) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	defer e.shutdown()
	for {
		// Go's timers fire up to a millisecond late (the poller sleeps in
		// whole milliseconds), so the timer is armed early and the rest is
		// slept precisely in fireTimers.
		e.mu.Lock()
		d := e.nextDeadline()
		e.armed = d
		e.mu.Unlock()
		if !d.IsZero() {
			timer.Reset(max(time.Until(d)-timerSlack, 0))
		} else {
			timer.Reset(time.Hour)
		}
		select {
		case <-ctx.Done():
			return
		case <-e.kick:
		case <-timer.C:
			e.mu.Lock()
			e.fireTimers()
			e.mu.Unlock()
		case ls := <-e.linkEv:
			e.mu.Lock()
			e.handleLink(ctx, ls)
			e.mu.Unlock()
		case req := <-e.applyCh:
			e.mu.Lock()
			resp, err := e.apply(ctx, req.snap)
			e.mu.Unlock()
			req.done <- applyResult{resp, err}
		case ch := <-e.statCh:
			e.mu.Lock()
			st := e.status()
			e.mu.Unlock()
			ch <- st
		}
	}
}

// kickIfEarlier wakes the loop when the earliest deadline is now before the
// one its timer is set for. Called with mu held.
func (e *engine) kickIfEarlier() {
	if d := e.nextDeadline(); !d.IsZero() && (e.armed.IsZero() || d.Before(e.armed)) {
		select {
		case e.kick <- struct{}{}:
		default:
		}
	}
}

// timerSlack is how early the loop's Go timer is armed; the rest of the
// wait is a nanosleep, which is precise.
const timerSlack = time.Millisecond

// catchUpBudget bounds how long a due down timer waits for adverts still in
// the sockets to be read.
const catchUpBudget = 20 * time.Millisecond

func (e *engine) nextDeadline() time.Time {
	if len(e.deadlines) == 0 {
		return time.Time{}
	}
	return e.deadlines[0].due
}

// fireTimers runs every timer that is due, after sleeping the last part of
// the wait precisely.
func (e *engine) fireTimers() {
	if d := e.nextDeadline(); !d.IsZero() {
		if wait := time.Until(d); wait > 0 && wait <= 2*timerSlack {
			ts := unix.NsecToTimespec(int64(wait))
			_ = unix.Nanosleep(&ts, nil)
		}
	}
	now := time.Now()
	if e.backupDownDue(now) && e.catchUp() {
		// Adverts that arrived in time were waiting to be read (the
		// process was stalled); they may have pushed the down timers out.
		now = time.Now()
	}
	// Each instance is handled at most once per call; its new deadline is
	// in the future.
	for n := len(e.deadlines); n > 0 && len(e.deadlines) > 0 && !e.deadlines[0].due.After(now); n-- {
		in := e.deadlines[0]
		if t := in.m.Deadline(); !t.IsZero() && !now.Before(t) {
			e.do(in, in.m.Timer(now, e.actions[:0]), now)
		}
		if !in.garpAt.IsZero() && !now.Before(in.garpAt) {
			repeat, _ := in.garpSettings()
			if in.garpRefreshing {
				_, repeat = in.garpRefresh()
			}
			e.announce(in, repeat)
			in.scheduleGarp(now)
		}
		e.reschedule(in)
	}
}

// backupDownDue reports whether a backup's Master_Down_Timer is due.
func (e *engine) backupDownDue(now time.Time) bool {
	for _, in := range e.deadlines {
		if in.due.After(now) {
			continue
		}
		if in.m.State() == vrrp.StateBackup && !in.m.Deadline().After(now) {
			return true
		}
	}
	return false
}

// catchUp lets the readers handle the adverts still in the sockets before
// a backup may declare its master down: after a stall of this process they
// are there, and they arrived in time. Called with mu held; releases it
// while the readers work. It reports whether it waited for any.
func (e *engine) catchUp() bool {
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
		time.Sleep(time.Millisecond)
		e.mu.Lock()
	}
}

// reschedule files the instance under its current deadline.
func (e *engine) reschedule(in *instance) {
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

// handleRx applies RFC 5798 §7.1's receive checks that need the instance,
// counts what it drops, and feeds the rest to the state machine.
func (e *engine) handleRx(ev rxEvent) {
	cands := ev.sock.byVRID[ev.vrid]
	if len(cands) == 0 {
		ev.sock.unknownVRID++
		return
	}
	var in *instance
	for _, c := range cands {
		if len(c.dsts) == 0 || !ev.sock.key.unicast || containsAddr(c.dsts, ev.src) {
			in = c
			break
		}
	}
	if in == nil {
		cands[0].drop(vrrp.DropUnknownPeer)
		return
	}
	if ev.drop != 0 {
		in.drop(ev.drop)
		return
	}
	if ev.src == in.src {
		return // our own advert, looped back by a unicast peer list
	}
	if !ev.sock.key.unicast && ev.ttl != 255 {
		in.drop(vrrp.DropBadTTL)
		return
	}
	if ev.version != in.pkt.Version {
		in.drop(vrrp.DropBadVersion)
		return
	}
	if in.pkt.Version == 2 {
		if ev.authType != in.authType {
			in.drop(vrrp.DropAuthTypeMismatch)
			return
		}
		if in.authType == vrrp.AuthPass && ev.authData != in.authData {
			in.drop(vrrp.DropAuthMismatch)
			return
		}
	}
	if ev.nAddrs != len(in.vips) && !in.cfg.GetSkipCheckAdvAddr() {
		// keepalived logs and accepts; count it so a mismatch is visible.
		in.drop(vrrp.DropAddrListMismatch)
	}
	in.counters.rxAdverts++
	if ev.priority == 0 {
		in.counters.rxPrio0++
	}
	if in.m.State() != vrrp.StateMaster && ev.priority != 0 {
		in.masterAddr = ev.src
	}
	e.do(in, in.m.ReceiveAdvert(ev.at, vrrp.Advert{Src: ev.src, Priority: ev.priority, MaxAdvertInterval: ev.interval}, e.actions[:0]), ev.at)
}

func containsAddr(list []netip.Addr, a netip.Addr) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

// do carries out a state machine's actions.
func (e *engine) do(in *instance, acts []vrrp.Action, now time.Time) {
	e.actions = acts[:0]
	defer e.reschedule(in)
	for _, a := range acts {
		switch a.Kind {
		case vrrp.ActionSendAdvert:
			e.sendAdvert(in, a.Priority)
		case vrrp.ActionBecomeMaster:
			e.transition(in, a, now)
			e.takeAddresses(in)
			repeat, delay := in.garpSettings()
			e.announce(in, repeat)
			// keepalived sends a second round garp_master_delay later (a
			// delay of 0 means none), then refreshes every
			// garp_master_refresh.
			in.garpRefreshing = false
			if delay > 0 {
				in.garpAt = now.Add(delay)
			} else {
				in.scheduleGarp(now)
			}
			in.masterAddr = in.src
			in.counters.becameMaster++
			e.recordMasters()
		case vrrp.ActionBecomeBackup, vrrp.ActionEnterFault, vrrp.ActionStop:
			wasMaster := a.From == vrrp.StateMaster
			e.transition(in, a, now)
			in.garpAt, in.garpRefreshing = time.Time{}, false
			if wasMaster {
				e.releaseAddresses(in)
				in.counters.releasedMaster++
				e.recordMasters()
			}
			if a.Kind != vrrp.ActionBecomeBackup {
				in.masterAddr = netip.Addr{}
			}
		}
	}
}

func (e *engine) transition(in *instance, a vrrp.Action, now time.Time) {
	in.stateSince = now
	e.log.Info("state change", "instance", in.name(), "from", a.From.String(), "to", a.To.String(),
		"priority", in.m.Priority())
}

func (e *engine) sendAdvert(in *instance, prio uint8) {
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

func (e *engine) takeAddresses(in *instance) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, a := range in.addrs {
		if err := e.addrs.Add(ctx, a); err != nil {
			e.log.Error("adding virtual address", "instance", in.name(), "err", err)
		}
	}
}

func (e *engine) releaseAddresses(in *instance) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, a := range in.addrs {
		if err := e.addrs.Remove(ctx, a); err != nil {
			e.log.Error("removing virtual address", "instance", in.name(), "err", err)
		}
	}
}

// announce sends one round of gratuitous ARP / unsolicited NA for every
// address the instance holds (RFC 5798 §6.4.1, keepalived's garp_master_*).
func (e *engine) announce(in *instance, repeat int) {
	if in.sock == nil || in.sock.ann == nil {
		return
	}
	for i := 0; i < repeat; i++ {
		for _, a := range in.addrs {
			ip := a.Prefix.Addr()
			var err error
			if ip.Is4() {
				err = in.sock.ann.GratuitousARP(ip)
			} else {
				err = in.sock.ann.UnsolicitedNA(ip)
			}
			if err != nil {
				e.log.Warn("announcing address", "instance", in.name(), "addr", ip, "err", err)
			}
		}
	}
}

// apply installs a snapshot: instances are matched by name; unchanged ones
// keep their state and timers, removed ones step down, changed ones are
// restarted (a first cut: an in-place update comes with reload).
func (e *engine) apply(ctx context.Context, snap *pb.ConfigSnapshot) (*pb.ApplyConfigResponse, error) {
	if snap.GetGeneration() != 0 && snap.GetGeneration() < e.generation {
		return nil, fmt.Errorf("generation %d is older than the running %d", snap.GetGeneration(), e.generation)
	}
	resume := map[string]bool{}
	for _, name := range snap.GetResumeMaster() {
		resume[name] = true
	}
	// Build every new instance first, so a bad snapshot changes nothing.
	fresh := map[string]*instance{}
	for _, c := range snap.GetInstances() {
		old, running := e.instances[c.GetName()]
		if running && proto.Equal(old.cfg, c) {
			continue
		}
		in, err := newInstance(c)
		if err == nil && !running && resume[c.GetName()] && e.stillHeld(c.GetName(), in.addrs) {
			err = in.resumeAsMaster()
		}
		if err != nil {
			return nil, fmt.Errorf("instance %s (%s): %w", c.GetName(), c.GetDefinedAt(), err)
		}
		fresh[c.GetName()] = in
	}
	resp := &pb.ApplyConfigResponse{Generation: snap.GetGeneration()}
	keep := map[string]bool{}
	for _, c := range snap.GetInstances() {
		keep[c.GetName()] = true
	}
	now := time.Now()
	for _, in := range e.order {
		if !keep[in.name()] {
			e.stopInstance(in, now)
			resp.Removed = append(resp.Removed, in.name())
		} else if _, changed := fresh[in.name()]; changed {
			e.stopInstance(in, now)
			resp.Changed = append(resp.Changed, in.name())
		} else {
			resp.Unchanged = append(resp.Unchanged, in.name())
		}
	}
	var order []*instance
	for _, c := range snap.GetInstances() {
		if in, ok := fresh[c.GetName()]; ok {
			if _, existed := e.instances[c.GetName()]; !existed {
				resp.Added = append(resp.Added, c.GetName())
			}
			e.instances[c.GetName()] = in
			e.startInstance(ctx, in, now)
		}
		order = append(order, e.instances[c.GetName()])
	}
	for name := range e.instances {
		if !keep[name] {
			delete(e.instances, name)
		}
	}
	e.order = order
	e.closeIdleSockets()
	e.generation = snap.GetGeneration()
	e.restartWatch(ctx)
	return resp, nil
}

// stillHeld reports whether every address of an instance the previous
// vrrpd was master of is still on its interface; if so they are adopted as
// ours, so that stepping down later removes them.
func (e *engine) stillHeld(name string, addrs []netstate.Address) bool {
	if len(addrs) == 0 {
		return false
	}
	for _, a := range addrs {
		if ok, err := e.addrs.Has(a); err != nil || !ok {
			e.log.Info("not resuming as master: an address is gone", "instance", name, "address", a.String())
			return false
		}
	}
	for _, a := range addrs {
		e.addrs.Adopt(a)
	}
	e.log.Info("resuming as master: the previous vrrpd held these addresses", "instance", name)
	return true
}

func (e *engine) stopInstance(in *instance, now time.Time) {
	e.do(in, in.m.Shutdown(now, e.actions[:0]), now)
	if in.sock != nil {
		e.detach(in)
	}
}

func (e *engine) startInstance(ctx context.Context, in *instance, now time.Time) {
	in.stateSince = now
	ls, err := e.links.LinkByName(in.cfg.GetInterface())
	if err != nil || !ls.Exists {
		e.log.Warn("interface missing; instance is in FAULT until it appears", "instance", in.name(), "interface", in.cfg.GetInterface())
		e.do(in, in.m.InterfaceDown(now, e.actions[:0]), now)
		return
	}
	in.linkUp = ls.Up
	if err := e.attach(ctx, in); err != nil {
		e.log.Error("opening VRRP socket; instance is in FAULT", "instance", in.name(), "err", err)
		e.do(in, in.m.InterfaceDown(now, e.actions[:0]), now)
		return
	}
	e.do(in, in.m.Startup(now, e.actions[:0]), now)
	if !ls.Up {
		e.do(in, in.m.InterfaceDown(now, e.actions[:0]), now)
	}
}

// attach finds the instance's source address and joins it to the socket
// for its interface and family, opening that socket if needed.
func (e *engine) attach(ctx context.Context, in *instance) error {
	iface := in.cfg.GetInterface()
	if s := in.cfg.GetUnicastSrcIp(); s != "" {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("unicast_src_ip %q: %w", s, err)
		}
		in.src = a
	} else {
		a, err := vrrpnet.PrimaryAddr(iface, in.family)
		if err != nil {
			return err
		}
		in.src = a
	}
	key := sockKey{iface: iface, family: in.family, unicast: len(in.dsts) > 0}
	if key.unicast {
		key.local = in.src
	}
	s, ok := e.socks[key]
	if !ok {
		conn, err := vrrpnet.Listen(ctx, vrrpnet.Config{Interface: iface, Family: in.family, Unicast: key.unicast, Local: key.local})
		if err != nil {
			return err
		}
		ann, err := vrrpnet.OpenAnnouncer(ctx, vrrpnet.AnnouncerConfig{Interface: iface})
		if err != nil {
			e.log.Warn("no gratuitous ARP/NA on this interface", "interface", iface, "err", err)
		}
		s = &socket{key: key, conn: conn, ann: ann, byVRID: map[uint8][]*instance{}}
		e.socks[key] = s
		e.wg.Add(1)
		go e.read(s)
	}
	vrid := uint8(in.cfg.GetVrid())
	s.byVRID[vrid] = append(s.byVRID[vrid], in)
	in.sock = s
	in.m.SetPrimaryAddr(in.src)
	in.sendTo = in.dsts
	if len(in.dsts) == 0 {
		in.sendTo = []netip.Addr{s.conn.Group()}
	}
	return nil
}

func (e *engine) detach(in *instance) {
	s := in.sock
	vrid := uint8(in.cfg.GetVrid())
	list := s.byVRID[vrid]
	for i, x := range list {
		if x == in {
			s.byVRID[vrid] = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(s.byVRID[vrid]) == 0 {
		delete(s.byVRID, vrid)
	}
	in.sock = nil
}

func (e *engine) closeIdleSockets() {
	for k, s := range e.socks {
		if len(s.byVRID) == 0 {
			e.closeSocket(s)
			delete(e.socks, k)
		}
	}
}

func (e *engine) closeSocket(s *socket) {
	s.closed = true
	s.conn.Close()
	if s.ann != nil {
		s.ann.Close()
	}
}

// read is a socket's reader goroutine: it validates what it can without the
// instance (length, version, checksum) and forwards a value to the loop.
func (e *engine) read(s *socket) {
	defer e.wg.Done()
	buf := make([]byte, vrrpnet.ReadBufferSize)
	var pkt vrrp.Packet
	pkt.Addrs = make([]netip.Addr, 0, 255)
	for {
		msg, err := s.conn.ReadFrom(buf)
		ev := rxEvent{sock: s, src: msg.Src, ttl: msg.TTL, at: time.Now()}
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
			e.deliver(ev)
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
			ev.version, ev.vrid, ev.priority = pkt.Version, pkt.VRID, pkt.Priority
			ev.interval, ev.authType, ev.authData = pkt.MaxAdvertInterval, pkt.AuthType, pkt.AuthData
			ev.nAddrs = len(pkt.Addrs)
		}
		e.deliver(ev)
	}
}

// deliver hands one received advert to its instance, on the reader's
// goroutine.
func (e *engine) deliver(ev rxEvent) {
	e.mu.Lock()
	if !ev.sock.closed {
		e.handleRx(ev)
		e.kickIfEarlier()
	}
	e.mu.Unlock()
}

// restartWatch follows the links the instances use.
func (e *engine) restartWatch(ctx context.Context) {
	if e.watchStop != nil {
		e.watchStop()
		<-e.watchDone
	}
	names := map[string]bool{}
	for _, in := range e.order {
		names[in.cfg.GetInterface()] = true
	}
	list := make([]string, 0, len(names))
	for n := range names {
		list = append(list, n)
	}
	sort.Strings(list)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	e.watchStop, e.watchDone = cancel, done
	go func() {
		defer close(done)
		err := e.links.WatchLinks(wctx, list, func(ls netstate.LinkState) {
			select {
			case e.linkEv <- ls:
			case <-wctx.Done():
			}
		})
		if err != nil {
			e.log.Error("watching links", "err", err)
		}
	}()
}

// handleLink moves instances in and out of FAULT as their interface comes
// and goes.
func (e *engine) handleLink(ctx context.Context, ls netstate.LinkState) {
	now := time.Now()
	for _, in := range e.order {
		if in.cfg.GetInterface() != ls.Name {
			continue
		}
		up := ls.Exists && ls.Up
		switch {
		case up && (in.sock == nil || in.sock.conn.IfIndex() != ls.Index):
			if in.sock != nil {
				e.detach(in)
				e.closeIdleSockets()
			}
			if err := e.attach(ctx, in); err != nil {
				e.log.Error("opening VRRP socket", "instance", in.name(), "err", err)
				continue
			}
			in.linkUp = true
			e.do(in, in.m.InterfaceUp(now, e.actions[:0]), now)
		case up && !in.linkUp:
			in.linkUp = true
			e.do(in, in.m.InterfaceUp(now, e.actions[:0]), now)
		case !up && in.linkUp:
			in.linkUp = false
			e.do(in, in.m.InterfaceDown(now, e.actions[:0]), now)
		}
	}
}

func (e *engine) shutdown() {
	e.mu.Lock()
	now := time.Now()
	for _, in := range e.order {
		e.stopInstance(in, now)
	}
	for k, s := range e.socks {
		e.closeSocket(s)
		delete(e.socks, k)
	}
	stop, done := e.watchStop, e.watchDone
	e.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	e.wg.Wait()
}

func (e *engine) status() *pb.StatusResponse {
	resp := &pb.StatusResponse{Generation: e.generation}
	for _, in := range e.order {
		st := &pb.InstanceStatus{
			Name:              in.name(),
			State:             stateToPB(in.m.State()),
			Priority:          in.cfg.GetPriority(),
			EffectivePriority: uint32(in.m.Priority()),
			Interface:         in.cfg.GetInterface(),
			Vrid:              in.cfg.GetVrid(),
			StateSince:        timestamppb.New(in.stateSince),
		}
		if in.masterAddr.IsValid() {
			st.MasterAddr = in.masterAddr.String()
		}
		st.Counters = in.countersPB()
		if in.m.State() == vrrp.StateFault {
			st.FaultReasons = append(st.FaultReasons, "interface "+in.cfg.GetInterface()+" down or missing")
		}
		resp.Instances = append(resp.Instances, st)
	}
	return resp
}

func (in *instance) countersPB() *pb.InstanceCounters {
	c := &in.counters
	out := &pb.InstanceCounters{
		AdvertsSent:              c.txAdverts,
		AdvertsReceived:          c.rxAdverts,
		PriorityZeroSent:         c.txPrio0,
		PriorityZeroReceived:     c.rxPrio0,
		BecameMaster:             c.becameMaster,
		ReleasedMaster:           c.releasedMaster,
		SendErrors:               c.sendErrors,
		LowerPriorityMasterHeard: c.lowerPrioMasterHeard,
		ResumedLate:              c.resumedLate,
	}
	drops := c.drops
	// The state machine counts VRRPv2 interval mismatches itself.
	drops[vrrp.DropIntervalMismatch] += in.m.Stats().AdvertIntervalErrors
	for r, n := range drops {
		if n > 0 {
			out.Drops = append(out.Drops, &pb.DropCount{Reason: vrrp.DropReason(r).String(), Count: n})
		}
	}
	if in.sock != nil {
		out.SocketUnknownVrid = in.sock.unknownVRID
		out.SocketBadPackets = in.sock.badPackets.Load()
	}
	return out
}

func stateToPB(s vrrp.State) pb.VrrpState {
	switch s {
	case vrrp.StateBackup:
		return pb.VrrpState_VRRP_STATE_BACKUP
	case vrrp.StateMaster:
		return pb.VrrpState_VRRP_STATE_MASTER
	case vrrp.StateFault:
		return pb.VrrpState_VRRP_STATE_FAULT
	}
	return pb.VrrpState_VRRP_STATE_INIT
}

// MastersFile, in the run directory, lists the instances this vrrpd is
// master of, one name a line. It is rewritten on every change of that set
// (never per packet); the supervisor reads it when vrrpd dies, to tell the
// next vrrpd what to resume.
const MastersFile = "vrrpd.masters"

func (e *engine) recordMasters() {
	if e.runDir == "" {
		return
	}
	var b strings.Builder
	for _, in := range e.order {
		if in.m.State() == vrrp.StateMaster {
			b.WriteString(in.name())
			b.WriteByte('\n')
		}
	}
	path := filepath.Join(e.runDir, MastersFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		e.log.Warn("recording masters", "err", err)
		return
	}
	if err := os.Rename(tmp, path); err != nil {
		e.log.Warn("recording masters", "err", err)
	}
}
