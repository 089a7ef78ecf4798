package vrrpd

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vrrpkit/vrrpkit/pkg/netstate"
	"github.com/vrrpkit/vrrpkit/pkg/vrrp"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

const (
	stBackup = pb.VrrpState_VRRP_STATE_BACKUP
	stMaster = pb.VrrpState_VRRP_STATE_MASTER
	stFault  = pb.VrrpState_VRRP_STATE_FAULT
	stInit   = pb.VrrpState_VRRP_STATE_INIT
)

func scriptResult(gen uint64, name string, up bool) *pb.HealthEvent {
	return &pb.HealthEvent{Generation: gen, Event: &pb.HealthEvent_Result{Result: &pb.TrackerResult{
		Kind: pb.TrackerKind_TRACKER_KIND_SCRIPT, Name: name, Up: up, Detail: map[bool]string{true: "exit status 0", false: "exit status 1"}[up]}}}
}

func withScript(snap *pb.ConfigSnapshot, names ...string) *pb.ConfigSnapshot {
	for _, n := range names {
		snap.Scripts = append(snap.Scripts, &pb.VrrpScript{Name: n, Script: "/bin/true"})
	}
	return snap
}

// health feeds one event as the follower would, and waits for the loop.
func (r *rig) health(t *testing.T, ev *pb.HealthEvent) bool {
	t.Helper()
	ok := r.e.ApplyHealth(ev)
	r.clock.sl.settle(t)
	return ok
}

func (r *rig) link(t *testing.T, name string, up bool) {
	t.Helper()
	ls := netstate.LinkState{Name: name, Index: 1, Exists: true, Up: up}
	r.links.changes <- ls
	// The watcher handles one change at a time: once it takes the same
	// (idempotent) state again, it has handled the first.
	r.links.changes <- ls
	r.clock.sl.settle(t)
}

func wantState(t *testing.T, st *pb.InstanceStatus, state pb.VrrpState, prio uint32) {
	t.Helper()
	if st.GetState() != state || st.GetEffectivePriority() != prio {
		t.Fatalf("%s: %v at priority %d, want %v at %d (faults %q)", st.GetName(), st.GetState(), st.GetEffectivePriority(), state, prio, st.GetFaultReasons())
	}
}

// TestTrackScriptWeightNextAdvert: a master at 150 whose script with weight
// -60 fails advertises 90 in its next scheduled advert, and sends no extra
// one (keepalived: vrrp_set_effective_priority sends nothing).
func TestTrackScriptWeightNextAdvert(t *testing.T) {
	r := newRig(t)
	cfg := vi1()
	cfg.Priority = 150
	cfg.TrackScript = []*pb.TrackScript{{Name: "chk_nginx", Weight: -60}}
	r.apply(t, withScript(snapshot(1, cfg), "chk_nginx"))
	// No result yet: a weighted script adds nothing (SCRIPT_INIT_STATE_INIT).
	wantState(t, r.instance(t, "VI_1"), stBackup, 150)
	r.clock.advanceTo(t, r.clock.sl.settle(t))
	wantState(t, r.instance(t, "VI_1"), stMaster, 150)
	r.health(t, scriptResult(1, "chk_nginx", true))
	next := r.nextDeadline()
	r.clock.advance(t, 300*time.Millisecond)
	before := len(r.net.sentAdverts())
	if !r.health(t, scriptResult(1, "chk_nginx", false)) {
		t.Fatal("a current-generation result was refused")
	}
	st := r.instance(t, "VI_1")
	wantState(t, st, stMaster, 90)
	if n := len(r.net.sentAdverts()); n != before {
		t.Fatalf("%d adverts sent when the priority changed, want none", n-before)
	}
	if d := r.nextDeadline(); !d.Equal(next) {
		t.Fatalf("advert timer moved from %v to %v", next, d)
	}
	r.clock.advanceTo(t, next)
	s := r.sentAfter(before)
	if len(s) != 1 || s[0].pkt.Priority != 90 {
		t.Fatalf("next adverts %+v, want one at priority 90", s)
	}
	tr := st.GetTracking()
	if len(tr) != 1 || tr[0].GetName() != "chk_nginx" || tr[0].GetDelta() != -60 || tr[0].GetUp() || tr[0].GetDetail() != "exit status 1" ||
		tr[0].GetKind() != pb.TrackerKind_TRACKER_KIND_SCRIPT {
		t.Fatalf("tracking status %v", tr)
	}
	// Recovery: back to 150.
	r.health(t, scriptResult(1, "chk_nginx", true))
	wantState(t, r.instance(t, "VI_1"), stMaster, 150)
}

