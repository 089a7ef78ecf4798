package vrrpd

// Tracking and sync groups: the engine's side of pkg/vrrp's track.go and
// sync.go. The engine keeps the last known state of every tracker (checkerd's
// results, the links it watches itself), folds it into each instance's
// effective priority and fault reasons after anything changed, and moves
// the members of a vrrp_sync_group together.

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/netstate"
	"github.com/vrrpkit/vrrpkit/pkg/vrrp"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// trackKey names a tracker that checkerd reports.
type trackKey struct {
	kind vrrp.TrackerKind
	name string
}

// healthResult is a tracker's last result from checkerd.
type healthResult struct {
	state  vrrp.TrackerState
	detail string
}

// syncGroup is a vrrp_sync_group at run time.
type syncGroup struct {
	cfg     *pb.VrrpSyncGroup
	members []*instance // in the group's order; only instances that exist
}

func trackerKindFromPB(k pb.TrackerKind) (vrrp.TrackerKind, bool) {
	switch k {
	case pb.TrackerKind_TRACKER_KIND_SCRIPT:
		return vrrp.TrackScript, true
	case pb.TrackerKind_TRACKER_KIND_FILE:
		return vrrp.TrackFile, true
	case pb.TrackerKind_TRACKER_KIND_PROCESS:
		return vrrp.TrackProcess, true
	case pb.TrackerKind_TRACKER_KIND_INTERFACE:
		return vrrp.TrackInterface, true
	}
	return 0, false
}

func trackerKindToPB(k vrrp.TrackerKind) pb.TrackerKind {
	switch k {
	case vrrp.TrackScript:
		return pb.TrackerKind_TRACKER_KIND_SCRIPT
	case vrrp.TrackFile:
		return pb.TrackerKind_TRACKER_KIND_FILE
	case vrrp.TrackProcess:
		return pb.TrackerKind_TRACKER_KIND_PROCESS
	case vrrp.TrackInterface:
		return pb.TrackerKind_TRACKER_KIND_INTERFACE
	}
	return pb.TrackerKind_TRACKER_KIND_UNSPECIFIED
}

// ApplyHealth folds one event of checkerd's health stream into the
// trackers' states and re-evaluates every instance. An event of an older
// generation than the running one is ignored (design.md: "A result or
// command that carries an older generation is ignored"); it reports
// whether the event was used. A snapshot updates the trackers it lists and
// forgets none: a tracker checkerd has not re-run since it restarted keeps
// its last result, so a checkerd restart moves no priority.
func (e *Engine) ApplyHealth(ev *pb.HealthEvent) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped || ev.GetGeneration() < e.generation {
		if !e.stopped {
			e.log.Debug("ignoring a health event of an older generation", "generation", ev.GetGeneration(), "running", e.generation)
		}
		return false
	}
	var results []*pb.TrackerResult
	snapshot := false
	switch x := ev.GetEvent().(type) {
	case *pb.HealthEvent_Snapshot:
		results, snapshot = x.Snapshot.GetResults(), true
	case *pb.HealthEvent_Result:
		results = []*pb.TrackerResult{x.Result}
	default:
		return false
	}
	changed, lvsChanged := false, false
	for _, r := range results {
		if r.GetKind() == pb.TrackerKind_TRACKER_KIND_REAL_SERVER {
			e.lvsStatusResultLocked(r)                      // lvs_status.go
			lvsChanged = e.lvsHealthLocked(r) || lvsChanged // lvs.go
			continue
		}
		kind, ok := trackerKindFromPB(r.GetKind())
		if !ok || kind == vrrp.TrackInterface {
			continue // vrrpd follows links itself
		}
		k := trackKey{kind, r.GetName()}
		h := healthResult{state: vrrp.TrackerState{Known: true, Up: r.GetUp(), Value: r.GetValue()}, detail: r.GetDetail()}
		if old, ok := e.health[k]; ok && old == h {
			continue
		}
		e.health[k] = h
		changed = true
	}
	if changed {
		e.evaluateLocked(e.clock.Now())
		e.wakeIfEarlierLocked()
	}
	if snapshot {
		// lvs.go: a table held back for checkerd's health goes now.
		lvsChanged = e.lvsSnapshotLocked(ev.GetGeneration()) || lvsChanged
	}
	if lvsChanged {
		e.updateLVSLocked() // lvs.go
	}
	return true
}

