package main

import (
	"fmt"
	"net/netip"

	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/vrrp"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// badPacket is one kind of invalid advert injected into the segment.
type badPacket struct {
	name    string
	inst    string // the instance whose counter goes up
	counter string // the vrrpd Status counter
	frame   func(prio uint8) []byte
	// frames, if set instead of frame, sends a packet as several frames.
	frames func(prio uint8) [][]byte
	// count is how many packets to send, 3 if 0.
	count int
}

// TestInteropBadPackets injects invalid adverts into the segment as raw
// Ethernet + IPv4 frames (netlab's SendRaw) to 224.0.0.18: a wrong TTL, a
// bad checksum, an unknown VRID, a wrong VRRPv2 password or none, truncated
// messages, a VRRPv2 advert to a VRRPv3 instance, and a higher priority
// carried by a packet with a bad TTL. None changes vrrpd's state, as master
// or as backup (behind a keepalived master), and each is counted in vrrpd's
// Status counters, once per packet.
//
// The adverts carry the priority that would hurt most if accepted: 254 to a
// master (it would step down), 0 to a backup (it would take over after
// Skew_Time).
func TestInteropBadPackets(t *testing.T) {
	t.Parallel()
	for _, role := range []string{"master", "backup"} {
		t.Run("vrrpkit-"+role, func(t *testing.T) {
			t.Parallel()
			testBadPackets(t, role == "master")
		})
	}
}

func testBadPackets(t *testing.T, asMaster bool) {
	lab := newLab(t)
	lan := lab.Segment("lan")
	inj := lab.Host("inj", lan)
	hv := lab.Host("vk", lan)
	const interval = time.Second
	const password = "secret"
	v3 := inst{name: "VI_3", vrid: 51, version: 3, interval: interval, vips: []netip.Addr{lan.VIP4(1)}}
	v2 := inst{name: "VI_2", vrid: 52, version: 2, interval: interval, vips: []netip.Addr{lan.VIP4(2)}, authPass: password}
	// A high priority makes Skew_Time short: a backup that accepted a
	// priority 0 advert would take over well before the master's next one.
	const vkPrio, kaPrio = 240, 250
	withPrio := func(c inst, prio int) inst { c.prio = prio; return c }
	want := "MASTER"
	var ka router
	if !asMaster {
		// keepalived first, so that it is master from the start.
		want = "BACKUP"
		hk := lab.Host("ka", lan)
		ka = start(t, lab, keepalived, hk, conf("ka", withPrio(v3, kaPrio), withPrio(v2, kaPrio)))
		for _, name := range []string{"VI_3", "VI_2"} {
			waitState(t, ka, name, "MASTER", masterDownInterval(kaPrio, interval)+10*time.Second)
		}
	}
	vk := startVrrpkit(t, lab, hv, conf("vk", withPrio(v3, vkPrio), withPrio(v2, vkPrio)))
	for _, name := range []string{"VI_3", "VI_2"} {
		if asMaster {
			waitState(t, vk, name, "MASTER", masterDownInterval(vkPrio, interval)+10*time.Second)
			continue
		}
		waitElected(t, name, nil, 10*time.Second, ka, vk)
		if err := waitCounter(vk, name, "adverts_received", 1, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}

	prio := uint8(254)
	if !asMaster {
		prio = 0
	}
	src := inj.IPv4()
	p3 := vrrp.Packet{Version: 3, VRID: 51, MaxAdvertInterval: interval, Addrs: v3.vips}
	p2 := vrrp.Packet{Version: 2, VRID: 52, MaxAdvertInterval: interval, Addrs: v2.vips, AuthType: vrrp.AuthPass}
	copy(p2.AuthData[:], password)
	with := func(p vrrp.Packet, prio uint8) vrrp.Packet { p.Priority = prio; return p }
	frame := func(ttl uint8, payload []byte) []byte { return ipv4Frame(inj.MAC(), src, ttl, payload) }

	// 1600 bytes of VRRP: longer than an MTU, so it comes in two fragments
	// that the kernel reassembles before the raw socket sees it; vrrpnet
	// returns ErrTruncated when the read buffer is shorter than the packet.
	var fragID uint16
	oversized := func(prio uint8) [][]byte {
		b := encode(t, with(p3, prio), src)
		b = append(b, make([]byte, 1600-len(b))...)
		fragID++
		return [][]byte{
			ipv4Fragment(inj.MAC(), src, 255, fragID, 0, true, b[:1480]),
			ipv4Fragment(inj.MAC(), src, 255, fragID, 1480, false, b[1480:]),
		}
	}
	cases := []badPacket{
		{name: "ttl-64", inst: "VI_3", counter: vrrp.DropBadTTL.String(), frame: func(prio uint8) []byte {
			return frame(64, encode(t, with(p3, prio), src))
		}},
		{name: "ttl-64-v2", inst: "VI_2", counter: vrrp.DropBadTTL.String(), frame: func(prio uint8) []byte {
			return frame(64, encode(t, with(p2, prio), src))
		}},
		{name: "higher-priority-ttl-254", inst: "VI_3", counter: vrrp.DropBadTTL.String(), frame: func(uint8) []byte {
			return frame(254, encode(t, with(p3, 254), src))
		}},
		{name: "bad-checksum", inst: "VI_3", counter: vrrp.DropBadChecksum.String(), frame: func(prio uint8) []byte {
			b := encode(t, with(p3, prio), src)
			b[6] ^= 0x5a
			return frame(255, b)
		}},
		{name: "bad-checksum-v2", inst: "VI_2", counter: vrrp.DropBadChecksum.String(), frame: func(prio uint8) []byte {
			b := encode(t, with(p2, prio), src)
			b[7] ^= 0x01
			return frame(255, b)
		}},
		{name: "unknown-vrid", inst: "VI_3", counter: "socket_unknown_vrid", frame: func(prio uint8) []byte {
			p := with(p3, prio)
			p.VRID = 99
			return frame(255, encode(t, p, src))
		}},
		{name: "wrong-password", inst: "VI_2", counter: vrrp.DropAuthMismatch.String(), frame: func(prio uint8) []byte {
			p := with(p2, prio)
			p.AuthData = [8]byte{}
			copy(p.AuthData[:], "wrong")
			return frame(255, encode(t, p, src))
		}},
		{name: "truncated-header", inst: "VI_3", counter: vrrp.DropTooShort.String(), frame: func(prio uint8) []byte {
			return frame(255, encode(t, with(p3, prio), src)[:6])
		}},
		{name: "truncated-address", inst: "VI_3", counter: vrrp.DropBadLength.String(), frame: func(prio uint8) []byte {
			b := encode(t, with(p3, prio), src)
			return frame(255, b[:len(b)-2])
		}},
		{name: "oversized-fragmented", inst: "VI_3", counter: vrrp.DropBadLength.String(), frames: oversized},
		// Enough of them to stall a reader that sleeps 10ms on each for
		// longer than Master_Down_Interval.
		{name: "oversized-flood", inst: "VI_3", counter: vrrp.DropBadLength.String(), frames: oversized, count: 400},
		{name: "no-auth-v2", inst: "VI_2", counter: vrrp.DropAuthTypeMismatch.String(), frame: func(prio uint8) []byte {
			p := with(p2, prio)
			p.AuthType, p.AuthData = vrrp.AuthNone, [8]byte{}
			return frame(255, encode(t, p, src))
		}},
		{name: "v2-to-v3-instance", inst: "VI_3", counter: vrrp.DropBadVersion.String(), frame: func(prio uint8) []byte {
			p := with(p2, prio)
			p.VRID = 51
			return frame(255, encode(t, p, src))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := uint64(c.count)
			if n == 0 {
				n = 3
			}
			if !asMaster {
				// Right after the master's advert, so that its next one
				// cannot mask a takeover.
				waitNextAdvert(t, vk, c.inst)
			}
			before := snapshotCounters(t, vk)
			var frames [][]byte
			for range n {
				if c.frames != nil {
					frames = append(frames, c.frames(prio)...)
				} else {
					frames = append(frames, c.frame(prio))
				}
			}
			var err error
			if len(frames) > 10 {
				// A burst: SendRaw opens a socket per frame, too slow.
				err = sendFrames(inj, frames)
			} else {
				for _, f := range frames {
					if err = inj.SendRaw("eth0", f); err != nil {
						break
					}
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := waitCounter(vk, c.inst, c.counter, before[c.inst][c.counter]+n, 5*time.Second+time.Duration(n)*10*time.Millisecond); err != nil {
				t.Error(err) // and see what the packets did to the state
			}
			// Long enough for a backup that accepted a priority 0 advert
			// to take over (Skew_Time) or a master that accepted a higher
			// priority to have stepped down.
			time.Sleep(skewTime(vkPrio, interval) + 150*time.Millisecond)
			after := snapshotCounters(t, vk)
			for name := range after {
				if got, err := vk.State(name); err != nil || got != want {
					t.Errorf("%s: state %q (%v) after %d %s packets, want %s", name, got, err, n, c.name, want)
				}
				for _, k := range []string{"became_master", "released_master"} {
					if after[name][k] != before[name][k] {
						t.Errorf("%s: %s went from %d to %d", name, k, before[name][k], after[name][k])
					}
				}
			}
			if got := after[c.inst][c.counter] - before[c.inst][c.counter]; got != n {
				t.Errorf("%s: %s went up by %d, want %d", c.inst, c.counter, got, n)
			}
		})
	}
}

// snapshotCounters returns every instance's counters.
func snapshotCounters(t *testing.T, r *vrrpkitRouter) map[string]map[string]uint64 {
	t.Helper()
	resp, err := r.Status()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]uint64{}
	for _, in := range resp.GetInstances() {
		out[in.GetName()] = counterMap(in.GetCounters())
	}
	return out
}

// waitNextAdvert waits until the instance has received one more advert.
func waitNextAdvert(t *testing.T, r *vrrpkitRouter, instance string) {
	t.Helper()
	in, err := r.Instance(instance)
	if err != nil {
		t.Fatal(err)
	}
	n := in.GetCounters().GetAdvertsReceived()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		in, err := r.Instance(instance)
		if err != nil {
			t.Fatal(err)
		}
		if in.GetCounters().GetAdvertsReceived() > n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s received no advert in 5s", instance)
}

// waitCounter waits until the instance's counter is at least want.
func waitCounter(r *vrrpkitRouter, instance, counter string, want uint64, timeout time.Duration) error {
	return eventually(timeout, func() (bool, string) {
		in, err := r.Instance(instance)
		if err != nil {
			return false, err.Error()
		}
		got := counterMap(in.GetCounters())[counter]
		return got >= want, fmt.Sprintf("%s counter %s is %d, want %d (counters %v)", instance, counter, got, want, in.GetCounters())
	})
}

// counterMap flattens an instance's counters by name, drops by reason, so
// that table-driven cases can name the counter they expect to move.
func counterMap(c *pb.InstanceCounters) map[string]uint64 {
	m := map[string]uint64{
		"adverts_received":    c.GetAdvertsReceived(),
		"adverts_sent":        c.GetAdvertsSent(),
		"became_master":       c.GetBecameMaster(),
		"socket_unknown_vrid": c.GetSocketUnknownVrid(),
		"socket_bad_packets":  c.GetSocketBadPackets(),
	}
	for _, d := range c.GetDrops() {
		m[d.GetReason()] = d.GetCount()
	}
	return m
}