// TestTrackScriptPreemption: a backup at 100 with +60 on success outranks
// the master at 150: it discards the master's next advert and takes over
// when its down timer runs out.
func TestTrackScriptPreemption(t *testing.T) {
	r := newRig(t)
	cfg := vi1()
	cfg.TrackScript = []*pb.TrackScript{{Name: "chk", Weight: 60}}
	r.apply(t, withScript(snapshot(1, cfg), "chk"))
	r.clock.advance(t, time.Second)
	r.received(t, advert(150), peer, 255)
	r.health(t, scriptResult(1, "chk", true))
	wantState(t, r.instance(t, "VI_1"), stBackup, 160)
	heard := r.clock.advance(t, time.Second)
	r.received(t, advert(150), peer, 255) // discarded: lower than ours
	r.runUntil(t, heard.Add(3*time.Second))
	wantState(t, r.instance(t, "VI_1"), stMaster, 160)
}

// TestTrackScriptWeightZeroFault: a weight-0 script holds the instance in
// FAULT until its first success, and a failure takes a master to FAULT
// (priority 0 advert, VIPs released) and back to BACKUP on recovery; the
// transitions say which script.
func TestTrackScriptWeightZeroFault(t *testing.T) {
	r := newRig(t)
	cfg := vi1()
	cfg.TrackScript = []*pb.TrackScript{{Name: "chk_nginx"}}
	sub := r.e.Subscribe()
	defer sub.Close()
	<-sub.C
	r.apply(t, withScript(snapshot(1, cfg), "chk_nginx"))
	st := r.instance(t, "VI_1")
	// No result yet: held in INIT, with no transition (keepalived 2.2.7
	// runs no notify before a weight-0 script's first result).
	wantState(t, st, stInit, 100)
	if !slices.Equal(st.GetFaultReasons(), []string{"track_script chk_nginx has no result yet"}) {
		t.Fatalf("fault reasons %q", st.GetFaultReasons())
	}
	select {
	case ev := <-sub.C:
		t.Fatalf("event before the first result: %v", ev)
	default:
	}
	r.health(t, scriptResult(1, "chk_nginx", true))
	wantState(t, r.instance(t, "VI_1"), stBackup, 100)
	if tr := (<-sub.C).GetTransition(); tr.GetFrom() != stInit || tr.GetTo() != stBackup {
		t.Fatalf("start transition %v", tr)
	}
	r.clock.advanceTo(t, r.clock.sl.settle(t))
	wantState(t, r.instance(t, "VI_1"), stMaster, 100)
	<-sub.C // the transition
	<-sub.C // the address
	before := len(r.net.sentAdverts())
	r.health(t, scriptResult(1, "chk_nginx", false))
	st = r.instance(t, "VI_1")
	wantState(t, st, stFault, 100)
	if !slices.Equal(st.GetFaultReasons(), []string{"track_script chk_nginx failed"}) {
		t.Fatalf("fault reasons %q", st.GetFaultReasons())
	}
	if s := r.sentAfter(before); len(s) != 1 || s[0].pkt.Priority != 0 {
		t.Fatalf("adverts on entering FAULT %+v, want one at priority 0", s)
	}
	if tr := (<-sub.C).GetTransition(); tr.GetFrom() != stMaster || tr.GetTo() != stFault || tr.GetReason() != "track_script chk_nginx failed" {
		t.Fatalf("fault transition %v", tr)
	}
	if ops := r.addrs.opsCopy(); ops[len(ops)-1] != "-"+vip {
		t.Fatalf("address operations %v: the VIP was not released", ops)
	}
	r.health(t, scriptResult(1, "chk_nginx", true))
	wantState(t, r.instance(t, "VI_1"), stBackup, 100)
}