// rebuildTrackingLocked takes the trackers, scripts and sync groups of a
// snapshot being applied: every instance's tracker list (its own, then its
// group's), the groups' members, the links to follow. Tracker states are
// kept for every tracker the snapshot still names.
func (e *Engine) rebuildTrackingLocked(snap *pb.ConfigSnapshot) {
	e.initFail = map[string]bool{}
	keep := map[trackKey]bool{}
	for _, s := range snap.GetScripts() {
		e.initFail[s.GetName()] = s.GetInitFail()
		keep[trackKey{vrrp.TrackScript, s.GetName()}] = true
	}
	for _, f := range snap.GetTrackFiles() {
		keep[trackKey{vrrp.TrackFile, f.GetName()}] = true
	}
	for _, p := range snap.GetTrackProcesses() {
		keep[trackKey{vrrp.TrackProcess, p.GetName()}] = true
	}
	for k := range e.health {
		if !keep[k] {
			delete(e.health, k)
		}
	}
	e.groups = map[string]*syncGroup{}
	byName := map[string]*syncGroup{}
	for _, g := range snap.GetSyncGroups() {
		sg := &syncGroup{cfg: g}
		byName[g.GetName()] = sg
		for _, name := range g.GetInstances() {
			if in := e.instances[name]; in != nil {
				sg.members = append(sg.members, in)
			}
		}
		if len(sg.members) > 0 {
			e.groups[g.GetName()] = sg
		}
	}
	tracked := map[string]bool{}
	for _, in := range e.order {
		in.group = nil
		if sg := e.groups[in.cfg.GetSyncGroup()]; sg != nil && slices.Contains(sg.members, in) {
			in.group = sg
		} else {
			// A group that lists the instance, whatever the instance says.
			for _, sg := range e.groups {
				if slices.Contains(sg.members, in) {
					in.group = sg
					break
				}
			}
		}
		var gcfg *pb.VrrpSyncGroup
		if in.group != nil {
			gcfg = in.group.cfg
		}
		in.trackers = trackersOf(in.cfg, gcfg)
		for _, t := range in.trackers {
			if t.Kind == vrrp.TrackInterface {
				tracked[t.Name] = true
			}
		}
	}
	for name := range e.linkStates {
		if !tracked[name] {
			delete(e.linkStates, name)
		}
	}
	for name := range tracked {
		if _, ok := e.linkStates[name]; ok {
			continue // the watcher keeps it current
		}
		ls, err := e.links.LinkByName(name)
		if err != nil {
			ls = netstate.LinkState{Name: name}
		}
		e.linkStates[name] = ls
	}
}

// trackersOf lists an instance's trackers: its own, then its sync
// group's, which apply to every member (vrrp.c: "Add sync group members to
// the vrrp list of the script, file, i/f"). Weights are the snapshot's,
// already zeroed for sync-group members as keepalived does.
func trackersOf(cfg *pb.VrrpInstance, g *pb.VrrpSyncGroup) []vrrp.Tracker {
	var out []vrrp.Tracker
	add := func(group string, ifs []*pb.TrackInterface, scripts, files, procs []*pb.TrackScript) {
		for _, t := range ifs {
			out = append(out, vrrp.Tracker{Kind: vrrp.TrackInterface, Name: t.GetName(), Weight: int(t.GetWeight()), Reverse: t.GetReverse(), Group: group})
		}
		for _, l := range []struct {
			kind vrrp.TrackerKind
			refs []*pb.TrackScript
		}{{vrrp.TrackScript, scripts}, {vrrp.TrackFile, files}, {vrrp.TrackProcess, procs}} {
			for _, t := range l.refs {
				out = append(out, vrrp.Tracker{Kind: l.kind, Name: t.GetName(), Weight: int(t.GetWeight()), Reverse: t.GetReverse(), Group: group})
			}
		}
	}
	add("", cfg.GetTrackInterface(), cfg.GetTrackScript(), cfg.GetTrackFile(), cfg.GetTrackProcess())
	if g != nil {
		add(g.GetName(), g.GetTrackInterface(), g.GetTrackScript(), g.GetTrackFile(), g.GetTrackProcess())
	}
	return out
}

