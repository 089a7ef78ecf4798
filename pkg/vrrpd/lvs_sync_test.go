package vrrpd

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vrrpkit/vrrpkit/pkg/lvs"
	"github.com/vrrpkit/vrrpkit/pkg/netstate"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// fakeGlobals is the kernel's IPVS globals in memory: the daemons it runs
// (reported with the kernel's defaults filled in, as GET_DAEMON does),
// the timeouts, and a log of every change.
type fakeGlobals struct {
	mu       sync.Mutex
	running  map[lvs.SyncState]lvs.SyncDaemon
	timeouts lvs.Timeouts
	ops      []string
	listings int       // SyncDaemons calls: one per pass of the worker
	ipvs     *fakeIPVS // what Flush empties
}

func newFakeGlobals(ipvs *fakeIPVS) *fakeGlobals {
	return &fakeGlobals{running: map[lvs.SyncState]lvs.SyncDaemon{}, ipvs: ipvs,
		timeouts: lvs.Timeouts{TCP: 900 * time.Second, TCPFin: 120 * time.Second, UDP: 300 * time.Second}}
}

func (f *fakeGlobals) SyncDaemons() ([]lvs.SyncDaemon, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listings++
	var out []lvs.SyncDaemon
	for _, d := range f.running {
		out = append(out, d)
	}
	return out, nil
}

func (f *fakeGlobals) StartSyncDaemon(d lvs.SyncDaemon) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.running[d.State]; ok {
		return syscall.EEXIST
	}
	f.ops = append(f.ops, "start "+d.String())
	if d.Port == 0 {
		d.Port = lvs.DefaultSyncPort
	}
	if d.TTL == 0 {
		d.TTL = lvs.DefaultSyncTTL
	}
	if !d.Group.IsValid() {
		d.Group = lvs.DefaultSyncGroup
	}
	if d.MaxLen == 0 {
		d.MaxLen = 1472
	}
	f.running[d.State] = d
	return nil
}

func (f *fakeGlobals) StopSyncDaemon(s lvs.SyncState) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.running[s]; !ok {
		return syscall.ESRCH
	}
	f.ops = append(f.ops, "stop "+s.String())
	delete(f.running, s)
	return nil
}

func (f *fakeGlobals) Timeouts() (lvs.Timeouts, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.timeouts, nil
}

func (f *fakeGlobals) SetTimeouts(t lvs.Timeouts) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, fmt.Sprintf("timeouts %v %v %v", t.TCP, t.TCPFin, t.UDP))
	f.timeouts = t
	return nil
}

func (f *fakeGlobals) Flush() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	if f.ipvs != nil {
		f.ipvs.mu.Lock()
		n = len(f.ipvs.svcs)
		clear(f.ipvs.svcs)
		clear(f.ipvs.dests)
		f.ipvs.mu.Unlock()
	}
	f.ops = append(f.ops, fmt.Sprintf("flush %d", n))
	return nil
}

func (f *fakeGlobals) Close() error { return nil }

func (f *fakeGlobals) opsCopy() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ops)
}

func (f *fakeGlobals) daemons() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, s := range []lvs.SyncState{lvs.SyncMaster, lvs.SyncBackup} {
		if d, ok := f.running[s]; ok {
			out = append(out, d.String())
		}
	}
	return strings.Join(out, "; ")
}