// TestInitFail: an init_fail script is failed from the start
// (SCRIPT_INIT_STATE_FAILED): its negative weight counts at once.
func TestInitFail(t *testing.T) {
	r := newRig(t)
	cfg := vi1()
	cfg.TrackScript = []*pb.TrackScript{{Name: "chk", Weight: -10}}
	snap := snapshot(1, cfg)
	snap.Scripts = []*pb.VrrpScript{{Name: "chk", InitFail: true}}
	r.apply(t, snap)
	wantState(t, r.instance(t, "VI_1"), stBackup, 90)
}

// TestTrackInterface: a tracked interface with a weight moves the
// priority; without one, its going down is a FAULT; dont_track_primary
// ignores the instance's own interface.
func TestTrackInterface(t *testing.T) {
	r := newRig(t)
	a := vi1()
	a.TrackInterface = []*pb.TrackInterface{{Name: "eth1", Weight: -30}}
	b := vi1()
	b.Name, b.Vrid, b.VirtualIpaddress = "VI_2", 52, []*pb.VirtualAddress{{Prefix: "192.0.2.101/32"}}
	b.TrackInterface = []*pb.TrackInterface{{Name: "eth2"}}
	c := vi1()
	c.Name, c.Vrid, c.Interface, c.DontTrackPrimary = "VI_3", 53, "eth3", true
	c.VirtualIpaddress = []*pb.VirtualAddress{{Prefix: "192.0.2.102/32"}}
	r.apply(t, snapshot(1, a, b, c))
	wantState(t, r.instance(t, "VI_1"), stBackup, 100)
	r.link(t, "eth1", false)
	wantState(t, r.instance(t, "VI_1"), stBackup, 70)
	if tr := r.instance(t, "VI_1").GetTracking(); len(tr) != 1 || tr[0].GetDelta() != -30 || tr[0].GetKind() != pb.TrackerKind_TRACKER_KIND_INTERFACE {
		t.Fatalf("tracking %v", tr)
	}
	r.link(t, "eth2", false)
	st := r.instance(t, "VI_2")
	wantState(t, st, stFault, 100)
	if !slices.Equal(st.GetFaultReasons(), []string{"interface eth2 down"}) {
		t.Fatalf("fault reasons %q", st.GetFaultReasons())
	}
	r.link(t, "eth3", false)
	wantState(t, r.instance(t, "VI_3"), stBackup, 100)
	r.link(t, "eth0", false)
	if st := r.instance(t, "VI_1"); !slices.Equal(st.GetFaultReasons(), []string{"interface eth0 down"}) || st.GetState() != stFault {
		t.Fatalf("own interface down: %v %q", st.GetState(), st.GetFaultReasons())
	}
	r.link(t, "eth0", true)
	r.link(t, "eth1", true)
	r.link(t, "eth2", true)
	wantState(t, r.instance(t, "VI_1"), stBackup, 100)
	wantState(t, r.instance(t, "VI_2"), stBackup, 100)
}

// TestOwnerPriorityFixed: the address owner's priority never moves; a
// weight-0 tracker still faults it.
func TestOwnerPriorityFixed(t *testing.T) {
	r := newRig(t)
	cfg := vi1()
	cfg.Priority = 255
	cfg.TrackScript = []*pb.TrackScript{{Name: "weighted", Weight: -60}, {Name: "fatal"}}
	r.apply(t, withScript(snapshot(1, cfg), "weighted", "fatal"))
	r.health(t, &pb.HealthEvent{Generation: 1, Event: &pb.HealthEvent_Snapshot{Snapshot: &pb.HealthSnapshot{Results: []*pb.TrackerResult{
		{Kind: pb.TrackerKind_TRACKER_KIND_SCRIPT, Name: "weighted", Up: false},
		{Kind: pb.TrackerKind_TRACKER_KIND_SCRIPT, Name: "fatal", Up: true},
	}}}})
	st := r.instance(t, "VI_1")
	wantState(t, st, stMaster, 255)
	if tr := st.GetTracking(); len(tr) != 2 || tr[0].GetDelta() != 0 {
		t.Fatalf("tracking %v", tr)
	}
	r.health(t, scriptResult(1, "fatal", false))
	wantState(t, r.instance(t, "VI_1"), stFault, 255)
}

