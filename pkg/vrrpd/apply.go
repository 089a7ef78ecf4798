package vrrpd

import (
	"context"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vrrpkit/vrrpkit/pkg/netstate"
	"github.com/vrrpkit/vrrpkit/pkg/plan"
	"github.com/vrrpkit/vrrpkit/pkg/vrrp"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// Apply makes the snapshot the running configuration, by its plan
// (plan.Instances): unchanged instances keep their state and timers, in-place
// changes are made on the running instance, removed ones step down, added
// and restarted ones start. Re-sending the running generation changes
// nothing. A snapshot with anything that cannot run is refused whole
// (InvalidSnapshotError) before anything changes; an older generation is
// refused with ErrOldGeneration.
func (e *Engine) Apply(ctx context.Context, snap *pb.ConfigSnapshot) (*pb.ApplyConfigResponse, error) {
	// Once begun, an apply is carried out whole: a caller that stops
	// waiting (the supervisor's deadline on a loaded machine) must not
	// leave instances half-started, their sockets opened with a cancelled
	// context and the instances in FAULT.
	ctx = context.WithoutCancel(ctx)
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return nil, ErrStopped
	}
	if g := snap.GetGeneration(); g != 0 && g < e.generation {
		return nil, fmt.Errorf("%w: %d, running %d", ErrOldGeneration, g, e.generation)
	}
	running := make([]*pb.VrrpInstance, len(e.order))
	for i, in := range e.order {
		running[i] = in.cfg
	}
	seen := map[string]bool{}
	for _, c := range snap.GetInstances() {
		if seen[c.GetName()] {
			return nil, &InvalidSnapshotError{Instance: c.GetName(), DefinedAt: c.GetDefinedAt(), Err: fmt.Errorf("defined twice")}
		}
		seen[c.GetName()] = true
	}
	pl := plan.Instances(running, snap.GetInstances())
	resume := map[string]bool{}
	for _, name := range snap.GetResumeMaster() {
		resume[name] = true
	}
	// Build every instance of the new snapshot that is not unchanged, so a
	// bad snapshot changes nothing; in-place changes use the fresh build's
	// parsed values.
	unchanged := make(map[string]bool, len(pl.Unchanged))
	for _, name := range pl.Unchanged {
		unchanged[name] = true
	}
	fresh := map[string]*instance{}
	for _, c := range snap.GetInstances() {
		if unchanged[c.GetName()] {
			continue
		}
		in, err := newInstance(c)
		if err != nil {
			return nil, &InvalidSnapshotError{Instance: c.GetName(), DefinedAt: c.GetDefinedAt(), Err: err}
		}
		fresh[c.GetName()] = in
	}
	for _, name := range pl.Added {
		if in := fresh[name]; resume[name] && e.stillHeld(name, in.addrs) {
			if err := in.resumeAsMaster(); err != nil {
				return nil, &InvalidSnapshotError{Instance: name, DefinedAt: in.cfg.GetDefinedAt(), Err: err}
			}
		}
	}

	// statics.go: before any instance starts, which may take its source
	// address from a static address.
	e.applyStaticsLocked(snap)

	resp := &pb.ApplyConfigResponse{Generation: snap.GetGeneration(),
		Added: pl.Added, Removed: pl.Removed, Unchanged: pl.Unchanged}
	now := e.clock.Now()
	for _, name := range pl.Removed {
		e.stopInstance(e.instances[name], now)
		delete(e.instances, name)
	}
	held := heldAfterLocked(e, pl, fresh)
	for _, ch := range pl.Changed {
		resp.Changed = append(resp.Changed, ch.Name)
		old := e.instances[ch.Name]
		if ch.Restart {
			e.stopInstance(old, now)
			e.instances[ch.Name] = fresh[ch.Name]
			resp.Warnings = append(resp.Warnings, fmt.Sprintf("instance %s restarted: %s changed", ch.Name, restartFields(ch)))
			continue
		}
		if err := e.updateInPlace(old, fresh[ch.Name], now, held); err != nil {
			// plan.Instances and vrrp.Machine.Reconfigure disagree: restarting
			// is always correct.
			e.log.Error("in-place change refused, restarting the instance", "instance", ch.Name, "err", err)
			e.stopInstance(old, now)
			e.instances[ch.Name] = fresh[ch.Name]
			resp.Warnings = append(resp.Warnings, fmt.Sprintf("instance %s restarted: %v", ch.Name, err))
		}
	}
	order := make([]*instance, 0, len(snap.GetInstances()))
	for _, c := range snap.GetInstances() {
		in, ok := e.instances[c.GetName()]
		if !ok {
			in = fresh[c.GetName()]
			e.instances[c.GetName()] = in
		}
		order = append(order, in)
	}
	e.order = order
	e.generation = snap.GetGeneration()
	e.applyNoAcceptLocked(snap) // noaccept.go
	e.rebuildTrackingLocked(snap)
	e.applyLVSSyncLocked(snap)   // lvs_sync.go: lvs_flush before the first service
	e.applyLVSLocked(snap)       // lvs.go
	e.lvsStatusApplyLocked(snap) // lvs_status.go
	var starting []*instance
	for _, in := range order {
		if in.m.State() == vrrp.StateInitialize {
			e.startInstance(ctx, in, now)
			starting = append(starting, in)
		}
	}
	// Priorities and faults before Startup, so that an instance starts in
	// FAULT, or with its effective priority's Skew_Time, as keepalived's
	// initialise_tracking_priorities runs before vrrp_init_state.
	e.evaluateLocked(now)
	for _, in := range starting {
		if in.initPending {
			// Only weight-0 trackers without a first result stand in the
			// way: wait in INIT, silently, like keepalived (evaluateLocked
			// starts it when they report).
			in.holdInit = true
			continue
		}
		e.do(in, in.m.Startup(now, e.actions[:0]), now)
		in.reason = ""
	}
	e.closeIdleSockets()
	e.restartWatchLocked(ctx)
	e.wakeIfEarlierLocked()
	return resp, nil
}