// trackerStateLocked is what is known of t now, and a word for status.
func (e *Engine) trackerStateLocked(t vrrp.Tracker) (vrrp.TrackerState, string) {
	if t.Kind == vrrp.TrackInterface {
		ls, ok := e.linkStates[t.Name]
		switch {
		case !ok || !ls.Exists:
			return vrrp.TrackerState{Known: true}, "missing"
		case !ls.Up:
			return vrrp.TrackerState{Known: true}, "down"
		}
		return vrrp.TrackerState{Known: true, Up: true}, "up"
	}
	if h, ok := e.health[trackKey{t.Kind, t.Name}]; ok {
		return h.state, h.detail
	}
	if t.Kind == vrrp.TrackScript && e.initFail[t.Name] {
		// SCRIPT_INIT_STATE_FAILED: vrrp_init_script sets result 0.
		return vrrp.TrackerState{Known: true}, "init_fail, no result yet"
	}
	return vrrp.TrackerState{}, "no result yet"
}

// evaluateLocked recomputes every instance's effective priority and fault
// reasons from what is known now and moves the state machines: a changed
// priority goes into the next advert, a fault reason appearing takes the
// instance to FAULT, the last one going takes it out. Members of a sync
// group share their faults (vrrp_sync_fault; try_up_instance waits for
// num_member_fault to reach zero).
func (e *Engine) evaluateLocked(now time.Time) {
	type result struct {
		prio uint8
		own  []string
		// pending: every one of own is a tracker without a result yet.
		pending bool
	}
	res := make(map[*instance]result, len(e.order))
	for _, in := range e.order {
		in.effects = in.effects[:0]
		in.details = in.details[:0]
		var own []string
		pending := true
		if in.ifFault != "" {
			own = append(own, in.ifFault)
			pending = false
		}
		if in.cfg.GetUnicastFaultNoPeer() && len(in.cfg.GetUnicastPeer()) == 0 {
			// keepalived.conf(5): rather than fall back on multicast, an
			// instance meant for unicast with no peer left stays in FAULT.
			own = append(own, "unicast_fault_no_peer: no unicast peer")
			pending = false
		}
		for _, t := range in.trackers {
			st, detail := e.trackerStateLocked(t)
			eff := vrrp.Effect(t, st)
			if in.isOwner() {
				eff.Delta = 0 // keepalived drops an owner's weighted trackers
			}
			in.effects = append(in.effects, eff)
			in.details = append(in.details, trackDetail{up: st.Up, detail: detail})
			if eff.Fault != "" {
				own = append(own, eff.Fault)
				pending = pending && eff.Pending
			}
		}
		prio, _ := vrrp.Fold(in.baseprio(), in.effects)
		res[in] = result{prio, own, pending}
	}
	for _, in := range e.order {
		r := res[in]
		faults, pending := r.own, r.pending
		if in.group != nil {
			for _, other := range in.group.members {
				if other == in {
					continue
				}
				if o := res[other]; len(o.own) > 0 {
					faults = append(faults[:len(faults):len(faults)], fmt.Sprintf("sync group %s: %s in FAULT (%s)", in.group.cfg.GetName(), other.name(), o.own[0]))
					pending = pending && o.pending
				}
			}
		}
		in.initPending = len(faults) > 0 && pending
		e.applyTrackingLocked(in, r.prio, faults, now)
		if in.holdInit && !in.initPending {
			// The first results are in: start now, as keepalived leaves
			// INIT once no tracker is in its initial state.
			in.holdInit = false
			e.do(in, in.m.Startup(now, e.actions[:0]), now)
			in.reason = ""
		}
	}
}