// TestTrackFile: value times weight; -254 or less faults.
func TestTrackFile(t *testing.T) {
	r := newRig(t)
	cfg := vi1()
	cfg.TrackFile = []*pb.TrackScript{{Name: "f", Weight: -10}}
	snap := snapshot(1, cfg)
	snap.TrackFiles = []*pb.VrrpTrackFile{{Name: "f", Path: "/tmp/x"}}
	r.apply(t, snap)
	file := func(v int64) *pb.HealthEvent {
		return &pb.HealthEvent{Generation: 1, Event: &pb.HealthEvent_Result{Result: &pb.TrackerResult{Kind: pb.TrackerKind_TRACKER_KIND_FILE, Name: "f", Up: true, Value: v}}}
	}
	r.health(t, file(3))
	wantState(t, r.instance(t, "VI_1"), stBackup, 70)
	r.health(t, file(26))
	wantState(t, r.instance(t, "VI_1"), stFault, 100)
	r.health(t, file(0))
	wantState(t, r.instance(t, "VI_1"), stBackup, 100)
}

// TestStaleGeneration: results of an older generation than the running one
// are ignored.
func TestStaleGeneration(t *testing.T) {
	r := newRig(t)
	cfg := vi1()
	cfg.TrackScript = []*pb.TrackScript{{Name: "chk", Weight: -20}}
	r.apply(t, withScript(snapshot(2, cfg), "chk"))
	if r.health(t, scriptResult(1, "chk", false)) {
		t.Fatal("a generation 1 result was taken while generation 2 runs")
	}
	wantState(t, r.instance(t, "VI_1"), stBackup, 100)
	if !r.health(t, scriptResult(2, "chk", false)) {
		t.Fatal("a generation 2 result was refused")
	}
	wantState(t, r.instance(t, "VI_1"), stBackup, 80)
	if !r.health(t, scriptResult(3, "chk", true)) { // checkerd got the next config first
		t.Fatal("a newer generation's result was refused")
	}
	wantState(t, r.instance(t, "VI_1"), stBackup, 100)
}

// TestReloadKeepsTrackers: an unchanged instance keeps its trackers'
// state; a changed weight is applied in place, without a restart.
func TestReloadKeepsTrackers(t *testing.T) {
	r := newRig(t)
	cfg := vi1()
	cfg.Priority = 150
	cfg.TrackScript = []*pb.TrackScript{{Name: "chk", Weight: -60}}
	r.master(t, cfg)
	r.apply(t, withScript(snapshot(2, cfg), "chk"))
	r.health(t, scriptResult(2, "chk", false))
	wantState(t, r.instance(t, "VI_1"), stMaster, 90)
	r.apply(t, withScript(snapshot(3, cfg), "chk"))
	wantState(t, r.instance(t, "VI_1"), stMaster, 90)
	cfg2 := vi1()
	cfg2.Priority = 150
	cfg2.TrackScript = []*pb.TrackScript{{Name: "chk", Weight: -20}}
	resp := r.apply(t, withScript(snapshot(4, cfg2), "chk"))
	if !slices.Equal(resp.GetChanged(), []string{"VI_1"}) || len(resp.GetWarnings()) != 0 {
		t.Fatalf("reload: changed %v, warnings %v; want an in-place change", resp.GetChanged(), resp.GetWarnings())
	}
	st := r.instance(t, "VI_1")
	wantState(t, st, stMaster, 130)
	if st.GetCounters().GetBecameMaster() != 1 {
		t.Fatal("the instance restarted")
	}
}

