package main

import (
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// TestInteropFrozenMaster is a master that stalls (a VM pause, a stuck
// disk: SIGSTOP of every vrrpkit process) for longer than the backup's
// Master_Down_Interval while a client pings the VIP every 20 ms. The backup
// takes over and moves the client with gratuitous ARP; the master resumes,
// still MASTER at the higher priority, and the backup yields. Unless the
// resumed master re-announces, the client keeps sending to the backup's MAC
// until its neighbour entry goes stale (7.7 s measured before the fix).
// Both mixes: a keepalived backup and a vrrpkit backup.
func TestInteropFrozenMaster(t *testing.T) {
	t.Parallel()
	for _, peerImpl := range []impl{keepalived, vrrpkit} {
		t.Run("backup-"+string(peerImpl), func(t *testing.T) {
			t.Parallel()
			lab := newLab(t)
			seg := lab.Segment("lan")
			ha, hb, hc := lab.Host("ra", seg), lab.Host("rb", seg), lab.Host("client", seg)
			vip := seg.VIP4(1)
			c := inst{vrid: 71, version: 3, interval: 100 * time.Millisecond, vips: []netip.Addr{vip}}
			high, low := c, c
			high.prio, low.prio = 150, 100
			master := startVrrpkit(t, lab, ha, conf("ra", high))
			backup := start(t, lab, peerImpl, hb, conf("rb", low))
			waitElected(t, "VI_1", high.vips, 15*time.Second, master, backup)

			mon, err := hc.PingMonitor(vip, 20*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { mon.Stop() }) // on every exit path
			if err := eventually(5*time.Second, func() (bool, string) {
				return mon.AnsweredSince(500 * time.Millisecond), "the client's pings are not answered"
			}); err != nil {
				t.Fatal(err)
			}
			pids, err := netnsPids(ha)
			if err != nil || len(pids) < 2 {
				t.Fatalf("vrrpkit's processes in %s: %v %v", ha, pids, err)
			}
			frozen := time.Now()
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGSTOP)
			}
			// The fault: frozen 0.8 s, and at least until the backup took
			// over (its Master_Down_Interval is 361 ms), or the test shows
			// nothing.
			tookOver := eventually(5*time.Second, stateIs(backup, "VI_1", "MASTER"))
			time.Sleep(time.Until(frozen.Add(800 * time.Millisecond)))
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGCONT)
			}
			resumed := time.Now()
			if tookOver != nil {
				t.Fatalf("the backup did not take over while the master was frozen: %v", tookOver)
			}
			waitElected(t, "VI_1", high.vips, 10*time.Second, master, backup)
			// Long enough for a client stuck on the wrong MAC to show it.
			if err := eventually(10*time.Second, func() (bool, string) {
				return time.Since(resumed) > 2*time.Second && mon.AnsweredSince(time.Second), "the client's pings are not answered"
			}); err != nil {
				t.Error(err)
			}
			worst, sent, answered := mon.Stop()
			t.Logf("frozen %s, resumed; client: %d of %d pings answered, worst outage %s (%d lost)",
				ms(resumed.Sub(frozen)), answered, sent, ms(worst.Length), worst.Lost)
			in, err := master.Instance("VI_1")
			if err != nil {
				t.Fatal(err)
			}
			cn := in.GetCounters()
			t.Logf("vrrpkit master: resumed_late %d, lower_priority_master_heard %d", cn.GetResumedLate(), cn.GetLowerPriorityMasterHeard())
			if worst.Length > 100*time.Millisecond {
				t.Errorf("worst client outage %s, want at most 100 ms", ms(worst.Length))
			}
			if cn.GetResumedLate()+cn.GetLowerPriorityMasterHeard() == 0 {
				t.Errorf("the resumed master never re-announced (counters %v)", cn)
			}
		})
	}
}
