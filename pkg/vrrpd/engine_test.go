package vrrpd

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vrrpkit/vrrpkit/pkg/vrrp"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

var (
	peer = netip.MustParseAddr("192.0.2.2")
	vip  = "192.0.2.100/32"
)

// vi1 is a VRRPv3 instance at 1 s, priority 100, one VIP.
func vi1() *pb.VrrpInstance {
	return &pb.VrrpInstance{
		Name: "VI_1", DefinedAt: "keepalived.conf:1", Interface: "eth0", Vrid: 51, Priority: 100, Version: 3,
		AdvertInt:        durationpb.New(time.Second),
		VirtualIpaddress: []*pb.VirtualAddress{{Prefix: vip}},
		Garp:             &pb.GarpSettings{MasterRepeat: 5, MasterDelay: durationpb.New(5 * time.Second), LowerPrioRepeat: 2},
	}
}

func snapshot(gen uint64, ins ...*pb.VrrpInstance) *pb.ConfigSnapshot {
	return &pb.ConfigSnapshot{Generation: gen, Instances: ins}
}

// advert is what a router at prio would send for VI_1.
func advert(prio uint8) vrrp.Packet {
	return vrrp.Packet{Version: 3, Type: vrrp.TypeAdvertisement, VRID: 51, Priority: prio,
		MaxAdvertInterval: time.Second, Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.100")}}
}

func (r *rig) apply(t *testing.T, snap *pb.ConfigSnapshot) *pb.ApplyConfigResponse {
	t.Helper()
	resp, err := r.e.Apply(context.Background(), snap)
	if err != nil {
		t.Fatal(err)
	}
	r.clock.sl.settle(t)
	return resp
}

func (r *rig) instance(t *testing.T, name string) *pb.InstanceStatus {
	t.Helper()
	st, err := r.e.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range st.GetInstances() {
		if in.GetName() == name {
			return in
		}
	}
	t.Fatalf("no instance %s in status", name)
	return nil
}

// received injects an advert and waits until the instance has taken it
// (or dropped it: counted either way).
func (r *rig) received(t *testing.T, p vrrp.Packet, src netip.Addr, ttl uint8) {
	t.Helper()
	before := countAll(r.instance(t, "VI_1").GetCounters())
	r.net.inject(t, p, src, ttl)
	eventually(t, "the advert to be handled", func() bool {
		return countAll(r.instance(t, "VI_1").GetCounters()) > before
	})
	r.clock.sl.settle(t)
}

func countAll(c *pb.InstanceCounters) uint64 {
	n := c.GetAdvertsReceived() + c.GetSocketUnknownVrid() + c.GetSocketBadPackets()
	for _, d := range c.GetDrops() {
		n += d.GetCount()
	}
	return n
}

func (r *rig) advertsSince(t time.Time) []sent {
	var out []sent
	for _, s := range r.net.sentAdverts() {
		if !s.at.Before(t) {
			out = append(out, s)
		}
	}
	return out
}

// nextDeadline is the engine's earliest deadline (the loop may sleep
// until an earlier one: a deadline that moves later does not wake it).
func (r *rig) nextDeadline() time.Time {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	return r.e.nextDeadline()
}

// runUntil steps the clock through every deadline up to t, as time passes
// for a process that is never late.
func (r *rig) runUntil(tb testing.TB, t time.Time) {
	tb.Helper()
	for d := r.nextDeadline(); !d.IsZero() && !d.After(t); d = r.nextDeadline() {
		r.clock.advanceTo(tb, d)
	}
	r.clock.advanceTo(tb, t)
}

// sentAfter returns the adverts sent after the first n.
func (r *rig) sentAfter(n int) []sent { return r.net.sentAdverts()[n:] }

// TestLoopBackupTakesOver drives the loop with the fake clock: the backup's
// Master_Down_Timer runs from the last accepted advert, to the nanosecond,
// and on expiry the engine sends its advert, then takes the VIP, then
// sends gratuitous ARP, and the second round follows garp_master_delay
// later (RFC 5798 §6.4.2; keepalived's garp_master_delay).
func TestLoopBackupTakesOver(t *testing.T) {
	r := newRig(t)
	start := r.clock.Now()
	resp := r.apply(t, snapshot(1, vi1()))
	if !slices.Equal(resp.GetAdded(), []string{"VI_1"}) {
		t.Fatalf("added %v", resp.GetAdded())
	}
	mdi := 3*time.Second + 156*time.Second/256
	if d := r.clock.sl.settle(t); !d.Equal(start.Add(mdi)) {
		t.Fatalf("the loop sleeps until %v after start, want Master_Down_Interval %v", d.Sub(start), mdi)
	}
	heard := r.clock.advance(t, time.Second)
	r.received(t, advert(200), peer, 255)
	if st := r.instance(t, "VI_1"); st.GetState() != pb.VrrpState_VRRP_STATE_BACKUP || st.GetMasterAddr() != peer.String() {
		t.Fatalf("after the master's advert: %v, master %s", st.GetState(), st.GetMasterAddr())
	}
	due := heard.Add(mdi)
	if d := r.nextDeadline(); !d.Equal(due) {
		t.Fatalf("down timer at %v after the advert, want %v", d.Sub(heard), mdi)
	}
	r.clock.advanceTo(t, due.Add(-time.Nanosecond))
	if n := len(r.advertsSince(start)); n != 0 || r.instance(t, "VI_1").GetState() != pb.VrrpState_VRRP_STATE_BACKUP {
		t.Fatalf("1 ns early: %d adverts sent, state %v", n, r.instance(t, "VI_1").GetState())
	}
	r.clock.advanceTo(t, due)
	sentNow := r.advertsSince(start)
	if len(sentNow) != 1 || !sentNow[0].at.Equal(due) || sentNow[0].pkt.Priority != 100 || sentNow[0].dst != netip.MustParseAddr("224.0.0.18") {
		t.Fatalf("takeover adverts %+v, want one at priority 100 to 224.0.0.18 at the deadline", sentNow)
	}
	if st := r.instance(t, "VI_1"); st.GetState() != pb.VrrpState_VRRP_STATE_MASTER || st.GetCounters().GetBecameMaster() != 1 {
		t.Fatalf("after the down timer: %v", st)
	}
	if ops := r.addrs.opsCopy(); !slices.Equal(ops, []string{"+" + vip}) {
		t.Fatalf("address operations %v", ops)
	}
	if n := r.net.announcedCount(); n != 5 {
		t.Fatalf("%d gratuitous ARPs on takeover, want garp_master_repeat 5", n)
	}
	// Adverts every second; the second GARP round 5 s after the takeover.
	r.runUntil(t, due.Add(5*time.Second))
	if n := len(r.advertsSince(due)); n != 6 {
		t.Fatalf("%d adverts in the 5 s after the takeover, want 6", n)
	}
	if n := r.net.announcedCount(); n != 10 {
		t.Fatalf("%d gratuitous ARPs 5 s after the takeover, want 10", n)
	}
}

// master makes the rig's VI_1 master by letting its down timer run out.
func (r *rig) master(t *testing.T, cfg *pb.VrrpInstance) time.Time {
	t.Helper()
	r.apply(t, snapshot(1, cfg))
	d := r.clock.sl.settle(t)
	r.clock.advanceTo(t, d)
	if st := r.instance(t, "VI_1"); st.GetState() != pb.VrrpState_VRRP_STATE_MASTER {
		t.Fatalf("not master: %v", st.GetState())
	}
	return d
}

// TestLoopFrozenMasterReannounces is the blackhole a frozen master left:
// a backup took over meanwhile and moved the hosts' ARP entries; when the
// master's late timer fires it sends gratuitous ARP again, and when it
// hears the other master it answers it at once and announces again.
func TestLoopFrozenMasterReannounces(t *testing.T) {
	r := newRig(t)
	cfg := vi1()
	cfg.Priority = 150
	became := r.master(t, cfg)
	r.runUntil(t, became.Add(5*time.Second)) // past the second round
	if c := r.instance(t, "VI_1").GetCounters(); c.GetResumedLate() != 0 {
		t.Fatalf("resumed_late %d before any freeze", c.GetResumedLate())
	}
	garps := r.net.announcedCount()
	// Frozen for 4 s: the timer due 1 s from now fires 3 s late.
	n0 := len(r.net.sentAdverts())
	r.clock.advanceTo(t, r.nextDeadline().Add(3*time.Second))
	if a := r.sentAfter(n0); len(a) != 1 {
		t.Fatalf("%d adverts on resuming, want 1", len(a))
	}
	if n := r.net.announcedCount() - garps; n != 5 {
		t.Fatalf("%d gratuitous ARPs on resuming, want garp_master_repeat 5", n)
	}
	if c := r.instance(t, "VI_1").GetCounters(); c.GetResumedLate() != 1 {
		t.Fatalf("resumed_late %d", c.GetResumedLate())
	}
	// The other master, which took over, is still advertising.
	garps = r.net.announcedCount()
	at := r.clock.advance(t, 100*time.Millisecond)
	n := len(r.net.sentAdverts())
	sub := r.e.Subscribe()
	defer sub.Close()
	<-sub.C // the snapshot
	r.received(t, advert(100), peer, 255)
	select {
	case ev := <-sub.C:
		lp := ev.GetLowerPriorityMaster()
		if lp.GetInstance() != "VI_1" || lp.GetFrom() != peer.String() || lp.GetTheirPriority() != 100 || lp.GetPriority() != 150 {
			t.Fatalf("event %v, want VI_1's lower_priority_master from %v at 100", ev, peer)
		}
	default:
		t.Fatal("no lower_priority_master event (notify_master_rx_lower_pri hangs off it)")
	}
	answered := r.sentAfter(n)
	if len(answered) != 1 || !answered[0].at.Equal(at) || answered[0].pkt.Priority != 150 {
		t.Fatalf("answer to the lower priority master: %+v, want one advert at once", answered)
	}
	st := r.instance(t, "VI_1")
	if n := r.net.announcedCount() - garps; n != 2 || st.GetCounters().GetLowerPriorityMasterHeard() != 1 {
		t.Fatalf("%d gratuitous ARPs (want garp_lower_prio_repeat 2), lower_priority_master_heard %d",
			n, st.GetCounters().GetLowerPriorityMasterHeard())
	}
	if st.GetState() != pb.VrrpState_VRRP_STATE_MASTER {
		t.Fatalf("state %v", st.GetState())
	}
}

// TestReceiveDrops sends bad adverts through the reader and the
// per-instance checks: each is counted under its reason and none reaches
// the state machine (the down timer does not move).
func TestReceiveDrops(t *testing.T) {
	r := newRig(t)
	r.apply(t, snapshot(1, vi1()))
	due := r.clock.sl.settle(t)
	v2 := advert(200)
	v2.Version, v2.MaxAdvertInterval = 2, time.Second
	other := advert(200)
	other.VRID = 52
	for _, tc := range []struct {
		name   string
		p      vrrp.Packet
		ttl    uint8
		reason string
	}{
		{"ttl 64", advert(200), 64, vrrp.DropBadTTL.String()},
		{"v2 to a v3 instance", v2, 255, vrrp.DropBadVersion.String()},
	} {
		r.received(t, tc.p, peer, tc.ttl)
		st := r.instance(t, "VI_1")
		if got := dropCount(st.GetCounters(), tc.reason); got != 1 {
			t.Errorf("%s: %s = %d, want 1 (counters %v)", tc.name, tc.reason, got, st.GetCounters())
		}
		if st.GetCounters().GetAdvertsReceived() != 0 {
			t.Errorf("%s reached the state machine", tc.name)
		}
	}
	r.received(t, other, peer, 255)
	if n := r.instance(t, "VI_1").GetCounters().GetSocketUnknownVrid(); n != 1 {
		t.Errorf("unknown VRID counted %d times", n)
	}
	if d := r.clock.sl.settle(t); !d.Equal(due) {
		t.Errorf("a dropped advert moved the down timer by %v", d.Sub(due))
	}
}

func dropCount(c *pb.InstanceCounters, reason string) uint64 {
	for _, d := range c.GetDrops() {
		if d.GetReason() == reason {
			return d.GetCount()
		}
	}
	return 0
}

// TestApplyInPlaceRestartAndRefusals: a VIP added in place keeps the
// master master and announces only the new address, and so do a new
// priority and advert_int; a changed VRID restarts the instance (priority 0
// first); a bad snapshot and an older generation change nothing.
func TestApplyInPlaceRestartAndRefusals(t *testing.T) {
	r := newRig(t)
	r.master(t, vi1())
	since := r.instance(t, "VI_1").GetStateSince().AsTime()
	garps := r.net.announcedCount()

	two := vi1()
	two.VirtualIpaddress = append(two.VirtualIpaddress, &pb.VirtualAddress{Prefix: "192.0.2.101/32"})
	resp := r.apply(t, snapshot(2, two))
	if !slices.Equal(resp.GetChanged(), []string{"VI_1"}) || len(resp.GetWarnings()) != 0 {
		t.Fatalf("in-place apply: %v", resp)
	}
	st := r.instance(t, "VI_1")
	if st.GetState() != pb.VrrpState_VRRP_STATE_MASTER || !st.GetStateSince().AsTime().Equal(since) {
		t.Fatalf("the master flapped on an in-place change: %v since %v", st.GetState(), st.GetStateSince().AsTime())
	}
	if ops := r.addrs.opsCopy(); !slices.Equal(ops, []string{"+" + vip, "+192.0.2.101/32"}) {
		t.Fatalf("address operations %v", ops)
	}
	if n := r.net.announcedCount() - garps; n != 5 {
		t.Fatalf("%d gratuitous ARPs for the new address, want 5", n)
	}

	for _, bad := range []func(*pb.VrrpInstance){
		func(c *pb.VrrpInstance) { c.Vrid = 300 },
		func(c *pb.VrrpInstance) { c.Priority = 0 },
		func(c *pb.VrrpInstance) { c.VirtualIpaddress[0].Prefix = "not an address" },
		func(c *pb.VrrpInstance) { c.AdvertInt = durationpb.New(0) },
	} {
		c := vi1()
		bad(c)
		_, err := r.e.Apply(context.Background(), snapshot(3, c))
		var inv *InvalidSnapshotError
		if !errors.As(err, &inv) || status.Code(grpcError(err)) != codes.InvalidArgument {
			t.Fatalf("bad snapshot: err %v, want InvalidSnapshotError", err)
		}
	}
	if _, err := r.e.Apply(context.Background(), snapshot(1, vi1())); !errors.Is(err, ErrOldGeneration) ||
		status.Code(grpcError(err)) != codes.FailedPrecondition {
		t.Fatalf("older generation: err %v", err)
	}
	if st := r.instance(t, "VI_1"); st.GetState() != pb.VrrpState_VRRP_STATE_MASTER || len(st.GetVirtualIpaddress()) != 2 {
		t.Fatalf("a refused snapshot changed the instance: %v", st)
	}

	// Priority and advert_int change in place (vrrp.Machine.Reconfigure):
	// no flap, no priority 0, and the next advert carries both.
	tuned := vi1()
	tuned.VirtualIpaddress = two.VirtualIpaddress
	tuned.Priority, tuned.AdvertInt = 120, durationpb.New(2*time.Second)
	n := len(r.net.sentAdverts())
	resp = r.apply(t, snapshot(4, tuned))
	if !slices.Equal(resp.GetChanged(), []string{"VI_1"}) || len(resp.GetWarnings()) != 0 {
		t.Fatalf("in-place priority/advert_int apply: %v", resp)
	}
	r.clock.advanceTo(t, r.clock.sl.settle(t))
	sentNow := r.sentAfter(n)
	if len(sentNow) == 0 || sentNow[0].pkt.Priority != 120 || sentNow[0].pkt.MaxAdvertInterval != 2*time.Second {
		t.Fatalf("after the in-place change sent %+v, want an advert with priority 120, interval 2s", sentNow)
	}
	if st := r.instance(t, "VI_1"); st.GetState() != pb.VrrpState_VRRP_STATE_MASTER || !st.GetStateSince().AsTime().Equal(since) {
		t.Fatalf("the master flapped on a priority change: %v since %v", st.GetState(), st.GetStateSince().AsTime())
	}

	moved := vi1()
	moved.Vrid = 52
	n = len(r.net.sentAdverts())
	resp = r.apply(t, snapshot(5, moved))
	if !slices.Equal(resp.GetChanged(), []string{"VI_1"}) || len(resp.GetWarnings()) != 1 {
		t.Fatalf("restart apply: %v", resp)
	}
	sentNow = r.sentAfter(n)
	if len(sentNow) != 1 || sentNow[0].pkt.Priority != 0 {
		t.Fatalf("restart sent %+v, want one priority 0 advert", sentNow)
	}
	if st := r.instance(t, "VI_1"); st.GetState() != pb.VrrpState_VRRP_STATE_BACKUP {
		t.Fatalf("after restart: %v", st.GetState())
	}
	ops := r.addrs.opsCopy()
	if !slices.Contains(ops, "-"+vip) || !slices.Contains(ops, "-192.0.2.101/32") {
		t.Fatalf("the restarted master kept its addresses: %v", ops)
	}
}

// TestEvents: a subscriber gets a snapshot, then each transition with its
// reason and each address taken.
func TestEvents(t *testing.T) {
	r := newRig(t)
	r.apply(t, snapshot(1, vi1()))
	sub := r.e.Subscribe()
	defer sub.Close()
	first := <-sub.C
	if s := first.GetSnapshot(); len(s.GetInstances()) != 1 || s.GetInstances()[0].GetState() != pb.VrrpState_VRRP_STATE_BACKUP {
		t.Fatalf("first event %v, want a snapshot with VI_1 in BACKUP", first)
	}
	d := r.clock.sl.settle(t)
	r.clock.advanceTo(t, d)
	tr := (<-sub.C).GetTransition()
	if tr.GetInstance() != "VI_1" || tr.GetFrom() != pb.VrrpState_VRRP_STATE_BACKUP || tr.GetTo() != pb.VrrpState_VRRP_STATE_MASTER ||
		tr.GetReason() != "master down timer expired" {
		t.Fatalf("transition event %v", tr)
	}
	if a := (<-sub.C).GetAddress(); a.GetPrefix() != vip || !a.GetHeld() {
		t.Fatalf("address event %v", a)
	}
	r.stop()
	var last *pb.VrrpEvent
	for ev := range sub.C {
		last = ev
	}
	if last.GetAddress().GetHeld() || last.GetAddress().GetPrefix() != vip {
		t.Fatalf("last event before the engine stopped: %v, want %s released", last, vip)
	}
}

func TestArrival(t *testing.T) {
	now := time.Now() // with a monotonic reading, as the real clock's
	wall := now.Round(0)
	for _, tc := range []struct {
		name   string
		kernel time.Time
		want   time.Duration // before now
	}{
		{"no stamp", time.Time{}, 0},
		{"300 µs ago", wall.Add(-300 * time.Microsecond), 300 * time.Microsecond},
		{"future: the clock stepped back", wall.Add(time.Second), 0},
		{"an hour ago: the clock stepped forward", wall.Add(-time.Hour), 0},
	} {
		got := arrival(now, tc.kernel)
		if now.Sub(got) != tc.want {
			t.Errorf("%s: arrival %v before now, want %v", tc.name, now.Sub(got), tc.want)
		}
		if !strings.Contains(got.String(), " m=") { // time.Time.String shows the monotonic reading
			t.Errorf("%s: arrival lost the monotonic reading", tc.name)
		}
	}
}

// TestMcastGroup: vrrp_mcast_group4 (resolved by the snapshot into the
// instance) is the group the socket joins and the adverts go to.
func TestMcastGroup(t *testing.T) {
	r := newRig(t)
	in := vi1()
	in.McastGroup = "224.0.0.99"
	r.apply(t, snapshot(1, in))
	d := r.clock.sl.settle(t)
	r.clock.advanceTo(t, d)
	ads := r.net.sentAdverts()
	if len(ads) == 0 {
		t.Fatal("no advert")
	}
	for _, a := range ads {
		if a.dst != netip.MustParseAddr("224.0.0.99") {
			t.Fatalf("advert to %v, want the configured group 224.0.0.99", a.dst)
		}
	}
}

// TestGarpInterval: with vrrp_garp_interval the messages of a round leave
// spaced by it (on the real clock, which the pacer uses), not in a burst.
func TestGarpInterval(t *testing.T) {
	r := newRig(t)
	in := vi1()
	const gap = 20 * time.Millisecond
	in.Garp.Interval = durationpb.New(gap)
	r.apply(t, snapshot(1, in))
	d := r.clock.sl.settle(t)
	r.clock.advanceTo(t, d) // MASTER: a round of garp_master_repeat 5
	deadline := time.Now().Add(5 * time.Second)
	for r.net.announcedCount() < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 5 gratuitous ARPs after 5 s", r.net.announcedCount())
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.net.mu.Lock()
	at := append([]time.Time(nil), r.net.announcedAt...)
	r.net.mu.Unlock()
	for i := 1; i < len(at); i++ {
		if d := at[i].Sub(at[i-1]); d < gap {
			t.Errorf("messages %d and %d %v apart, want at least vrrp_garp_interval %v", i-1, i, d, gap)
		}
	}
}