func restartFields(ch plan.Change) string {
	var s string
	for _, f := range ch.Fields {
		if !f.InPlace {
			if s != "" {
				s += ", "
			}
			s += f.Field
		}
	}
	return s
}

// updateInPlace gives a running instance the in-place fields of its new
// configuration (see inPlaceFields). A master releases the addresses that
// went and takes and announces the ones that came; its adverts carry the
// new list from the next one on.
//
// An address that goes from this master to another instance that is and
// stays master (held: from heldAfterLocked) is handed over: it stays on the
// interface, this instance's release is published, and the other instance's
// add finds it in place. So a VIP moved between two masters in one reload
// moves once and is never off the interface, whatever order the instances
// are applied in (keepalived needs two reloads: keepalived#1854).
func (e *Engine) updateInPlace(in, next *instance, now time.Time, held map[netstate.Address]*instance) error {
	// The state machine first: it is the one change that can be refused,
	// and then nothing else may have changed.
	if err := in.m.Reconfigure(now, next.m.Config()); err != nil {
		return err
	}
	var gone, added []netstate.Address
	for _, a := range in.addrs {
		if !slices.Contains(next.addrs, a) {
			gone = append(gone, a)
		}
	}
	for _, a := range next.addrs {
		if !slices.Contains(in.addrs, a) {
			added = append(added, a)
		}
	}
	if in.m.State() == vrrp.StateMaster {
		var kept, handed []netstate.Address
		for _, a := range gone {
			if to := held[a]; to != nil && to != in {
				e.log.Info("address handed over in place", "address", a.String(), "from", in.name(), "to", to.name())
				e.publishAddressLocked(in, a, false)
				handed = append(handed, a)
				continue
			}
			kept = append(kept, a)
		}
		gone = kept
		if len(handed) > 0 {
			// no_accept blocks are counted per instance (noaccept.go): the
			// new holder blocks the address itself when it adds it.
			ctx, cancel := context.WithTimeout(context.Background(), addressTimeout)
			e.unblockLocked(ctx, in, handed)
			cancel()
		}
		e.changeAddresses(in, gone, false)
		e.changeAddresses(in, added, true)
		repeat, _ := in.garpMaster()
		e.announce(in, added, repeat)
	}
	in.cfg, in.addrs, in.vips = next.cfg, next.addrs, next.vips
	if in.sock != nil && (in.ifFault == "" || in.ifFault == "interface "+in.cfg.GetInterface()+" down") {
		in.ifFault = linkFault(in, in.linkUp) // dont_track_primary may have changed
	}
	in.pkt.Addrs, in.pkt.MaxAdvertInterval = in.vips, next.pkt.MaxAdvertInterval
	in.checks.NumAddrs, in.checks.SkipAddrCheck = next.checks.NumAddrs, next.checks.SkipAddrCheck
	if len(in.dsts) > 0 && len(next.dsts) > 0 { // plan.Instances: unicast stays unicast
		in.dsts, in.sendTo = next.dsts, next.dsts
	}
	// The new base priority reaches adverts through evaluateLocked, which
	// folds tracking into it after every apply.
	return nil
}