func newSyncRig(t *testing.T, g *fakeGlobals, k *fakeIPVS) (*rig, *syncLog) {
	t.Helper()
	logs := &syncLog{}
	clk := newFakeClock()
	r := &rig{clock: clk, net: &fakeNet{clock: clk, primary: netip.MustParseAddr("192.0.2.1")},
		addrs: newFakeAddrs(), links: fakeLinks{changes: make(chan netstate.LinkState)}, done: make(chan error, 1)}
	r.e = New(Options{Clock: clk, Addresses: r.addrs, Links: r.links, Network: r.net,
		LVS:        func() (lvs.Kernel, error) { return k, nil },
		LVSGlobals: func() (lvs.Globals, error) { return g, nil },
		Log:        slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.e.Run(ctx) }()
	clk.sl.settle(t)
	t.Cleanup(r.stop)
	return r, logs
}

func syncSnap(gen uint64, sd *pb.LvsSyncDaemon, ins ...*pb.VrrpInstance) *pb.ConfigSnapshot {
	s := snapshot(gen, ins...)
	s.Global = &pb.GlobalDefs{LvsSyncDaemon: sd}
	return s
}

func waitDaemons(t *testing.T, g *fakeGlobals, want string) {
	t.Helper()
	eventually(t, "sync daemons "+want, func() bool { return g.daemons() == want })
}

// TestLVSSyncFollowsInstance: backup at start, master when VI_1 becomes
// MASTER (backup stopped first), backup when it leaves, stopped at
// shutdown (keepalived's vrrp.c and ipvswrapper.c).
func TestLVSSyncFollowsInstance(t *testing.T) {
	g := newFakeGlobals(nil)
	r, _ := newSyncRig(t, g, newFakeIPVS())
	sd := &pb.LvsSyncDaemon{Interface: "eth1", Instance: "VI_1", SyncId: 51}
	const backup, master = "backup on eth1 syncid 51", "master on eth1 syncid 51"
	const backupK, masterK = backup + " group 224.0.0.81 port 8848 ttl 1 maxlen 1472", master + " group 224.0.0.81 port 8848 ttl 1 maxlen 1472"
	r.apply(t, syncSnap(1, sd, vi1()))
	waitDaemons(t, g, backupK)

	d := r.clock.sl.settle(t)
	r.clock.advanceTo(t, d) // the down timer runs out: MASTER
	if st := r.instance(t, "VI_1"); st.GetState() != pb.VrrpState_VRRP_STATE_MASTER {
		t.Fatalf("not master: %v", st.GetState())
	}
	waitDaemons(t, g, masterK)
	if ops := g.opsCopy(); !slices.Equal(ops, []string{"start " + backup, "stop backup", "start " + master}) {
		t.Fatalf("ops %q", ops)
	}

	// A higher priority advert: back to BACKUP, and the daemon with it.
	r.received(t, advert(200), peer, 255)
	if st := r.instance(t, "VI_1"); st.GetState() != pb.VrrpState_VRRP_STATE_BACKUP {
		t.Fatalf("not backup: %v", st.GetState())
	}
	waitDaemons(t, g, backupK)
	if ops := g.opsCopy()[3:]; !slices.Equal(ops, []string{"stop master", "start " + backup}) {
		t.Fatalf("leaving master: ops %q", ops)
	}

	// A reload that changes the daemon's settings restarts it.
	sd2 := &pb.LvsSyncDaemon{Interface: "eth1", Instance: "VI_1", SyncId: 51, Port: 9000}
	r.apply(t, syncSnap(2, sd2, vi1()))
	waitDaemons(t, g, backup+" group 224.0.0.81 port 9000 ttl 1 maxlen 1472")
	// The same again: nothing to do.
	n := len(g.opsCopy())
	r.apply(t, syncSnap(3, sd2, vi1()))
	r.apply(t, syncSnap(4, sd2, vi1()))
	if ops := g.opsCopy()[n:]; len(ops) != 0 {
		t.Fatalf("unchanged reload: ops %q", ops)
	}

	r.stop()
	if got := g.daemons(); got != "" {
		t.Fatalf("after shutdown the kernel runs %s", got)
	}
}

// TestLVSSyncNoInstance runs master and backup together; a reload without
// lvs_sync_daemon stops them; a restarted vrrpd adopts a daemon that runs
// as wanted instead of restarting it.
func TestLVSSyncNoInstanceAndAdopt(t *testing.T) {
	g := newFakeGlobals(nil)
	r, _ := newSyncRig(t, g, newFakeIPVS())
	r.apply(t, syncSnap(1, &pb.LvsSyncDaemon{Interface: "eth1"}))
	waitDaemons(t, g, "master on eth1 syncid 0 group 224.0.0.81 port 8848 ttl 1 maxlen 1472; backup on eth1 syncid 0 group 224.0.0.81 port 8848 ttl 1 maxlen 1472")
	r.apply(t, syncSnap(2, nil))
	waitDaemons(t, g, "")

	// A vrrpd that died left a backup daemon running.
	g.StartSyncDaemon(lvs.SyncDaemon{State: lvs.SyncBackup, Interface: "eth1", SyncID: 51})
	n := len(g.opsCopy())
	g.mu.Lock()
	listed := g.listings
	g.mu.Unlock()
	r2, logs := newSyncRig(t, g, newFakeIPVS())
	r2.apply(t, syncSnap(1, &pb.LvsSyncDaemon{Interface: "eth1", Instance: "VI_1", SyncId: 51}, vi1()))
	eventually(t, "the worker's first pass", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.listings > listed
	})
	if ops := g.opsCopy()[n:]; len(ops) != 0 {
		t.Fatalf("restart: ops %q, want the running backup adopted\n%s", ops, logs)
	}
	r2.stop()
	waitDaemons(t, g, "")

	// A vrrpd that died as master: the next one resumes as master
	// (resume_master) and keeps the master daemon running throughout.
	g.StartSyncDaemon(lvs.SyncDaemon{State: lvs.SyncMaster, Interface: "eth1", SyncID: 51})
	n = len(g.opsCopy())
	r3, _ := newSyncRig(t, g, newFakeIPVS())
	r3.addrs.held[netip.MustParsePrefix(vip)] = true // its VIP is still there
	snap := syncSnap(1, &pb.LvsSyncDaemon{Interface: "eth1", Instance: "VI_1", SyncId: 51}, vi1())
	snap.ResumeMaster = []string{"VI_1"}
	g.mu.Lock()
	listed = g.listings
	g.mu.Unlock()
	r3.apply(t, snap)
	if st := r3.instance(t, "VI_1"); st.GetState() != pb.VrrpState_VRRP_STATE_MASTER {
		t.Fatalf("not resumed as master: %v", st.GetState())
	}
	eventually(t, "the worker's first pass", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.listings > listed
	})
	if ops := g.opsCopy()[n:]; len(ops) != 0 {
		t.Fatalf("resume: ops %q, want the running master adopted", ops)
	}
}

