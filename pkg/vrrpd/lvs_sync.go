package vrrpd

// The IPVS globals (issue 8): the connection-sync daemon (lvs_sync_daemon),
// the protocol timeouts (lvs_timeouts) and the whole-table flushes
// (lvs_flush at start, lvs_flush_on_stop at stop). In keepalived the VRRP
// process drives the sync daemon and the checker the rest; in vrrpkit
// vrrpd holds all IPVS state.
//
// The sync daemon follows the named instance as keepalived's does
// (vrrp/vrrp.c vrrp_state_become_master and vrrp_state_leave_master,
// vrrp/vrrp_scheduler.c vrrp_init_state, check/ipvswrapper.c
// ipvs_syncd_master/_backup): backup when the instance starts, master when
// it becomes MASTER (the backup daemon is stopped, then the master
// started), backup again when it leaves MASTER (master stopped, backup
// started), whatever the state it goes to. Only one runs at a time. With
// no instance named, master and backup run together, as keepalived's
// checker runs them (check/check_daemon.c: IPVS_MASTER_BACKUP).
//
// The kernel calls run on a worker goroutine, outside the engine's mu, so
// that starting a kernel thread never delays an advert; the worker
// converges the kernel to the latest wanted state, reading it back first:
// a vrrpd restarted after a crash adopts the daemon that still runs when
// it is the one wanted, and a daemon whose settings a reload changed is
// stopped and started again (keepalived: ipvs_syncd_changed).
//
// At stop vrrpd stops the daemon it ran. keepalived 2.2.7 leaves it
// running when it exits (vrrp_daemon.c stops it only for a reload); vrrpkit
// removes at stop what it put in the kernel, and a master sync daemon on a
// director that serves nothing any more only sends noise. A crash, which
// runs no stop, leaves it to the next vrrpd.
//
// lvs_timeouts are set at every apply that carries them; the kernel's
// values from before the first change are kept, an unset timeout gets its
// original value back, and all three are restored when a reload drops
// lvs_timeouts and at stop (check/libipvs.c ipvs_set_timeout,
// ipvswrapper.c ipvs_stop). A vrrpd restarted after a crash finds the
// configured values already set and restores the kernel's defaults for
// them (originalTimeouts).
//
// lvs_flush empties the table once, at the first apply, before lvs.go's
// worker programs the first service (check/check_daemon.c: "Remove any
// entries left over from previous invocation"); the supervisor clears it
// for a restarted vrrpd. lvs_flush_on_stop (full) flushes the whole table
// at stop instead of lvs.go's removal of what vrrpkit owns. Both only act
// when the configuration has virtual servers: keepalived opens IPVS only
// then (check_daemon.c start_check). lvs_flush_on_stop VS and the default
// differ in keepalived only in whether each real server is removed (and
// notified) before its virtual server; the kernel ends the same, and lvs.go
// removes each virtual server whole.

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/lvs"
	"github.com/vrrpkit/vrrpkit/pkg/vrrp"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// LVSGlobalsOpener opens the kernel's IPVS globals (lvs.OpenGlobals). A nil
// Globals with a nil error means no IPVS.
type LVSGlobalsOpener func() (lvs.Globals, error)

// defaultLVSSyncInterval is how often the worker re-checks the kernel's
// sync daemons while one is configured (one that failed to start, or was
// stopped by hand, is started again).
const defaultLVSSyncInterval = 10 * time.Second

// syncWant is what the worker makes the kernel hold.
type syncWant struct {
	configured bool             // lvs_sync_daemon is set: every kernel daemon is vrrpkit's
	daemons    []lvs.SyncDaemon // what should run

	seq      uint64 // the apply it came from: timeouts are set once per apply
	timeouts lvs.Timeouts
	hasTO    bool
}

// lvsSyncRun is the engine's IPVS-globals state.
type lvsSyncRun struct {
	open     LVSGlobalsOpener
	interval time.Duration

	// Guarded by the engine's mu.
	cfg      *pb.LvsSyncDaemon
	want     syncWant
	applies  uint64
	applied  bool // the first apply ran (lvs_flush is behind it)
	started  bool
	stop     context.CancelFunc
	flushAll atomic.Bool // lvs.go's worker leaves the removal at stop to the flush

	kick    chan struct{} // cap 1
	pendMu  sync.Mutex
	pending syncWant // guarded by pendMu

	// Used only by the worker.
	g           lvs.Globals
	unavailable bool
	owned       map[lvs.SyncState]bool
	orig        *lvs.Timeouts // the kernel's timeouts before the first change
	toSet       bool          // the kernel runs changed timeouts
	doneSeq     uint64
}

