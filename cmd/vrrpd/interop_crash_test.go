package main

import (
	"context"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/netlab"
)

// TestInteropVrrpdCrash is the design's "a crash of vrrpd causes no
// failover": vrrpd, master, is SIGKILLed (the supervisor lives on); the
// supervisor restarts it and the new vrrpd, finding the VIP still on the
// interface, resumes as master before the keepalived backup's
// Master_Down_Interval runs out. keepalived never becomes master and the VIP
// never leaves. VRRPKIT_CRASH_INTERVAL (e.g. 0.1s) tightens the race; the
// default 0.5 s keeps a loaded CI machine out of it.
func TestInteropVrrpdCrash(t *testing.T) {
	t.Parallel()
	lab := newLab(t)
	seg := lab.Segment("lan")
	ha, hb := lab.Host("ra", seg), lab.Host("rb", seg)
	vip := seg.VIP4(1)
	interval := 500 * time.Millisecond
	if v, err := time.ParseDuration(os.Getenv("VRRPKIT_CRASH_INTERVAL")); err == nil {
		interval = v
	}
	c := inst{vrid: 61, version: 3, interval: interval, vips: []netip.Addr{vip}}
	high, low := c, c
	high.prio, low.prio = 200, 100
	va := startVrrpkit(t, lab, ha, conf("ra", high))
	kb := start(t, lab, keepalived, hb, conf("rb", low))
	waitElected(t, "VI_1", high.vips, 15*time.Second, va, kb)
	masterEntriesAtElection := kb.(*keepalivedRouter).masterEntries("VI_1")
	// The supervisor keeps its resume record from vrrpd's event stream: wait
	// until it has seen the election.
	if err := va.Proc().WaitLog(`msg="vrrp transition" instance=VI_1 from=BACKUP to=MASTER`, 5*time.Second); err != nil {
		t.Fatal(err)
	}

	capt := seg.Capture(vrrpFilter)
	if err := capt.WaitPackets(3, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	before, err := va.Instance("VI_1")
	if err != nil {
		t.Fatal(err)
	}
	killVrrpd(t, va)
	// The restarted vrrpd is master again, without a step down in between.
	err = eventually(10*time.Second, func() (bool, string) {
		st, err := va.Instance("VI_1")
		if err != nil {
			return false, err.Error()
		}
		return st.GetState().String() == "VRRP_STATE_MASTER" && st.GetStateSince().AsTime().After(before.GetStateSince().AsTime()),
			"restarted vrrpd is " + st.GetState().String()
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if !hasVIP(t, ha, vip) || hasVIP(t, hb, vip) {
		t.Errorf("the VIP moved: on ra %v, on rb %v", hasVIP(t, ha, vip), hasVIP(t, hb, vip))
	}
	// keepalived became master once at most before vrrpkit's first advert
	// at startup; count from the election on.
	if n := kb.(*keepalivedRouter).masterEntries("VI_1"); n != masterEntriesAtElection {
		t.Errorf("keepalived became master %d times during the vrrpd crash", n)
	}
	list := adverts(t, capt)
	var gap time.Duration
	var last time.Time
	for _, a := range list {
		if a.src != ha.IPv4() {
			if a.prio != 0 {
				t.Errorf("keepalived advertised at %s during the crash", a.at.Format(time.StampMicro))
			}
			continue
		}
		if !last.IsZero() && a.at.Sub(last) > gap {
			gap = a.at.Sub(last)
		}
		last = a.at
	}
	t.Logf("longest silence of the vrrpkit master across the vrrpd crash: %s (keepalived's Master_Down_Interval: %s)",
		ms(gap), ms(masterDownInterval(100, c.interval)))
}

// killVrrpd SIGKILLs vrrpd alone; the supervisor stays. The pid comes
// from the router's network namespace: pgrep would see every test's vrrpd.
func killVrrpd(t *testing.T, r *vrrpkitRouter) {
	t.Helper()
	pids, err := netnsPids(r.Host())
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	for _, p := range pids {
		comm, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/comm")
		if err == nil && strings.TrimSpace(string(comm)) == "vrrpd" {
			pid = p
			break
		}
	}
	if pid == 0 {
		t.Fatalf("no vrrpd among the pids %v of %s", pids, r.Host())
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

// TestInteropInterfaceFault: an instance whose interface goes down is FAULT
// (a master steps down, keepalived takes over) and comes back when the
// interface does.
func TestInteropInterfaceFault(t *testing.T) {
	t.Parallel()
	lab := newLab(t)
	seg := lab.Segment("lan")
	ha, hb := lab.Host("ra", seg), lab.Host("rb", seg)
	vip := seg.VIP4(1)
	c := inst{vrid: 62, version: 3, interval: 100 * time.Millisecond, vips: []netip.Addr{vip}}
	high, low := c, c
	high.prio, low.prio = 200, 100
	va := startVrrpkit(t, lab, ha, conf("ra", high))
	kb := start(t, lab, keepalived, hb, conf("rb", low))
	waitElected(t, "VI_1", high.vips, 15*time.Second, va, kb)

	setLink(t, ha, "down")
	waitState(t, va, "VI_1", "FAULT", 5*time.Second)
	waitState(t, kb, "VI_1", "MASTER", 5*time.Second)
	if hasVIP(t, ha, vip) {
		t.Errorf("a FAULT instance kept its VIP")
	}
	setLink(t, ha, "up")
	// Back up: it preempts keepalived again (priority 200 > 100).
	waitElected(t, "VI_1", high.vips, 10*time.Second, va, kb)
}

func setLink(t *testing.T, h *netlab.Host, state string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := h.Run(ctx, "ip", "link", "set", "eth0", state); err != nil {
		t.Fatal(err)
	}
}