// TestLVSTimeoutsAndFlushes: lvs_timeouts set per apply, unset ones kept at
// the kernel's original, all restored when dropped and at stop; lvs_flush
// once before the first service; lvs_flush_on_stop flushes at stop instead
// of removing service by service.
func TestLVSTimeoutsAndFlushes(t *testing.T) {
	k := newFakeIPVS()
	fk := lvs.ServiceKey{Family: lvs.INET, Protocol: lvs.UDP, Addr: netip.MustParseAddr("198.51.100.1"), Port: 53}
	k.svcs[fk] = lvs.Service{ServiceKey: fk, Scheduler: "wlc"} // left over
	g := newFakeGlobals(k)
	r, _ := newSyncRig(t, g, k)
	snap := func(gen uint64, to *pb.LvsTimeouts, flushOnStop pb.LvsFlushOnStop) *pb.ConfigSnapshot {
		s := lvsSnap(gen, webVS())
		s.Global = &pb.GlobalDefs{LvsTimeouts: to, LvsFlush: true, LvsFlushOnStop: flushOnStop}
		return s
	}
	to := &pb.LvsTimeouts{Tcp: durationpb.New(7200 * time.Second), Udp: durationpb.New(30 * time.Second)}
	r.apply(t, snap(1, to, pb.LvsFlushOnStop_LVS_FLUSH_ON_STOP_UNSPECIFIED))
	waitDump(t, k, webBoth)
	if ops := g.opsCopy(); len(ops) < 1 || ops[0] != "flush 1" {
		t.Fatalf("ops %q: want the left-over service flushed first", ops)
	}
	eventually(t, "timeouts", func() bool { return len(g.opsCopy()) == 2 })
	if ops := g.opsCopy(); ops[1] != "timeouts 2h0m0s 2m0s 30s" {
		t.Fatalf("ops %q", ops)
	}
	// Every apply sets them again (someone may have changed them); lvs_flush
	// is for the first apply only.
	r.apply(t, snap(2, to, pb.LvsFlushOnStop_LVS_FLUSH_ON_STOP_FULL))
	eventually(t, "timeouts again", func() bool { return len(g.opsCopy()) == 3 })
	r.apply(t, snap(3, nil, pb.LvsFlushOnStop_LVS_FLUSH_ON_STOP_FULL))
	eventually(t, "timeouts restored", func() bool { return len(g.opsCopy()) == 4 })
	if ops := g.opsCopy()[2:]; !slices.Equal(ops, []string{"timeouts 2h0m0s 2m0s 30s", "timeouts 15m0s 2m0s 5m0s"}) {
		t.Fatalf("ops %q", ops)
	}
	r.apply(t, snap(4, to, pb.LvsFlushOnStop_LVS_FLUSH_ON_STOP_FULL))
	eventually(t, "timeouts set", func() bool { return len(g.opsCopy()) == 5 })
	k.mu.Lock()
	k.svcs[fk] = lvs.Service{ServiceKey: fk, Scheduler: "wlc"} // someone else's, flushed too
	k.mu.Unlock()
	r.stop()
	if ops := g.opsCopy()[5:]; !slices.Equal(ops, []string{"timeouts 15m0s 2m0s 5m0s", "flush 2"}) {
		t.Fatalf("at stop: ops %q, want the timeouts restored and the whole table (2 services) flushed", ops)
	}
}

