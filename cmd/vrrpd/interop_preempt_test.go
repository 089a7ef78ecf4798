package main

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// TestInteropNopreempt: a running lower-priority master (priority 100) is
// joined by a higher-priority router (150) configured `state BACKUP` and
// `nopreempt`: it stays backup for longer than it would take to preempt,
// and takes over only when the master dies. Each implementation plays the
// nopreempt router against the other, so both show the same behaviour.
func TestInteropNopreempt(t *testing.T) {
	t.Parallel()
	for _, high := range []impl{vrrpkit, keepalived} {
		t.Run(string(high)+"-nopreempt", func(t *testing.T) {
			t.Parallel()
			testNopreempt(t, high)
		})
	}
}

func testNopreempt(t *testing.T, highImpl impl) {
	lab := newLab(t)
	lan := lab.Segment("lan")
	ha := lab.Host("ra", lan) // low priority, master first
	hb := lab.Host("rb", lan) // high priority, nopreempt
	const interval = time.Second
	const lowPrio, highPrio = 100, 150
	vip := lan.VIP4(1)
	c := inst{vrid: 51, version: 3, interval: interval, vips: []netip.Addr{vip}}

	c.prio = lowPrio
	low := start(t, lab, other(highImpl), ha, conf("ra", c))
	waitState(t, low, "VI_1", "MASTER", masterDownInterval(lowPrio, interval)+10*time.Second)

	c.prio, c.nopreempt = highPrio, true
	started := time.Now()
	high := start(t, lab, highImpl, hb, conf("rb", c))
	waitState(t, high, "VI_1", "BACKUP", 10*time.Second)
	// A router that preempts takes over one Master_Down_Interval after it
	// starts; watch for two intervals more than that.
	hold := started.Add(masterDownInterval(highPrio, interval) + 2*interval)
	for time.Now().Before(hold) {
		for _, check := range []func() (bool, string){
			stateIs(high, "VI_1", "BACKUP"),
			stateIs(low, "VI_1", "MASTER"),
			func() (bool, string) {
				return !hasVIP(t, hb, vip), fmt.Sprintf("%v is on the nopreempt router %s", vip, hb)
			},
		} {
			if ok, why := check(); !ok {
				t.Fatalf("%s after the nopreempt %s started: %s", time.Since(started).Round(time.Millisecond), highImpl, why)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	switch r := high.(type) {
	case *keepalivedRouter:
		if n := r.masterEntries("VI_1"); n != 0 {
			t.Errorf("keepalived logged Entering MASTER STATE %d times", n)
		}
	case *vrrpkitRouter:
		in, err := r.Instance("VI_1")
		if err != nil {
			t.Fatal(err)
		}
		if n := in.GetCounters().GetBecameMaster(); n != 0 {
			t.Errorf("vrrpd counts became_master %d, want 0", n)
		}
		if in.GetMasterAddr() != ha.IPv4().String() {
			t.Errorf("vrrpd reports master %q, want %v", in.GetMasterAddr(), ha.IPv4())
		}
	}

	low.Crash(t)
	linkDown(t, ha)
	waitState(t, high, "VI_1", "MASTER", masterDownInterval(highPrio, interval)+10*time.Second)
	if !hasVIP(t, hb, vip) {
		t.Errorf("%s took over but %v is not on %s", highImpl, vip, hb)
	}
}

// TestInteropPreemptDelay: a higher-priority router (150) with
// `preempt_delay 2` joins a running lower-priority master (100): it is still
// backup 1s after it started and master 4s after. Both implementations play
// the delayed router, so their timings can be compared; the log shows them.
//
// Both keepalived and vrrpd accept the lower-priority master's adverts until
// preempt_delay after the first one, then ignore them, so the takeover comes
// a Master_Down_Interval after the last accepted advert: preempt_delay +
// Master_Down_Interval after the router hears the master. At advert_int 1
// that is about 5.6s; the test runs at 0.2s (about 2.7s) to fit the window.
func TestInteropPreemptDelay(t *testing.T) {
	t.Parallel()
	for _, high := range []impl{vrrpkit, keepalived} {
		t.Run(string(high)+"-delayed", func(t *testing.T) {
			t.Parallel()
			testPreemptDelay(t, high)
		})
	}
}

func testPreemptDelay(t *testing.T, highImpl impl) {
	lab := newLab(t)
	lan := lab.Segment("lan")
	ha := lab.Host("ra", lan) // low priority, master first
	hb := lab.Host("rb", lan) // high priority, preempt_delay
	const interval = 200 * time.Millisecond
	const delay = 2 * time.Second
	const lowPrio, highPrio = 100, 150
	vip := lan.VIP4(1)
	c := inst{vrid: 51, version: 3, interval: interval, vips: []netip.Addr{vip}}

	capture := lan.Capture(vrrpFilter)
	c.prio = lowPrio
	low := start(t, lab, other(highImpl), ha, conf("ra", c))
	waitState(t, low, "VI_1", "MASTER", masterDownInterval(lowPrio, interval)+10*time.Second)

	c.prio, c.preemptDelay = highPrio, delay
	started := time.Now()
	high := start(t, lab, highImpl, hb, conf("rb", c))

	time.Sleep(time.Until(started.Add(time.Second)))
	for _, check := range []func() (bool, string){stateIs(high, "VI_1", "BACKUP"), stateIs(low, "VI_1", "MASTER")} {
		if ok, why := check(); !ok {
			t.Fatalf("1s after the delayed %s started: %s", highImpl, why)
		}
	}
	if err := eventually(time.Until(started.Add(4*time.Second)), stateIs(high, "VI_1", "MASTER")); err != nil {
		t.Fatalf("4s after the delayed %s started: %v", highImpl, err)
	}
	waitState(t, low, "VI_1", "BACKUP", 5*time.Second)
	if !hasVIP(t, hb, vip) {
		t.Errorf("%s preempted but %v is not on %s", highImpl, vip, hb)
	}

	var firstHigh time.Time
	for _, a := range adverts(t, capture) {
		if a.src == hb.IPv4() {
			firstHigh = a.at
			break
		}
	}
	if firstHigh.IsZero() {
		t.Fatalf("capture: no advert from %s", hb)
	}
	took := firstHigh.Sub(started)
	t.Logf("%s with preempt_delay %v preempted %s after it started (preempt_delay + Master_Down_Interval = %s)",
		highImpl, delay, ms(took), ms(delay+masterDownInterval(highPrio, interval)))
	if took < delay {
		t.Errorf("%s preempted %s after it started, before preempt_delay %v", highImpl, ms(took), delay)
	}
}