// TestNotifyPriorityChanges: with notify_priority_changes a priority change
// is a StateTransition from a state to itself.
func TestNotifyPriorityChanges(t *testing.T) {
	r := newRig(t)
	cfg := vi1()
	cfg.NotifyPriorityChanges = true
	cfg.TrackScript = []*pb.TrackScript{{Name: "chk", Weight: -20}}
	r.apply(t, withScript(snapshot(1, cfg), "chk"))
	sub := r.e.Subscribe()
	defer sub.Close()
	<-sub.C
	r.health(t, scriptResult(1, "chk", false))
	tr := (<-sub.C).GetTransition()
	if tr.GetFrom() != stBackup || tr.GetTo() != stBackup || tr.GetPriority() != 80 || tr.GetReason() != "priority changed from 100 to 80" {
		t.Fatalf("priority event %v", tr)
	}
}

func syncPair(t *testing.T, r *rig, track ...*pb.TrackScript) {
	t.Helper()
	a := vi1()
	a.SyncGroup = "G"
	a.TrackScript = track
	b := vi1()
	b.Name, b.Vrid, b.SyncGroup = "VI_2", 52, "G"
	b.VirtualIpaddress = []*pb.VirtualAddress{{Prefix: "192.0.2.101/32"}}
	snap := snapshot(1, a, b)
	snap.SyncGroups = []*pb.VrrpSyncGroup{{Name: "G", Instances: []string{"VI_1", "VI_2"}}}
	for _, s := range track {
		snap.Scripts = append(snap.Scripts, &pb.VrrpScript{Name: s.GetName()})
	}
	r.apply(t, snap)
}

// TestSyncGroupFault: one member's fault takes the group to FAULT; both
// leave it when it clears.
func TestSyncGroupFault(t *testing.T) {
	r := newRig(t)
	syncPair(t, r, &pb.TrackScript{Name: "chk"})
	// Before the script's first result both wait in INIT (keepalived
	// starts neither, and notifies nothing).
	wantState(t, r.instance(t, "VI_1"), stInit, 100)
	st := r.instance(t, "VI_2")
	wantState(t, st, stInit, 100)
	if st.GetSyncGroup() != "G" || len(st.GetFaultReasons()) != 1 || st.GetFaultReasons()[0] != "sync group G: VI_1 in FAULT (track_script chk has no result yet)" {
		t.Fatalf("VI_2: group %q, faults %q", st.GetSyncGroup(), st.GetFaultReasons())
	}
	r.health(t, scriptResult(1, "chk", true))
	wantState(t, r.instance(t, "VI_1"), stBackup, 100)
	wantState(t, r.instance(t, "VI_2"), stBackup, 100)
	// Both become master together, then VI_1's script fails: both FAULT.
	r.runUntil(t, r.clock.Now().Add(4*time.Second))
	wantState(t, r.instance(t, "VI_1"), stMaster, 100)
	wantState(t, r.instance(t, "VI_2"), stMaster, 100)
	before := len(r.net.sentAdverts())
	r.health(t, scriptResult(1, "chk", false))
	wantState(t, r.instance(t, "VI_1"), stFault, 100)
	wantState(t, r.instance(t, "VI_2"), stFault, 100)
	var prio0 []uint8
	for _, s := range r.sentAfter(before) {
		if s.pkt.Priority == 0 {
			prio0 = append(prio0, s.pkt.VRID)
		}
	}
	if slices.Sort(prio0); !slices.Equal(prio0, []uint8{51, 52}) {
		t.Fatalf("priority 0 adverts for VRIDs %v, want both", prio0)
	}
}