func (e *Engine) initLVSSync(o Options) {
	e.lvsSync = lvsSyncRun{open: o.LVSGlobals, interval: defaultLVSSyncInterval,
		kick: make(chan struct{}, 1), owned: map[lvs.SyncState]bool{}}
	if o.LVSGlobals == nil && o.LVS == nil && o.Addresses == nil {
		e.lvsSync.open = lvs.OpenGlobals
	}
}

// openGlobals opens the kernel's IPVS globals, or says why not.
func (l *lvsSyncRun) openGlobals() (lvs.Globals, error) {
	if l.open == nil {
		return nil, errors.New("no IPVS kernel interface")
	}
	g, err := l.open()
	if err == nil && g == nil {
		err = errors.New("no IPVS kernel interface")
	}
	return g, err
}

// applyLVSSyncLocked takes a snapshot's IPVS globals. It runs before
// applyLVSLocked, so that lvs_flush precedes the first service.
func (e *Engine) applyLVSSyncLocked(snap *pb.ConfigSnapshot) {
	l := &e.lvsSync
	gd := snap.GetGlobal()
	hasVS := len(snap.GetVirtualServers()) > 0
	if !l.applied {
		l.applied = true
		if gd.GetLvsFlush() && hasVS {
			e.flushLVSLocked()
		}
	}
	l.applies++
	l.cfg = gd.GetLvsSyncDaemon()
	if l.cfg.GetInterface() == "" {
		l.cfg = nil
	}
	l.want.seq = l.applies
	l.want.timeouts, l.want.hasTO = lvs.Timeouts{}, false
	if t := gd.GetLvsTimeouts(); t != nil {
		l.want.timeouts = lvs.Timeouts{TCP: t.GetTcp().AsDuration(), TCPFin: t.GetTcpfin().AsDuration(), UDP: t.GetUdp().AsDuration()}
		l.want.hasTO = l.want.timeouts != lvs.Timeouts{}
	}
	l.flushAll.Store(gd.GetLvsFlushOnStop() == pb.LvsFlushOnStop_LVS_FLUSH_ON_STOP_FULL && hasVS)
	state := vrrp.StateInitialize
	if l.cfg != nil && l.cfg.GetInstance() != "" {
		in, ok := e.instances[l.cfg.GetInstance()]
		if !ok {
			// config refuses this; a hand-made snapshot gets no daemon.
			e.log.Error("lvs_sync_daemon follows an instance that does not exist; not started", "instance", l.cfg.GetInstance())
			l.cfg = nil
		} else {
			state = in.m.State()
			if c := in.m.Config(); state == vrrp.StateInitialize && (c.StartAsMaster || c.Priority == 255) {
				// It goes to MASTER at its Startup, later in this apply: a
				// vrrpd resuming after a crash keeps the master daemon it
				// finds instead of stopping it for a moment, and an owner
				// starts master at once (vrrp_scheduler.c vrrp_init_state).
				state = vrrp.StateMaster
			}
		}
	}
	l.want.configured = l.cfg != nil
	e.wantSyncLocked(state)
}

// flushLVSLocked is lvs_flush: on the engine's goroutine, once, before any
// service is programmed.
func (e *Engine) flushLVSLocked() {
	g, err := e.lvsSync.openGlobals()
	if err != nil {
		e.log.Warn("IPVS not available: lvs_flush not done", "err", err)
		return
	}
	defer g.Close()
	if err := g.Flush(); err != nil {
		e.log.Error("lvs_flush", "err", err)
		return
	}
	e.log.Info("IPVS table flushed (lvs_flush)")
}

// lvsSyncTransitionLocked is called on every transition: the sync daemon
// follows its instance.
func (e *Engine) lvsSyncTransitionLocked(in *instance, to vrrp.State) {
	l := &e.lvsSync
	if l.cfg == nil || e.stopped || l.cfg.GetInstance() != in.name() {
		return
	}
	e.wantSyncLocked(to)
}

