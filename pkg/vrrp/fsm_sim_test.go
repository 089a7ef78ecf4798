package vrrp

import (
	"fmt"
	"testing"
	"time"
)

// fsmLAN is a discrete-event simulation of routers sharing one LAN: adverts reach every
// other running router instantly and timers fire in deadline order. It checks that the
// per-router rules of RFC 5798 §6.4 add up to the protocol's promises: one master, the
// best one, and takeover within the advertised bounds.
type fsmLAN struct {
	tb      testing.TB
	now     time.Time
	routers []*Machine
	out     []Action
	// queue holds adverts sent but not yet delivered.
	queue []fsmLANAdvert
}

type fsmLANAdvert struct {
	from int
	a    Advert
}

func newFSMLAN(tb testing.TB, cfgs ...Config) *fsmLAN {
	l := &fsmLAN{tb: tb, now: newFSMClock().now}
	for _, cfg := range cfgs {
		l.routers = append(l.routers, fsmMustNew(cfg))
	}
	return l
}

// do runs event on router i at the current time and delivers whatever follows.
func (l *fsmLAN) do(i int, event func(m *Machine, now time.Time, out []Action) []Action) {
	l.out = event(l.routers[i], l.now, l.out[:0])
	l.collect(i)
	for len(l.queue) > 0 {
		ad := l.queue[0]
		l.queue = l.queue[1:]
		for j, m := range l.routers {
			if j == ad.from {
				continue
			}
			l.out = m.ReceiveAdvert(l.now, ad.a, l.out[:0])
			l.collect(j)
		}
	}
}

func (l *fsmLAN) collect(i int) {
	cfg := l.routers[i].Config()
	for _, act := range l.out {
		if act.Kind == ActionSendAdvert {
			l.queue = append(l.queue, fsmLANAdvert{from: i, a: Advert{
				Src: cfg.PrimaryAddr, Priority: act.Priority, MaxAdvertInterval: cfg.AdvertInterval,
			}})
		}
	}
}

// runUntil fires timers in deadline order (lowest router index first on a tie) up to
// and including t.
func (l *fsmLAN) runUntil(t time.Time) {
	for {
		next := -1
		for i, m := range l.routers {
			d := m.Deadline()
			if d.IsZero() || d.After(t) {
				continue
			}
			if next < 0 || d.Before(l.routers[next].Deadline()) {
				next = i
			}
		}
		if next < 0 {
			l.now = t
			return
		}
		m := l.routers[next]
		l.now = m.Deadline()
		l.do(next, (*Machine).Timer)
		if m.Deadline().Equal(l.now) {
			// A timer that fires and re-arms for the same instant would spin forever.
			l.tb.Fatalf("router %d: Timer at its deadline %v did not move it", next, l.now)
		}
	}
}

func (l *fsmLAN) masters() []int {
	var ms []int
	for i, m := range l.routers {
		if m.State() == StateMaster {
			ms = append(ms, i)
		}
	}
	return ms
}

func (l *fsmLAN) wantMaster(t *testing.T, step string, want int) {
	t.Helper()
	if ms := l.masters(); len(ms) != 1 || ms[0] != want {
		t.Fatalf("%s: masters %v, want [%d]", step, ms, want)
	}
}

func fsmLANConfig(priority uint8, last byte) Config {
	cfg := fsmConfig(3, priority, time.Second)
	cfg.PrimaryAddr = fsmAddr(fmt.Sprintf("192.0.2.%d", last))
	return cfg
}