// heldAfterLocked maps each address to the running master instance that
// will hold it once the plan is applied: unchanged masters with their
// addresses, masters changed in place with their new ones. Instances that
// are removed or restarted hold nothing.
func heldAfterLocked(e *Engine, p plan.InstancePlan, fresh map[string]*instance) map[netstate.Address]*instance {
	held := map[netstate.Address]*instance{}
	add := func(in *instance, addrs []netstate.Address) {
		if in == nil || in.m.State() != vrrp.StateMaster {
			return
		}
		for _, a := range addrs {
			held[a] = in
		}
	}
	for _, name := range p.Unchanged {
		if in := e.instances[name]; in != nil {
			add(in, in.addrs)
		}
	}
	for _, ch := range p.Changed {
		if !ch.Restart && fresh[ch.Name] != nil {
			add(e.instances[ch.Name], fresh[ch.Name].addrs)
		}
	}
	return held
}

// stillHeld reports whether every address of an instance the previous
// vrrpd was master of is still on its interface; if so they are adopted as
// ours, so that stepping down later removes them.
func (e *Engine) stillHeld(name string, addrs []netstate.Address) bool {
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

// Status reports the running generation and every instance.
func (e *Engine) Status(ctx context.Context) (*pb.StatusResponse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
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
			Counters:          in.countersPB(),
		}
		for _, a := range in.addrs {
			st.VirtualIpaddress = append(st.VirtualIpaddress, a.Prefix.String())
		}
		if in.masterAddr.IsValid() {
			st.MasterAddr = in.masterAddr.String()
		}
		st.FaultReasons = append(st.FaultReasons, in.faults...)
		st.Tracking = in.trackingStatus()
		st.Peers = in.peersPB() // peers.go
		if in.group != nil {
			st.SyncGroup = in.group.cfg.GetName()
		}
		resp.Instances = append(resp.Instances, st)
	}
	resp.VirtualServers = e.virtualServersStatusLocked() // lvs_status.go
	return resp, nil
}

func (in *instance) countersPB() *pb.InstanceCounters {
	c := &in.counters
	stats := in.m.Stats()
	out := &pb.InstanceCounters{
		AdvertsSent:              c.txAdverts,
		AdvertsReceived:          c.rxAdverts,
		PriorityZeroSent:         c.txPrio0,
		PriorityZeroReceived:     c.rxPrio0,
		BecameMaster:             c.becameMaster,
		ReleasedMaster:           c.releasedMaster,
		SendErrors:               c.sendErrors,
		LowerPriorityMasterHeard: stats.LowerPriorityMastersHeard,
		ResumedLate:              stats.ResumedLate,
		OtherMasterHeard:         c.otherMaster,
	}
	drops := c.drops
	// The state machine counts VRRPv2 interval mismatches itself.
	drops[vrrp.DropIntervalMismatch] += stats.AdvertIntervalErrors
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
