package main

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// TestInteropPeers: with keepalived on the segment, vrrpkit's status (what
// `vrrpctl peers` prints) names it with its priority and interval; when
// keepalived stops hearing vrrpkit (an nftables drop of VRRP on its host)
// and becomes master too, vrrpkit, still master, counts the other master:
// the split-brain counter rises on the instance and on the peer.
func TestInteropPeers(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("interop: nft is not installed")
	}
	lab := newLab(t)
	lan := lab.Segment("lan")
	ha := lab.Host("ra", lan)
	hb := lab.Host("rb", lan)
	vip := lan.VIP4(1)
	c := inst{vrid: 51, version: 3, interval: time.Second, vips: []netip.Addr{vip}}
	// keepalived first, so that it is master and advertising when vrrpkit
	// starts (a backup is silent: there would be nothing to hear).
	c.prio = 100
	ka := start(t, lab, keepalived, hb, conf("rb", c))
	waitState(t, ka, "VI_1", "MASTER", masterDownInterval(100, time.Second)+10*time.Second)
	c.prio = 150
	vk := startVrrpkit(t, lab, ha, conf("ra", c))
	waitState(t, vk, "VI_1", "MASTER", masterDownInterval(150, time.Second)+10*time.Second)
	waitState(t, ka, "VI_1", "BACKUP", 10*time.Second)

	peerOf := func(in *pb.InstanceStatus) *pb.PeerStatus {
		for _, p := range in.GetPeers() {
			if p.GetAddress() == hb.IPv4().String() {
				return p
			}
		}
		return nil
	}
	// Heard while it was master, before vrrpkit preempted it.
	var in *pb.InstanceStatus
	if err := eventually(10*time.Second, func() (bool, string) {
		var err error
		if in, err = vk.Instance("VI_1"); err != nil {
			return false, err.Error()
		}
		p := peerOf(in)
		return p != nil && p.GetPriority() == 100 && p.GetAdvertInterval().AsDuration() == time.Second,
			fmt.Sprintf("peers %v, want %v at priority 100, interval 1s", in.GetPeers(), hb.IPv4())
	}); err != nil {
		t.Fatal(err)
	}
	before := in.GetCounters().GetOtherMasterHeard()

	// keepalived goes deaf to VRRP: it becomes master while vrrpkit is.
	nft := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", hb.Netns(), "nft"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("nft %v: %v: %s", args, err, out)
		}
	}
	nft("add", "table", "ip", "deaf")
	nft("add", "chain", "ip", "deaf", "in", "{ type filter hook input priority 0; }")
	nft("add", "rule", "ip", "deaf", "in", "ip", "protocol", "vrrp", "drop")
	waitState(t, ka, "VI_1", "MASTER", masterDownInterval(100, time.Second)+10*time.Second)
	if err := eventually(10*time.Second, func() (bool, string) {
		var err error
		if in, err = vk.Instance("VI_1"); err != nil {
			return false, err.Error()
		}
		p := peerOf(in)
		return in.GetState() == pb.VrrpState_VRRP_STATE_MASTER && in.GetCounters().GetOtherMasterHeard() >= before+3 &&
				p != nil && p.GetHeardWhileMaster() >= 3,
			fmt.Sprintf("state %v, other_master_heard %d (was %d), peer %v", in.GetState(), in.GetCounters().GetOtherMasterHeard(), before, p)
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("split brain seen: other_master_heard %d, peer %v", in.GetCounters().GetOtherMasterHeard(), peerOf(in))
}
