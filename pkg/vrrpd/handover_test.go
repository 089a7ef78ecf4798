package vrrpd

import (
	"slices"
	"testing"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// TestReloadMovesVIPOnce: a VIP moved from one master instance to another
// in one reload stays on the interface (no remove, no re-add), in either
// order of the two instances in the file; the event stream says who holds
// it now. keepalived needs two reloads for this (keepalived#1854).
func TestReloadMovesVIPOnce(t *testing.T) {
	for _, order := range []string{"loser first", "winner first"} {
		t.Run(order, func(t *testing.T) {
			r := newRig(t)
			const moving = "192.0.2.50/32"
			a, b := vi1(), vi1()
			b.Name, b.Vrid, b.VirtualIpaddress = "VI_2", 52, []*pb.VirtualAddress{{Prefix: "192.0.2.200/32"}}
			a.VirtualIpaddress = append(a.VirtualIpaddress, &pb.VirtualAddress{Prefix: moving})
			r.apply(t, snapshot(1, a, b))
			r.clock.advanceTo(t, r.clock.sl.settle(t))
			for _, n := range []string{"VI_1", "VI_2"} {
				if st := r.instance(t, n); st.GetState() != pb.VrrpState_VRRP_STATE_MASTER {
					t.Fatalf("%s: %v, want MASTER", n, st.GetState())
				}
			}
			sub := r.e.Subscribe()
			defer sub.Close()
			<-sub.C // the snapshot
			before := len(r.addrs.opsCopy())

			a2, b2 := vi1(), vi1()
			b2.Name, b2.Vrid, b2.VirtualIpaddress = "VI_2", 52, []*pb.VirtualAddress{{Prefix: "192.0.2.200/32"}, {Prefix: moving}}
			ins := []*pb.VrrpInstance{a2, b2}
			if order == "winner first" {
				ins = []*pb.VrrpInstance{b2, a2}
			}
			resp := r.apply(t, snapshot(2, ins...))
			if len(resp.GetChanged()) != 2 || len(resp.GetWarnings()) != 0 {
				t.Fatalf("apply: %v", resp)
			}
			if ops := r.addrs.opsCopy()[before:]; slices.Contains(ops, "-"+moving) {
				t.Fatalf("the moved VIP was removed from the interface: %v", ops)
			}
			var got []string
			for len(got) < 2 {
				ev := <-sub.C
				if ad := ev.GetAddress(); ad != nil && ad.GetPrefix() == moving {
					got = append(got, ad.GetInstance()+map[bool]string{true: " holds", false: " released"}[ad.GetHeld()])
				}
			}
			slices.Sort(got)
			if want := []string{"VI_1 released", "VI_2 holds"}; !slices.Equal(got, want) {
				t.Fatalf("address events %v, want %v", got, want)
			}
			for _, n := range []string{"VI_1", "VI_2"} {
				if st := r.instance(t, n); st.GetState() != pb.VrrpState_VRRP_STATE_MASTER {
					t.Fatalf("%s after the reload: %v, want MASTER", n, st.GetState())
				}
			}
			r.stop()
		})
	}
}