// TestLVSSyncUnknownInstance: a snapshot whose lvs_sync_daemon names no
// instance of it (config refuses that) starts nothing and stops nothing.
func TestLVSSyncUnknownInstance(t *testing.T) {
	g := newFakeGlobals(nil)
	g.StartSyncDaemon(lvs.SyncDaemon{State: lvs.SyncMaster, Interface: "eth9", SyncID: 3}) // someone else's
	n := len(g.opsCopy())
	r, logs := newSyncRig(t, g, newFakeIPVS())
	r.apply(t, syncSnap(1, &pb.LvsSyncDaemon{Interface: "eth1", Instance: "VI_X", SyncId: 1}, vi1()))
	eventually(t, "the error logged", func() bool { return strings.Contains(logs.String(), "follows an instance that does not exist") })
	r.stop()
	if ops := g.opsCopy()[n:]; len(ops) != 0 {
		t.Fatalf("ops %q, want none", ops)
	}
}

// TestLVSTimeoutsAfterCrash: a vrrpd that finds lvs_timeouts' values
// already set (its predecessor died before restoring them) restores the
// kernel's defaults for them at stop, and the other values as they were.
func TestLVSTimeoutsAfterCrash(t *testing.T) {
	g := newFakeGlobals(nil)
	g.timeouts = lvs.Timeouts{TCP: 7200 * time.Second, TCPFin: 100 * time.Second, UDP: 30 * time.Second}
	r, _ := newSyncRig(t, g, newFakeIPVS())
	s := snapshot(1)
	s.Global = &pb.GlobalDefs{LvsTimeouts: &pb.LvsTimeouts{Tcp: durationpb.New(7200 * time.Second), Udp: durationpb.New(30 * time.Second)}}
	r.apply(t, s)
	eventually(t, "timeouts set", func() bool { return len(g.opsCopy()) == 1 })
	r.stop()
	if ops := g.opsCopy(); !slices.Equal(ops, []string{"timeouts 2h0m0s 1m40s 30s", "timeouts 15m0s 1m40s 5m0s"}) {
		t.Fatalf("ops %q", ops)
	}
}