func TestMachineSimulatedLAN(t *testing.T) {
	l := newFSMLAN(t, fsmLANConfig(100, 1), fsmLANConfig(150, 2), fsmLANConfig(200, 3))
	start := l.now
	for i := range l.routers {
		l.do(i, (*Machine).Startup)
	}
	if len(l.masters()) != 0 {
		t.Fatalf("masters at startup: %v", l.masters())
	}
	// The best backup's Master_Down_Timer runs out first: 3 s + 56/256 s.
	l.runUntil(start.Add(3*time.Second + 218750*time.Microsecond - 1))
	if len(l.masters()) != 0 {
		t.Fatalf("masters before the down interval: %v", l.masters())
	}
	l.runUntil(start.Add(3*time.Second + 218750*time.Microsecond))
	l.wantMaster(t, "first election", 2)
	l.runUntil(start.Add(time.Minute))
	l.wantMaster(t, "steady", 2)

	// The master stops: the next best takes over after its Skew_Time, 106/256 s.
	stop := l.now
	l.do(2, (*Machine).Shutdown)
	l.runUntil(stop.Add(414062500 - 1))
	if len(l.masters()) != 0 {
		t.Fatalf("masters before skew time: %v", l.masters())
	}
	l.runUntil(stop.Add(414062500))
	l.wantMaster(t, "after shutdown", 1)
	if r := l.routers[1].Stats().NewMasterReason; r != MasterReasonPriority {
		t.Fatalf("NewMasterReason = %v", r)
	}

	// It comes back and preempts after its Master_Down_Interval.
	back := l.now.Add(10 * time.Second)
	l.runUntil(back)
	l.do(2, (*Machine).Startup)
	l.runUntil(back.Add(3*time.Second + 218750*time.Microsecond))
	l.wantMaster(t, "preempted", 2)
	if r := l.routers[2].Stats().NewMasterReason; r != MasterReasonPreempted {
		t.Fatalf("NewMasterReason = %v", r)
	}

	// The master's link fails: the others see silence, not priority 0 (the advert is
	// lost with the link), and the next best takes over after its Master_Down_Interval.
	l.runUntil(l.now.Add(10 * time.Second))
	fail := l.now
	l.routers[2].InterfaceDown(fail, nil) // its priority 0 advert never leaves
	l.runUntil(fail.Add(10 * time.Second))
	l.wantMaster(t, "link failure", 1)
	if st := l.routers[1].Stats(); st.NewMasterReason != MasterReasonMasterNoResponse {
		t.Fatalf("NewMasterReason = %v", st.NewMasterReason)
	}
}

func TestMachineSimulatedLANNoPreempt(t *testing.T) {
	best := fsmLANConfig(200, 3)
	best.Preempt = false
	l := newFSMLAN(t, fsmLANConfig(100, 1), best)
	l.do(0, (*Machine).Startup)
	l.runUntil(l.now.Add(10 * time.Second))
	l.wantMaster(t, "alone", 0)
	l.do(1, (*Machine).Startup)
	l.runUntil(l.now.Add(time.Hour))
	l.wantMaster(t, "nopreempt", 0)
	// Only when the master goes does the better router take over.
	l.do(0, (*Machine).Shutdown)
	l.runUntil(l.now.Add(time.Second))
	l.wantMaster(t, "master gone", 1)
}

// TestMachineSimulatedLANTie: three equal routers all starting as master settle on the
// one with the highest primary address (RFC 5798 §6.4.3).
func TestMachineSimulatedLANTie(t *testing.T) {
	var cfgs []Config
	for _, last := range []byte{7, 30, 4} {
		cfg := fsmLANConfig(100, last)
		cfg.StartAsMaster = true
		cfgs = append(cfgs, cfg)
	}
	l := newFSMLAN(t, cfgs...)
	for i := range l.routers {
		l.do(i, (*Machine).Startup)
	}
	// .7 heard .30 and yielded; .30 heard .4, a master it outranks, and
	// answered at once, so .4 yielded too.
	if ms := l.masters(); len(ms) != 1 || ms[0] != 1 {
		t.Fatalf("after startup: masters %v, want [1]", ms)
	}
	// .30's next advert settles it.
	l.runUntil(l.now.Add(time.Second))
	l.wantMaster(t, "after one interval", 1)
	l.runUntil(l.now.Add(time.Minute))
	l.wantMaster(t, "steady", 1)
}