// wantSyncLocked sets the daemons wanted with the instance in state and
// hands them to the worker, which it starts the first time there is
// anything to do.
func (e *Engine) wantSyncLocked(state vrrp.State) {
	l := &e.lvsSync
	l.want.daemons = nil
	if c := l.cfg; c != nil {
		d := lvs.SyncDaemon{Interface: c.GetInterface(), SyncID: uint8(c.GetSyncId()),
			MaxLen: uint16(c.GetMaxLen()), Port: uint16(c.GetPort()), TTL: uint8(c.GetTtl())}
		if a, err := netip.ParseAddr(c.GetGroup()); err == nil {
			d.Group = a
		}
		switch {
		case c.GetInstance() == "":
			m, b := d, d
			m.State, b.State = lvs.SyncMaster, lvs.SyncBackup
			l.want.daemons = []lvs.SyncDaemon{m, b}
		case state == vrrp.StateMaster:
			d.State = lvs.SyncMaster
			l.want.daemons = []lvs.SyncDaemon{d}
		default:
			d.State = lvs.SyncBackup
			l.want.daemons = []lvs.SyncDaemon{d}
		}
	}
	if !l.started && !l.want.configured && !l.want.hasTO {
		return
	}
	l.pendMu.Lock()
	l.pending = l.want
	l.pending.daemons = append([]lvs.SyncDaemon(nil), l.want.daemons...)
	l.pendMu.Unlock()
	if !l.started {
		l.started = true
		ctx, cancel := context.WithCancel(context.Background())
		l.stop = cancel
		e.wg.Add(1)
		go e.lvsSyncWorker(ctx)
	}
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// stopLVSSyncLocked returns what stops the worker (which then stops the
// daemons and restores the timeouts), or nil.
func (e *Engine) stopLVSSyncLocked() context.CancelFunc { return e.lvsSync.stop }

// lvsFlushAllAtStop tells lvs.go's worker that the full flush at stop
// replaces its removal of what vrrpkit owns.
func (e *Engine) lvsFlushAllAtStop() bool { return e.lvsSync.flushAll.Load() }

func (e *Engine) lvsSyncWorker(ctx context.Context) {
	defer e.wg.Done()
	l := &e.lvsSync
	tick := time.NewTicker(l.interval)
	defer tick.Stop()
	defer func() {
		if l.g != nil {
			l.g.Close()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			l.pendMu.Lock()
			w := l.pending
			l.pendMu.Unlock()
			e.lvsSyncStop(w)
			return
		case <-l.kick:
		case <-tick.C:
		}
		l.pendMu.Lock()
		w := l.pending
		l.pendMu.Unlock()
		e.lvsSyncConverge(w)
	}
}

// globals opens the kernel interface on first use; false without IPVS.
func (e *Engine) globals() bool {
	l := &e.lvsSync
	if l.g != nil {
		return true
	}
	if l.unavailable {
		return false
	}
	g, err := l.openGlobals()
	if err != nil {
		l.unavailable = true
		e.log.Warn("IPVS not available: lvs_sync_daemon and lvs_timeouts are not acted on", "err", err)
		return false
	}
	l.g = g
	return true
}

// lvsSyncConverge makes the kernel run w. Failures are logged and retried
// at the next tick; they never fail an apply.
func (e *Engine) lvsSyncConverge(w syncWant) {
	l := &e.lvsSync
	if !e.globals() {
		return
	}
	if w.seq != l.doneSeq && e.lvsSetTimeouts(w) {
		l.doneSeq = w.seq
	}
	if !w.configured && len(l.owned) == 0 {
		return
	}
	kernel, err := l.g.SyncDaemons()
	if err != nil {
		e.log.Error("IPVS sync daemon", "err", err)
		return
	}
	running := map[lvs.SyncState]lvs.SyncDaemon{}
	for _, k := range kernel {
		running[k.State] = k
	}
	wanted := map[lvs.SyncState]lvs.SyncDaemon{}
	for _, d := range w.daemons {
		wanted[d.State] = d
	}
	// Stops first: becoming master stops the backup before the master
	// starts, and leaving master the reverse (ipvs_syncd_master/_backup).
	for _, s := range []lvs.SyncState{lvs.SyncMaster, lvs.SyncBackup} {
		k, runs := running[s]
		d, want := wanted[s]
		if !runs || (want && d.Runs(k)) || (!w.configured && !l.owned[s]) {
			continue
		}
		if err := l.g.StopSyncDaemon(s); err != nil && !errors.Is(err, syscall.ESRCH) {
			e.log.Error("IPVS sync daemon", "err", err)
			continue
		}
		delete(l.owned, s)
		delete(running, s)
		e.log.Info("IPVS sync daemon stopped", "daemon", k.String())
	}
	for _, s := range []lvs.SyncState{lvs.SyncMaster, lvs.SyncBackup} {
		d, want := wanted[s]
		if !want {
			continue
		}
		if k, runs := running[s]; runs && d.Runs(k) {
			l.owned[s] = true // adopted, e.g. after a vrrpd crash
			continue
		}
		if err := l.g.StartSyncDaemon(d); err != nil {
			e.log.Error("IPVS sync daemon", "err", err)
			continue
		}
		l.owned[s] = true
		e.log.Info("IPVS sync daemon started", "daemon", d.String())
	}
}

// lvsSetTimeouts sets lvs_timeouts, an unset one to its original value, or
// restores all three when lvs_timeouts is gone. false: it failed (logged),
// to be tried again at the next tick.
func (e *Engine) lvsSetTimeouts(w syncWant) bool {
	l := &e.lvsSync
	if !w.hasTO && !l.toSet {
		return true
	}
	if l.orig == nil {
		t, err := l.g.Timeouts()
		if err != nil {
			e.log.Error("lvs_timeouts: reading the kernel's", "err", err)
			return false
		}
		l.orig = &t
		if w.hasTO {
			l.orig = ptr(originalTimeouts(t, w.timeouts))
		}
	}
	t := *l.orig
	if w.hasTO {
		t = mergeTimeouts(w.timeouts, *l.orig)
	}
	if err := l.g.SetTimeouts(t); err != nil {
		e.log.Error("lvs_timeouts", "err", err)
		return false
	}
	l.toSet = w.hasTO
	e.log.Info("IPVS timeouts set", "tcp", t.TCP, "tcpfin", t.TCPFin, "udp", t.UDP)
	return true
}

// originalTimeouts is what to restore at stop, from the kernel's values
// before the first change. A value that already is the configured one was
// most likely set by a vrrpd that died (a crash runs no restore): the
// kernel's default stands in for it, rather than keeping the configured
// value past vrrpkit's stop. (keepalived's respawned checker takes such a
// value as the original.)
func originalTimeouts(kernel, set lvs.Timeouts) lvs.Timeouts {
	if set.TCP != 0 && kernel.TCP == set.TCP {
		kernel.TCP = lvs.DefaultTimeouts.TCP
	}
	if set.TCPFin != 0 && kernel.TCPFin == set.TCPFin {
		kernel.TCPFin = lvs.DefaultTimeouts.TCPFin
	}
	if set.UDP != 0 && kernel.UDP == set.UDP {
		kernel.UDP = lvs.DefaultTimeouts.UDP
	}
	return kernel
}

func ptr[T any](v T) *T { return &v }

func mergeTimeouts(set, orig lvs.Timeouts) lvs.Timeouts {
	if set.TCP == 0 {
		set.TCP = orig.TCP
	}
	if set.TCPFin == 0 {
		set.TCPFin = orig.TCPFin
	}
	if set.UDP == 0 {
		set.UDP = orig.UDP
	}
	return set
}

// lvsSyncStop runs once at shutdown.
func (e *Engine) lvsSyncStop(w syncWant) {
	l := &e.lvsSync
	if !e.globals() {
		return
	}
	if w.configured || len(l.owned) > 0 {
		kernel, err := l.g.SyncDaemons()
		if err != nil {
			e.log.Error("IPVS sync daemon", "err", err)
		}
		for _, k := range kernel {
			if !w.configured && !l.owned[k.State] {
				continue
			}
			if err := l.g.StopSyncDaemon(k.State); err != nil && !errors.Is(err, syscall.ESRCH) {
				e.log.Error("IPVS sync daemon", "err", err)
				continue
			}
			e.log.Info("IPVS sync daemon stopped", "daemon", k.String())
		}
		clear(l.owned)
	}
	if l.toSet && l.orig != nil {
		if err := l.g.SetTimeouts(*l.orig); err != nil {
			e.log.Error("lvs_timeouts: restoring the kernel's", "err", err)
		} else {
			e.log.Info("IPVS timeouts restored", "tcp", l.orig.TCP, "tcpfin", l.orig.TCPFin, "udp", l.orig.UDP)
		}
	}
}

// flushLVSAtStop is lvs_flush_on_stop (full): once every worker has ended,
// so that no reconcile still runs behind the flush.
func (e *Engine) flushLVSAtStop() {
	if !e.lvsFlushAllAtStop() {
		return
	}
	g, err := e.lvsSync.openGlobals()
	if err != nil {
		e.log.Warn("IPVS not available: lvs_flush_on_stop not done", "err", err)
		return
	}
	defer g.Close()
	if err := g.Flush(); err != nil {
		e.log.Error("lvs_flush_on_stop", "err", err)
		return
	}
	e.log.Info("IPVS table flushed (lvs_flush_on_stop)")
}