// TestSyncGroupMasterAndBackup: a member whose down timer runs out waits
// for the others (vrrp_sync_can_goto_master), they become master
// together, and one hearing a higher priority takes the other to BACKUP
// without a priority 0 advert.
func TestSyncGroupMasterAndBackup(t *testing.T) {
	r := newRig(t)
	a := vi1()
	a.SyncGroup = "G"
	b := vi1()
	b.Name, b.Vrid, b.SyncGroup = "VI_2", 52, "G"
	b.AdvertInt = durationpb.New(2 * time.Second) // VI_2's down timer runs out later
	b.VirtualIpaddress = []*pb.VirtualAddress{{Prefix: "192.0.2.101/32"}}
	snap := snapshot(1, a, b)
	snap.SyncGroups = []*pb.VrrpSyncGroup{{Name: "G", Instances: []string{"VI_1", "VI_2"}}}
	start := r.clock.Now()
	r.apply(t, snap)
	mdi1 := 3*time.Second + 156*time.Second/256
	r.clock.advanceTo(t, start.Add(mdi1))
	if st := r.instance(t, "VI_1"); st.GetState() != stBackup {
		t.Fatalf("VI_1 %v after its down timer, want BACKUP held by its group", st.GetState())
	}
	r.e.mu.Lock()
	wants := r.e.instances["VI_1"].m.WantsMaster()
	r.e.mu.Unlock()
	if !wants {
		t.Fatal("VI_1 does not want MASTER after its down timer")
	}
	mdi2 := 6*time.Second + 2*156*time.Second/256
	r.clock.advanceTo(t, start.Add(mdi2))
	wantState(t, r.instance(t, "VI_1"), stMaster, 100)
	wantState(t, r.instance(t, "VI_2"), stMaster, 100)
	if ops := r.addrs.opsCopy(); len(ops) != 2 {
		t.Fatalf("address operations %v, want both VIPs added", ops)
	}
	before := len(r.net.sentAdverts())
	r.received(t, advert(200), peer, 255) // VRID 51 only
	wantState(t, r.instance(t, "VI_1"), stBackup, 100)
	wantState(t, r.instance(t, "VI_2"), stBackup, 100)
	for _, s := range r.sentAfter(before) {
		if s.pkt.Priority == 0 {
			t.Fatalf("priority 0 advert for VRID %d on a sync to BACKUP", s.pkt.VRID)
		}
	}
	if ops := r.addrs.opsCopy(); len(ops) != 4 {
		t.Fatalf("address operations %v, want both VIPs released", ops)
	}
}

var _ HealthSink = (*Engine)(nil)

func TestTrackerKinds(t *testing.T) {
	for _, k := range []vrrp.TrackerKind{vrrp.TrackScript, vrrp.TrackFile, vrrp.TrackProcess, vrrp.TrackInterface} {
		if back, ok := trackerKindFromPB(trackerKindToPB(k)); !ok || back != k {
			t.Errorf("%v does not survive the round trip through the proto", k)
		}
	}
}

// TestDontTrackPrimaryInPlace: turning dont_track_primary on while the
// interface is down takes the instance out of FAULT, without a restart.
func TestDontTrackPrimaryInPlace(t *testing.T) {
	r := newRig(t)
	r.apply(t, snapshot(1, vi1()))
	r.link(t, "eth0", false)
	wantState(t, r.instance(t, "VI_1"), stFault, 100)
	cfg := vi1()
	cfg.DontTrackPrimary = true
	if resp := r.apply(t, snapshot(2, cfg)); len(resp.GetWarnings()) != 0 {
		t.Fatalf("warnings %v: restarted", resp.GetWarnings())
	}
	wantState(t, r.instance(t, "VI_1"), stBackup, 100)
}

// TestUnicastFaultNoPeer: unicast_fault_no_peer with no peer is FAULT, not
// multicast.
func TestUnicastFaultNoPeer(t *testing.T) {
	r := newRig(t)
	in := vi1()
	in.UnicastFaultNoPeer = true
	r.apply(t, snapshot(1, in))
	st := r.instance(t, "VI_1")
	if st.GetState() != pb.VrrpState_VRRP_STATE_FAULT || len(st.GetFaultReasons()) != 1 {
		t.Fatalf("state %v, fault reasons %q; want FAULT for want of a unicast peer", st.GetState(), st.GetFaultReasons())
	}
	in = vi1()
	in.UnicastFaultNoPeer = true
	in.UnicastPeer = []string{"192.0.2.9"}
	r.apply(t, snapshot(2, in))
	if st := r.instance(t, "VI_1"); st.GetState() == pb.VrrpState_VRRP_STATE_FAULT {
		t.Fatalf("with a peer: still FAULT (%q)", st.GetFaultReasons())
	}
}
