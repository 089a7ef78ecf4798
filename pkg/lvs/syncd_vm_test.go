package lvs

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/vrrpkit/vrrpkit/pkg/vmlab"
)

// TestSyncInVM runs the TestSyncGuest* tests in their own VM (they need a
// dummy interface, which TestInVM's VM does not load), against the real
// kernel through OpenGlobals, and compares with ipvsadm where it is there.
func TestSyncInVM(t *testing.T) {
	t.Parallel()
	opts := vmlab.Options{Modules: []string{"ip_vs_rr", "dummy"}}
	if p, err := exec.LookPath("ipvsadm"); err == nil {
		opts.HostPrograms = []string{p}
	}
	vmlab.RunTestsInVM(t, opts, "^TestSyncGuest")
}

// syncGuest opens the kernel's IPVS globals and gives it an interface with
// an IPv4 address (a master's sync socket binds to it: ip_vs_sync.c
// bind_mcastif_addr); both daemons are stopped again after the test.
func syncGuest(t *testing.T, ifname string) Globals {
	t.Helper()
	vmlab.RequireVM(t)
	g, err := OpenGlobals()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	if _, err := netlink.LinkByName(ifname); err != nil {
		la := netlink.NewLinkAttrs()
		la.Name = ifname
		if err := netlink.LinkAdd(&netlink.Dummy{LinkAttrs: la}); err != nil {
			t.Fatal(err)
		}
		l, err := netlink.LinkByName(ifname)
		if err != nil {
			t.Fatal(err)
		}
		addr, _ := netlink.ParseAddr("192.0.2.10/24")
		if err := netlink.AddrAdd(l, addr); err != nil {
			t.Fatal(err)
		}
		if err := netlink.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	stopAll := func() {
		for _, s := range []SyncState{SyncMaster, SyncBackup} {
			if err := g.StopSyncDaemon(s); err != nil && !errors.Is(err, syscall.ESRCH) {
				t.Errorf("cleanup: %v", err)
			}
		}
	}
	stopAll()
	t.Cleanup(stopAll)
	return g
}

func daemons(t *testing.T, g Globals) []SyncDaemon {
	t.Helper()
	ds, err := g.SyncDaemons()
	if err != nil {
		t.Fatalf("SyncDaemons: %v", err)
	}
	slices.SortFunc(ds, func(a, b SyncDaemon) int { return int(a.State) - int(b.State) })
	return ds
}

// stopDaemon stops the daemon in state s. Under qemu TCG the kernel
// sometimes answers the stop of a backup daemon only after many seconds
// (once not for minutes), although GET_DAEMON, from another socket, no
// longer lists it a few ms after the request (measured 3.5 ms): the kernel
// clears the daemon's state at once and answers when its thread has ended.
// StopSyncDaemon then reports success after stopAnswerWait; the test says
// when that happened, and would wait for a daemon that is really slow to go.
func stopDaemon(t *testing.T, g Globals, s SyncState) {
	t.Helper()
	start := time.Now()
	err := g.StopSyncDaemon(s)
	if err == nil {
		if d := time.Since(start); d > time.Second {
			t.Logf("SLOW KERNEL: the %s daemon's stop took %v (StopSyncDaemon found it gone from GET_DAEMON)", s, d.Round(time.Millisecond))
		}
		return
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("stopping the %s daemon: %v", s, err)
	}
	for {
		ds, err := g.SyncDaemons()
		if err != nil {
			t.Fatalf("after a stop that timed out (%v): %v", time.Since(start), err)
		}
		if !slices.ContainsFunc(ds, func(d SyncDaemon) bool { return d.State == s }) {
			t.Logf("SLOW KERNEL: the %s daemon's stop was not answered within the bound; it was gone %v after the request", s, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > 2*time.Minute {
			out, _ := exec.Command("dmesg").CombinedOutput()
			t.Fatalf("the %s daemon still runs %v after its stop\ndmesg:\n%s", s, time.Since(start), out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ipvsadmDaemons is `ipvsadm -L --daemon`, or "" without ipvsadm.
func ipvsadmDaemons(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("ipvsadm")
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, p, "-L", "--daemon").CombinedOutput()
	if err != nil {
		t.Fatalf("ipvsadm -L --daemon: %v\n%s", err, out)
	}
	return string(out)
}

// TestSyncGuestMasterBackup is keepalived's sequence for lvs_sync_daemon:
// backup at start, master when the instance becomes MASTER (stop backup,
// start master: ipvswrapper.c ipvs_syncd_master), backup again when it
// leaves MASTER, then stop.
func TestSyncGuestMasterBackup(t *testing.T) {
	g := syncGuest(t, "sync0")
	if ds := daemons(t, g); len(ds) != 0 {
		t.Fatalf("daemons before any start: %v", ds)
	}
	backup := SyncDaemon{State: SyncBackup, Interface: "sync0", SyncID: 51}
	if err := g.StartSyncDaemon(backup); err != nil {
		t.Fatal(err)
	}
	ds := daemons(t, g)
	if len(ds) != 1 || !backup.Runs(ds[0]) {
		t.Fatalf("after starting %v the kernel runs %v", backup, ds)
	}
	t.Logf("kernel: %v", ds)
	if out := ipvsadmDaemons(t); out != "" {
		t.Logf("ipvsadm -L --daemon:\n%s", out)
		if !strings.Contains(out, "backup sync daemon (mcast=sync0, syncid=51") {
			t.Errorf("ipvsadm does not list the backup daemon:\n%s", out)
		}
	}
	if err := g.StartSyncDaemon(backup); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("starting the backup twice: %v, want EEXIST", err)
	}

	// Becoming master, with every option set.
	master := SyncDaemon{State: SyncMaster, Interface: "sync0", SyncID: 51, MaxLen: 1200, Port: 9000, TTL: 3,
		Group: netip.MustParseAddr("224.0.0.82")}
	stopDaemon(t, g, SyncBackup)
	if err := g.StartSyncDaemon(master); err != nil {
		t.Fatal(err)
	}
	ds = daemons(t, g)
	if len(ds) != 1 || ds[0] != master {
		t.Fatalf("after becoming master the kernel runs %v, want %v", ds, master)
	}
	if out := ipvsadmDaemons(t); out != "" {
		t.Logf("ipvsadm -L --daemon:\n%s", out)
		if !strings.Contains(out, "master sync daemon (mcast=sync0, syncid=51, maxlen=1200, group=224.0.0.82, port=9000, ttl=3)") {
			t.Errorf("ipvsadm does not list the master daemon as started:\n%s", out)
		}
	}

	// Both at once is what keepalived runs for an lvs_sync_daemon that
	// follows no instance (check_daemon.c: IPVS_MASTER_BACKUP).
	if err := g.StartSyncDaemon(backup); err != nil {
		t.Fatal(err)
	}
	if ds := daemons(t, g); len(ds) != 2 || ds[0] != master || !backup.Runs(ds[1]) {
		t.Fatalf("master and backup: the kernel runs %v", ds)
	}

	// Leaving master.
	stopDaemon(t, g, SyncMaster)
	if ds := daemons(t, g); len(ds) != 1 || !backup.Runs(ds[0]) {
		t.Fatalf("after leaving master the kernel runs %v", ds)
	}
	stopDaemon(t, g, SyncBackup)
	if ds := daemons(t, g); len(ds) != 0 {
		t.Fatalf("after stopping both the kernel runs %v", ds)
	}
	if err := g.StopSyncDaemon(SyncBackup); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("stopping a stopped daemon: %v, want ESRCH", err)
	}
	if err := g.StartSyncDaemon(SyncDaemon{State: SyncMaster, Interface: "nosuch0"}); err == nil {
		t.Error("a daemon on a missing interface started")
	}

	// An IPv6 group travels as IPVS_DAEMON_ATTR_MCAST_GROUP6 both ways.
	b6 := SyncDaemon{State: SyncBackup, Interface: "sync0", SyncID: 9, Group: netip.MustParseAddr("ff02::1:2"), Port: 9001}
	if err := g.StartSyncDaemon(b6); err != nil {
		t.Fatal(err)
	}
	if ds := daemons(t, g); len(ds) != 1 || !b6.Runs(ds[0]) {
		t.Fatalf("after starting %v the kernel runs %v", b6, ds)
	} else {
		t.Logf("kernel: %v", ds)
	}
	stopDaemon(t, g, SyncBackup)
}

// TestSyncGuestTimeoutsFlush: lvs_timeouts changes only what it sets, and
// the original values can be put back (keepalived restores them at stop:
// check/libipvs.c ipvs_set_timeout); flush empties the table.
func TestSyncGuestTimeoutsFlush(t *testing.T) {
	g := syncGuest(t, "sync0")
	orig, err := g.Timeouts()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kernel timeouts: %+v", orig)
	if orig.TCP == 0 || orig.TCPFin == 0 || orig.UDP == 0 {
		t.Fatalf("kernel timeouts %+v: a zero", orig)
	}
	if err := g.SetTimeouts(Timeouts{TCP: 901 * time.Second, UDP: 31 * time.Second}); err != nil {
		t.Fatal(err)
	}
	got, err := g.Timeouts()
	if err != nil {
		t.Fatal(err)
	}
	if want := (Timeouts{TCP: 901 * time.Second, TCPFin: orig.TCPFin, UDP: 31 * time.Second}); got != want {
		t.Errorf("after setting tcp and udp: %+v, want %+v", got, want)
	}
	if err := g.SetTimeouts(orig); err != nil {
		t.Fatal(err)
	}
	if got, _ := g.Timeouts(); got != orig {
		t.Errorf("after restoring: %+v, want %+v", got, orig)
	}

	k, err := OpenKernel()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []Service{
		{ServiceKey: ServiceKey{Family: INET, Protocol: TCP, Addr: netip.MustParseAddr("10.0.0.1"), Port: 80}, Scheduler: "rr"},
		{ServiceKey: ServiceKey{Family: INET, Fwmark: 7}, Scheduler: "rr"},
	} {
		if err := k.NewService(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := k.NewDestination(ServiceKey{Family: INET, Protocol: TCP, Addr: netip.MustParseAddr("10.0.0.1"), Port: 80},
		Destination{DestKey: DestKey{Addr: netip.MustParseAddr("192.168.1.1"), Port: 80}, Method: NAT, Weight: 1}); err != nil {
		t.Fatal(err)
	}
	if ss, err := k.Services(); err != nil || len(ss) != 2 {
		t.Fatalf("before the flush: %v, %v", ss, err)
	}
	if err := g.Flush(); err != nil {
		t.Fatal(err)
	}
	if ss, err := k.Services(); err != nil || len(ss) != 0 {
		t.Fatalf("after the flush: %v, %v", ss, err)
	}
}
