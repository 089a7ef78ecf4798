package vrrpd

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/vrrp"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// TestPeers: status lists each router heard on the VRID with what it last
// advertised and what of it was dropped; an advert from another master
// while this one is MASTER counts as split brain, one heard as backup does
// not.
func TestPeers(t *testing.T) {
	r := newRig(t)
	r.apply(t, snapshot(1, vi1()))
	// As backup: a master at 200 is heard, not a split brain.
	r.received(t, advert(200), peer, 255)
	other := netip.MustParseAddr("192.0.2.3")
	bad := advert(90)
	bad.Version, bad.MaxAdvertInterval = 2, time.Second
	r.received(t, bad, other, 255)

	find := func(st *pb.InstanceStatus, a netip.Addr) *pb.PeerStatus {
		for _, p := range st.GetPeers() {
			if p.GetAddress() == a.String() {
				return p
			}
		}
		t.Fatalf("no peer %v in %v", a, st.GetPeers())
		return nil
	}
	st := r.instance(t, "VI_1")
	if p := find(st, peer); p.GetPriority() != 200 || p.GetAdverts() != 1 || p.GetAdvertInterval().AsDuration() != time.Second ||
		p.GetHeardWhileMaster() != 0 || len(p.GetDrops()) != 0 {
		t.Errorf("peer %v: %v", peer, p)
	}
	if p := find(st, other); p.GetAdverts() != 0 || len(p.GetDrops()) != 1 || p.GetDrops()[0].GetReason() != vrrp.DropBadVersion.String() {
		t.Errorf("peer %v: %v, want one %s drop", other, p, vrrp.DropBadVersion)
	}
	if n := st.GetCounters().GetOtherMasterHeard(); n != 0 {
		t.Errorf("other_master_heard %d as backup", n)
	}

	// The master stops; this router takes over and then hears a second
	// master: split brain, counted on the instance and the peer.
	r.received(t, advert(0), peer, 255)
	r.clock.advanceTo(t, r.clock.sl.settle(t))
	if st := r.instance(t, "VI_1"); st.GetState() != pb.VrrpState_VRRP_STATE_MASTER {
		t.Fatalf("not master after priority 0: %v", st.GetState())
	}
	r.received(t, advert(50), other, 255)
	st = r.instance(t, "VI_1")
	if n := st.GetCounters().GetOtherMasterHeard(); n != 1 {
		t.Errorf("other_master_heard = %d, want 1", n)
	}
	if p := find(st, other); p.GetHeardWhileMaster() != 1 || p.GetPriority() != 50 {
		t.Errorf("peer %v: %v", other, p)
	}
	if p := find(st, peer); p.GetPriority() != 0 || p.GetAdverts() != 2 {
		t.Errorf("peer %v after its priority 0: %v", peer, p)
	}
	r.stop()
}

// TestPeersBounded: spoofed sources do not grow the list past maxPeers; the
// least recently heard go.
func TestPeersBounded(t *testing.T) {
	in := &instance{}
	now := time.Unix(0, 0)
	for i := 0; i < 3*maxPeers; i++ {
		now = now.Add(time.Second)
		in.droppedLocked(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), vrrp.DropAuthMismatch, now)
	}
	if len(in.peers) != maxPeers {
		t.Fatalf("%d peers, want %d", len(in.peers), maxPeers)
	}
	for _, p := range in.peers {
		if p.last.Before(now.Add(-time.Duration(maxPeers-1) * time.Second)) {
			t.Errorf("kept %v heard at %v, not among the last %d", p.addr, p.last, maxPeers)
		}
	}
}