// applyTrackingLocked gives one instance its new priority and faults.
func (e *Engine) applyTrackingLocked(in *instance, prio uint8, faults []string, now time.Time) {
	if old := in.m.Priority(); prio != old && !in.isOwner() {
		e.do(in, in.m.SetPriority(now, prio, e.actions[:0]), now)
		e.log.Info("effective priority changed", "instance", in.name(), "from", old, "to", prio)
		if in.cfg.GetNotifyPriorityChanges() {
			// A StateTransition with from == to: the stream's way to say
			// the priority moved (keepalived's notify_priority_changes
			// sends the notify/FIFO line with the current state).
			st := stateToPB(in.m.State())
			e.publishLocked(now, &pb.VrrpEvent{Event: &pb.VrrpEvent_Transition{Transition: &pb.StateTransition{
				Instance: in.name(), From: st, To: st, Priority: uint32(prio),
				Reason: fmt.Sprintf("priority changed from %d to %d", old, prio),
			}}})
		}
	}
	in.faults = faults
	switch {
	case len(faults) > 0 && !in.faulted:
		in.faulted = true
		in.lastFaults = faults
		in.reason = faults[0]
		e.do(in, in.m.InterfaceDown(now, e.actions[:0]), now)
		if in.m.State() != vrrp.StateFault {
			// Initialize: the reason words the Startup into FAULT.
			return
		}
		in.reason = ""
	case len(faults) == 0 && in.faulted:
		in.faulted = false
		if in.m.State() == vrrp.StateFault {
			in.reason = "fault cleared (was: " + strings.Join(in.lastFaults, "; ") + ")"
		} else {
			in.reason = ""
		}
		e.do(in, in.m.InterfaceUp(now, e.actions[:0]), now)
		in.reason = ""
	case len(faults) > 0:
		in.lastFaults = faults
	}
}

// syncFollowLocked makes the other members of in's sync group follow its
// transition a (vrrp.SyncFollow).
func (e *Engine) syncFollowLocked(in *instance, a vrrp.Action, now time.Time) {
	g := in.group
	members := g.snapshot()
	self := slices.Index(g.members, in)
	for _, o := range vrrp.SyncFollow(members, self, a) {
		other := g.members[o.Member]
		// A fresh slice: the caller's e.actions is still being read.
		var acts []vrrp.Action
		switch o.To {
		case vrrp.StateMaster:
			other.reason = fmt.Sprintf("sync group %s: %s became MASTER", g.cfg.GetName(), in.name())
			acts = other.m.GoMaster(now, in.m.Stats().NewMasterReason, nil)
		case vrrp.StateBackup:
			other.reason = fmt.Sprintf("sync group %s: %s went to BACKUP", g.cfg.GetName(), in.name())
			acts = other.m.GoBackup(now, nil)
		}
		e.do(other, acts, now)
		other.reason = ""
	}
}

// snapshot is the group's members as vrrp's sync rules see them.
func (g *syncGroup) snapshot() []vrrp.SyncMember {
	out := make([]vrrp.SyncMember, len(g.members))
	for i, m := range g.members {
		out[i] = vrrp.SyncMember{State: m.m.State(), WantsMaster: m.m.WantsMaster(), Faulted: m.faulted}
	}
	return out
}

// syncAllowsMasterLocked reports whether in, a backup whose down timer is
// due, may become master (vrrp.SyncCanGoMaster); always true outside a
// group.
func (e *Engine) syncAllowsMasterLocked(in *instance) bool {
	if in.group == nil {
		return true
	}
	return vrrp.SyncCanGoMaster(in.group.snapshot(), slices.Index(in.group.members, in))
}

// trackingStatus is the instance's trackers for status.
func (in *instance) trackingStatus() []*pb.TrackedStatus {
	out := make([]*pb.TrackedStatus, 0, len(in.trackers))
	for i, t := range in.trackers {
		ts := &pb.TrackedStatus{Kind: trackerKindToPB(t.Kind), Name: t.Name, Weight: int32(t.Weight)}
		if i < len(in.effects) {
			ts.Delta = int32(in.effects[i].Delta)
			ts.Up = in.details[i].up
			ts.Detail = in.details[i].detail
			if in.effects[i].Fault != "" {
				ts.Detail = in.effects[i].Fault
			}
		}
		out = append(out, ts)
	}
	return out
}

// trackDetail is what status shows of a tracker besides its effect.
type trackDetail struct {
	up     bool
	detail string
}
