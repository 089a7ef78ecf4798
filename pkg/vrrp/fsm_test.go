package vrrp

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// fsmClock is the injected clock of these tests: a time that only moves when told to.
type fsmClock struct{ now time.Time }

func newFSMClock() *fsmClock {
	return &fsmClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// advance moves the clock forward by d and returns the new time.
func (c *fsmClock) advance(d time.Duration) time.Time {
	c.now = c.now.Add(d)
	return c.now
}

// at moves the clock to t, which must not be in the past.
func (c *fsmClock) at(tb testing.TB, t time.Time) time.Time {
	tb.Helper()
	if t.Before(c.now) {
		tb.Fatalf("clock moved backwards from %v to %v", c.now, t)
	}
	c.now = t
	return t
}

func fsmAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// fsmConfig is a valid preempting configuration with primary address 192.0.2.10.
func fsmConfig(version, priority uint8, interval time.Duration) Config {
	return Config{
		VRID:           51,
		Version:        version,
		Priority:       priority,
		AdvertInterval: interval,
		Preempt:        true,
		PrimaryAddr:    fsmAddr("192.0.2.10"),
	}
}

func fsmSend(priority uint8) Action { return Action{Kind: ActionSendAdvert, Priority: priority} }

func fsmMove(kind ActionKind, from, to State) Action {
	return Action{Kind: kind, From: from, To: to}
}

func fsmAdvert(src string, priority uint8, interval time.Duration) Advert {
	return Advert{Src: fsmAddr(src), Priority: priority, MaxAdvertInterval: interval}
}

func fsmWant(tb testing.TB, step string, got []Action, want ...Action) {
	tb.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		tb.Fatalf("%s: actions = %v, want %v", step, got, want)
	}
}

func fsmWantState(tb testing.TB, step string, m *Machine, state State) {
	tb.Helper()
	if m.State() != state {
		tb.Fatalf("%s: state = %v, want %v", step, m.State(), state)
	}
}

// fsmWantDeadline checks the deadline to the nanosecond, which is stricter than the
// microsecond the RFC arithmetic needs.
func fsmWantDeadline(tb testing.TB, step string, m *Machine, want time.Time) {
	tb.Helper()
	if got := m.Deadline(); !got.Equal(want) {
		tb.Fatalf("%s: deadline = %v, want %v (off by %v)", step, got, want, got.Sub(want))
	}
}

// fsmStarted returns a machine after Startup at c.now, checking the state it entered.
func fsmStarted(tb testing.TB, c *fsmClock, cfg Config, state State) *Machine {
	tb.Helper()
	m := fsmMustNew(cfg)
	m.Startup(c.now, nil)
	fsmWantState(tb, "startup", m, state)
	return m
}

func TestMachineStartupOwner(t *testing.T) {
	for _, version := range []uint8{2, 3} {
		c := newFSMClock()
		m := fsmMustNew(fsmConfig(version, 255, time.Second))
		got := m.Startup(c.now, nil)
		fsmWant(t, "startup", got, fsmSend(255), fsmMove(ActionBecomeMaster, StateInitialize, StateMaster))
		fsmWantState(t, "startup", m, StateMaster)
		// RFC 5798 §6.4.1: Set the Adver_Timer to Advertisement_Interval.
		fsmWantDeadline(t, "startup", m, c.now.Add(time.Second))
		st := m.Stats()
		if st.MasterTransitions != 1 || st.AdvertsSent != 1 || st.NewMasterReason != MasterReasonPreempted {
			t.Fatalf("v%d stats = %+v", version, st)
		}
		// A second Startup is not an event of a running machine.
		fsmWant(t, "second startup", m.Startup(c.advance(time.Millisecond), nil))
	}
}

func TestMachineStartupNonOwner(t *testing.T) {
	c := newFSMClock()
	m := fsmMustNew(fsmConfig(3, 100, time.Second))
	got := m.Startup(c.now, nil)
	fsmWant(t, "startup", got, fsmMove(ActionBecomeBackup, StateInitialize, StateBackup))
	fsmWantState(t, "startup", m, StateBackup)
	fsmWantDeadline(t, "startup", m, c.now.Add(3*time.Second+609375*time.Microsecond))
	if st := m.Stats(); st.AdvertsSent != 0 || st.MasterTransitions != 0 || st.NewMasterReason != MasterReasonNotMaster {
		t.Fatalf("stats = %+v", st)
	}
}

// TestMachineMasterDownInterval checks Skew_Time and Master_Down_Interval (RFC 5798 §6.1,
// RFC 3768 §6.1) through the only thing that matters to the network: the instant the
// backup takes over when the master is silent.
func TestMachineMasterDownInterval(t *testing.T) {
	us := time.Microsecond
	tests := []struct {
		name     string
		version  uint8
		priority uint8
		interval time.Duration
		skew     time.Duration
	}{
		// v3: Skew_Time = (256 - Priority) * Master_Adver_Interval / 256.
		{"v3/1s/p100", 3, 100, time.Second, 609375 * us}, // 156/256 s
		{"v3/1s/p200", 3, 200, time.Second, 218750 * us}, // 56/256 s
		{"v3/1s/p254", 3, 254, time.Second, 7812500},     // 2/256 s = 7812.5 µs
		{"v3/100ms/p100", 3, 100, 100 * time.Millisecond, 60937500},
		{"v3/100ms/p200", 3, 200, 100 * time.Millisecond, 21875 * us},
		{"v3/100ms/p254", 3, 254, 100 * time.Millisecond, 781250},
		// v2: Skew_Time = (256 - Priority) / 256 seconds, whatever the interval. VRRPv2
		// cannot carry 100 ms (whole seconds on the wire), so 3 s shows the difference.
		{"v2/1s/p100", 2, 100, time.Second, 609375 * us},
		{"v2/1s/p200", 2, 200, time.Second, 218750 * us},
		{"v2/1s/p254", 2, 254, time.Second, 7812500},
		{"v2/3s/p100", 2, 100, 3 * time.Second, 609375 * us},
		{"v2/3s/p200", 2, 200, 3 * time.Second, 218750 * us},
		{"v2/3s/p254", 2, 254, 3 * time.Second, 7812500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newFSMClock()
			start := c.now
			m := fsmStarted(t, c, fsmConfig(tt.version, tt.priority, tt.interval), StateBackup)
			if got := m.SkewTime(); got != tt.skew {
				t.Fatalf("SkewTime = %v, want %v", got, tt.skew)
			}
			down := 3*tt.interval + tt.skew
			if got := m.MasterDownInterval(); got != down {
				t.Fatalf("MasterDownInterval = %v, want %v", got, down)
			}
			fsmWantDeadline(t, "startup", m, start.Add(down))

			// One microsecond early: nothing happens.
			fsmWant(t, "early", m.Timer(c.at(t, start.Add(down-us)), nil))
			fsmWantState(t, "early", m, StateBackup)
			// At the deadline: RFC 5798 §6.4.2, Master_Down_Timer fires.
			got := m.Timer(c.at(t, start.Add(down)), nil)
			fsmWant(t, "down timer", got, fsmSend(tt.priority), fsmMove(ActionBecomeMaster, StateBackup, StateMaster))
			fsmWantDeadline(t, "master", m, start.Add(down+tt.interval))
			if r := m.Stats().NewMasterReason; r != MasterReasonMasterNoResponse {
				t.Fatalf("NewMasterReason = %v", r)
			}
		})
	}
}

// TestMachineSkewMatchesKeepalived compares SkewTime with keepalived's integer formula
// (vrrp.h, VRRP_TIMER_SKEW_CALC: µs = (256-prio) * centiseconds * 625 / 16 for v3,
// (256-prio) * 1e6 / 256 for v2) over every priority.
func TestMachineSkewMatchesKeepalived(t *testing.T) {
	for _, version := range []uint8{2, 3} {
		intervals := []time.Duration{10 * time.Millisecond, 50 * time.Millisecond, 70 * time.Millisecond,
			time.Second, 1230 * time.Millisecond, fsmV3IntervalMax}
		if version == 2 {
			intervals = []time.Duration{time.Second, 7 * time.Second, fsmV2IntervalMax}
		}
		for _, iv := range intervals {
			for p := 1; p <= 255; p++ {
				m := fsmMustNew(fsmConfig(version, uint8(p), iv))
				var kaMicros int64
				if version == 3 {
					kaMicros = int64(256-p) * int64(iv/fsmV3IntervalUnit) * 625 / 16
				} else {
					kaMicros = int64(256-p) * 1000000 / 256
				}
				diff := m.SkewTime() - time.Duration(kaMicros)*time.Microsecond
				if diff < 0 || diff >= time.Microsecond {
					t.Fatalf("v%d %v p%d: skew %v, keepalived %dµs", version, iv, p, m.SkewTime(), kaMicros)
				}
			}
		}
	}
}

func TestMachineLearnsMasterAdverInterval(t *testing.T) {
	c := newFSMClock()
	m := fsmStarted(t, c, fsmConfig(3, 100, time.Second), StateBackup)

	// RFC 5798 §6.4.2: a backup sets Master_Adver_Interval from the accepted advert.
	now := c.advance(500 * time.Millisecond)
	fsmWant(t, "advert", m.ReceiveAdvert(now, fsmAdvert("192.0.2.20", 150, 200*time.Millisecond), nil))
	if got := m.MasterAdverInterval(); got != 200*time.Millisecond {
		t.Fatalf("MasterAdverInterval = %v", got)
	}
	// 3 * 200 ms + 156 * 200 ms / 256 = 600 ms + 121.875 ms.
	fsmWantDeadline(t, "learned", m, now.Add(721875*time.Microsecond))

	// A zero interval cannot be right: it is ignored rather than collapsing the timer.
	now = c.advance(100 * time.Millisecond)
	m.ReceiveAdvert(now, fsmAdvert("192.0.2.20", 150, 0), nil)
	fsmWantDeadline(t, "zero interval", m, now.Add(721875*time.Microsecond))

	// The master's own Adver_Timer uses Advertisement_Interval, not the learned value.
	now = c.at(t, m.Deadline())
	fsmWant(t, "takeover", m.Timer(now, nil), fsmSend(100), fsmMove(ActionBecomeMaster, StateBackup, StateMaster))
	fsmWantDeadline(t, "master", m, now.Add(time.Second))

	// A master that yields learns the new master's interval too (RFC 5798 §6.4.3).
	now = c.advance(10 * time.Millisecond)
	fsmWant(t, "yield", m.ReceiveAdvert(now, fsmAdvert("192.0.2.30", 200, 300*time.Millisecond), nil),
		fsmMove(ActionBecomeBackup, StateMaster, StateBackup))
	fsmWantDeadline(t, "yielded", m, now.Add(900*time.Millisecond+182812500))

	// A discarded advert teaches nothing.
	m.ReceiveAdvert(c.advance(10*time.Millisecond), fsmAdvert("192.0.2.40", 50, 2*time.Second), nil)
	if got := m.MasterAdverInterval(); got != 300*time.Millisecond {
		t.Fatalf("MasterAdverInterval after discarded advert = %v", got)
	}
}

// TestMachineV2AdvertInterval: VRRPv2 has no learned interval; a mismatching advert is
// discarded (RFC 3768 §7.1).
func TestMachineV2AdvertInterval(t *testing.T) {
	c := newFSMClock()
	m := fsmStarted(t, c, fsmConfig(2, 100, time.Second), StateBackup)
	start := c.now
	down := 3*time.Second + 609375*time.Microsecond

	m.ReceiveAdvert(c.advance(time.Second), fsmAdvert("192.0.2.20", 150, 2*time.Second), nil)
	fsmWantDeadline(t, "mismatch", m, start.Add(down))
	if st := m.Stats(); st.AdvertIntervalErrors != 1 || st.AdvertsReceived != 1 {
		t.Fatalf("stats = %+v", st)
	}
	now := c.advance(time.Second)
	m.ReceiveAdvert(now, fsmAdvert("192.0.2.20", 150, time.Second), nil)
	fsmWantDeadline(t, "match", m, now.Add(down))
	now = c.advance(time.Second)
	m.ReceiveAdvert(now, fsmAdvert("192.0.2.20", 150, 0), nil)
	fsmWantDeadline(t, "unchecked", m, now.Add(down))
	if got := m.MasterAdverInterval(); got != time.Second {
		t.Fatalf("MasterAdverInterval = %v", got)
	}
}

// TestMachinePreemption: a preempting backup discards a lower-priority master's adverts
// and takes over when its Master_Down_Timer, last reset at startup, fires.
func TestMachinePreemption(t *testing.T) {
	c := newFSMClock()
	start := c.now
	m := fsmStarted(t, c, fsmConfig(3, 200, time.Second), StateBackup)
	down := 3*time.Second + 218750*time.Microsecond
	for i := 1; i <= 3; i++ {
		fsmWant(t, "lower advert", m.ReceiveAdvert(c.advance(time.Second), fsmAdvert("192.0.2.20", 100, time.Second), nil))
		fsmWantDeadline(t, "lower advert", m, start.Add(down))
	}
	got := m.Timer(c.at(t, start.Add(down)), nil)
	fsmWant(t, "preempt", got, fsmSend(200), fsmMove(ActionBecomeMaster, StateBackup, StateMaster))
	if r := m.Stats().NewMasterReason; r != MasterReasonPreempted {
		t.Fatalf("NewMasterReason = %v", r)
	}
	// As master it answers the lower-priority master at once, which yields on
	// that advert, and re-announces its addresses; its own schedule stays.
	deadline := m.Deadline()
	fsmWant(t, "lower as master", m.ReceiveAdvert(c.advance(10*time.Millisecond), fsmAdvert("192.0.2.20", 100, time.Second), nil),
		fsmSend(200), Action{Kind: ActionAnnounce, Reason: AnnounceLowerPriorityMaster})
	fsmWantState(t, "lower as master", m, StateMaster)
	fsmWantDeadline(t, "lower as master", m, deadline)

	// Equal priority is accepted by a backup whatever the address (RFC 5798 §6.4.2: ">=").
	c2 := newFSMClock()
	b := fsmStarted(t, c2, fsmConfig(3, 200, time.Second), StateBackup)
	now := c2.advance(time.Second)
	b.ReceiveAdvert(now, fsmAdvert("192.0.2.1", 200, time.Second), nil)
	fsmWantDeadline(t, "equal", b, now.Add(down))
}

// TestMachineNoPreempt: with Preempt_Mode false a backup never takes over from a live
// lower-priority master, only when it falls silent (keepalived's nopreempt).
func TestMachineNoPreempt(t *testing.T) {
	c := newFSMClock()
	cfg := fsmConfig(3, 200, time.Second)
	cfg.Preempt = false
	m := fsmStarted(t, c, cfg, StateBackup)
	down := 3*time.Second + 218750*time.Microsecond
	var last time.Time
	for i := 0; i < 60; i++ {
		last = c.advance(time.Second)
		fsmWant(t, "lower advert", m.Timer(last, nil))
		fsmWant(t, "lower advert", m.ReceiveAdvert(last, fsmAdvert("192.0.2.20", 100, time.Second), nil))
		fsmWantDeadline(t, "lower advert", m, last.Add(down))
	}
	fsmWantState(t, "after a minute", m, StateBackup)
	// The master dies.
	got := m.Timer(c.at(t, last.Add(down)), nil)
	fsmWant(t, "master gone", got, fsmSend(200), fsmMove(ActionBecomeMaster, StateBackup, StateMaster))
	if r := m.Stats().NewMasterReason; r != MasterReasonMasterNoResponse {
		t.Fatalf("NewMasterReason = %v", r)
	}
}

// TestMachineOwnerAlwaysPreempts: Preempt_Mode does not bind the address owner (RFC 5798
// §6.1).
func TestMachineOwnerAlwaysPreempts(t *testing.T) {
	c := newFSMClock()
	cfg := fsmConfig(3, 255, time.Second)
	cfg.Preempt = false
	m := fsmStarted(t, c, cfg, StateMaster)
	// Another owner with a higher address (a configuration error) pushes us to backup.
	now := c.advance(100 * time.Millisecond)
	fsmWant(t, "rogue owner", m.ReceiveAdvert(now, fsmAdvert("192.0.2.200", 255, time.Second), nil),
		fsmMove(ActionBecomeBackup, StateMaster, StateBackup))
	deadline := m.Deadline()
	// A lower-priority master is discarded despite Preempt false.
	m.ReceiveAdvert(c.advance(time.Second), fsmAdvert("192.0.2.20", 100, time.Second), nil)
	fsmWantDeadline(t, "lower", m, deadline)
}

// TestMachinePreemptDelay follows keepalived's vrrp_state_backup: the delay starts at the
// first lower-priority advert seen in Backup, such adverts are accepted until it is over,
// and an advert of priority >= ours disarms it.
func TestMachinePreemptDelay(t *testing.T) {
	c := newFSMClock()
	start := c.now
	cfg := fsmConfig(3, 200, time.Second)
	cfg.PreemptDelay = 5 * time.Second
	m := fsmStarted(t, c, cfg, StateBackup)
	down := 3*time.Second + 218750*time.Microsecond
	lower := fsmAdvert("192.0.2.20", 100, time.Second)

	// First lower advert at +1 s: preemption allowed from +6 s.
	for i := 1; i <= 5; i++ {
		now := c.at(t, start.Add(time.Duration(i)*time.Second))
		m.ReceiveAdvert(now, lower, nil)
		fsmWantDeadline(t, "within delay", m, now.Add(down))
	}
	for i := 6; i <= 8; i++ {
		now := c.at(t, start.Add(time.Duration(i)*time.Second))
		fsmWant(t, "after delay", m.Timer(now, nil))
		m.ReceiveAdvert(now, lower, nil)
		fsmWantDeadline(t, "after delay", m, start.Add(5*time.Second+down))
	}
	got := m.Timer(c.at(t, start.Add(5*time.Second+down)), nil)
	fsmWant(t, "preempt", got, fsmSend(200), fsmMove(ActionBecomeMaster, StateBackup, StateMaster))

	// Disarming: a better master in between restarts the delay from the next lower advert.
	c = newFSMClock()
	start = c.now
	m = fsmStarted(t, c, cfg, StateBackup)
	m.ReceiveAdvert(c.at(t, start.Add(1*time.Second)), lower, nil) // armed: until +6 s
	m.ReceiveAdvert(c.at(t, start.Add(2*time.Second)), fsmAdvert("192.0.2.30", 250, time.Second), nil)
	m.ReceiveAdvert(c.at(t, start.Add(3*time.Second)), lower, nil) // re-armed: until +8 s
	for i := 4; i <= 7; i++ {
		now := c.at(t, start.Add(time.Duration(i)*time.Second))
		m.ReceiveAdvert(now, lower, nil)
		fsmWantDeadline(t, "re-armed delay", m, now.Add(down))
	}
	m.ReceiveAdvert(c.at(t, start.Add(8*time.Second)), lower, nil)
	fsmWantDeadline(t, "re-armed delay over", m, start.Add(7*time.Second+down))

	// Without Preempt the delay is moot: a lower master is accepted forever.
	cfg.Preempt = false
	c = newFSMClock()
	m = fsmStarted(t, c, cfg, StateBackup)
	for i := 0; i < 20; i++ {
		now := c.advance(time.Second)
		m.ReceiveAdvert(now, lower, nil)
		fsmWantDeadline(t, "nopreempt", m, now.Add(down))
	}
}

// TestMachineTieBreak: equal priorities are decided by the primary addresses compared as
// unsigned integers in network byte order (RFC 5798 §6.4.3).
func TestMachineTieBreak(t *testing.T) {
	tests := []struct {
		name    string
		primary string
		src     string
		yield   bool
	}{
		{"higher v4 source wins", "192.0.2.10", "192.0.2.11", true},
		{"lower v4 source loses", "192.0.2.10", "192.0.2.9", false}, // numeric, not textual
		{"first octet decides", "10.0.0.2", "9.255.255.255", false},
		{"high bit is unsigned", "127.255.255.255", "128.0.0.0", true},
		{"own address", "192.0.2.10", "192.0.2.10", false},
		{"v4-mapped source", "192.0.2.10", "::ffff:192.0.2.11", true},
		{"higher v6 source wins", "2001:db8::10", "2001:db8::11", true},
		{"lower v6 source loses", "2001:db8::10", "2001:db8::f", false},
		{"link-local v6", "fe80::1", "fe80::2:1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newFSMClock()
			cfg := fsmConfig(3, 100, time.Second)
			cfg.StartAsMaster = true
			cfg.PrimaryAddr = fsmAddr(tt.primary)
			m := fsmStarted(t, c, cfg, StateMaster)
			before := m.Deadline()
			now := c.advance(300 * time.Millisecond)
			got := m.ReceiveAdvert(now, fsmAdvert(tt.src, 100, time.Second), nil)
			if tt.yield {
				fsmWant(t, "tie", got, fsmMove(ActionBecomeBackup, StateMaster, StateBackup))
				fsmWantDeadline(t, "tie", m, now.Add(3*time.Second+609375*time.Microsecond))
			} else {
				if tt.src == tt.primary {
					fsmWant(t, "own advert", got)
				} else {
					fsmWant(t, "tie", got, fsmSend(100), Action{Kind: ActionAnnounce, Reason: AnnounceLowerPriorityMaster})
				}
				fsmWantState(t, "tie", m, StateMaster)
				fsmWantDeadline(t, "tie", m, before)
			}
		})
	}

	// Higher priority wins whatever the addresses.
	c := newFSMClock()
	cfg := fsmConfig(3, 100, time.Second)
	cfg.StartAsMaster = true
	m := fsmStarted(t, c, cfg, StateMaster)
	fsmWant(t, "higher", m.ReceiveAdvert(c.advance(time.Millisecond), fsmAdvert("192.0.2.1", 101, time.Second), nil),
		fsmMove(ActionBecomeBackup, StateMaster, StateBackup))
}

// TestMachinePriorityZero: a master stepping down makes the backups take over after
// Skew_Time (RFC 5798 §6.4.2), and a master that hears priority 0 re-asserts itself at
// once (§6.4.3).
func TestMachinePriorityZero(t *testing.T) {
	for _, preempt := range []bool{true, false} {
		c := newFSMClock()
		cfg := fsmConfig(3, 100, time.Second)
		cfg.Preempt = preempt
		m := fsmStarted(t, c, cfg, StateBackup)
		m.ReceiveAdvert(c.advance(time.Second), fsmAdvert("192.0.2.20", 150, time.Second), nil)
		now := c.advance(400 * time.Millisecond)
		fsmWant(t, "priority 0", m.ReceiveAdvert(now, fsmAdvert("192.0.2.20", 0, time.Second), nil))
		fsmWantDeadline(t, "priority 0", m, now.Add(609375*time.Microsecond))
		got := m.Timer(c.at(t, now.Add(609375*time.Microsecond)), nil)
		fsmWant(t, "takeover", got, fsmSend(100), fsmMove(ActionBecomeMaster, StateBackup, StateMaster))
		st := m.Stats()
		if st.PriorityZeroReceived != 1 || st.NewMasterReason != MasterReasonPriority {
			t.Fatalf("preempt=%v: stats = %+v", preempt, st)
		}
	}

	c := newFSMClock()
	m := fsmStarted(t, c, fsmConfig(3, 255, time.Second), StateMaster)
	now := c.advance(300 * time.Millisecond)
	fsmWant(t, "master hears priority 0", m.ReceiveAdvert(now, fsmAdvert("192.0.2.20", 0, time.Second), nil), fsmSend(255))
	fsmWantDeadline(t, "master hears priority 0", m, now.Add(time.Second))
	fsmWantState(t, "master hears priority 0", m, StateMaster)
}

func TestMachineShutdown(t *testing.T) {
	c := newFSMClock()
	m := fsmStarted(t, c, fsmConfig(3, 255, time.Second), StateMaster)
	got := m.Shutdown(c.advance(time.Second/2), nil)
	// RFC 5798 §6.4.3: cancel Adver_Timer, send an advert with priority 0, Initialize.
	fsmWant(t, "master", got, fsmSend(0), fsmMove(ActionStop, StateMaster, StateInitialize))
	fsmWantDeadline(t, "master", m, time.Time{})
	if st := m.Stats(); st.PriorityZeroSent != 1 || st.AdvertsSent != 2 {
		t.Fatalf("stats = %+v", st)
	}
	fsmWant(t, "again", m.Shutdown(c.advance(time.Second), nil))
	fsmWant(t, "timer in init", m.Timer(c.advance(time.Hour), nil))
	fsmWant(t, "advert in init", m.ReceiveAdvert(c.now, fsmAdvert("192.0.2.20", 100, time.Second), nil))
	// A stopped machine starts again like a new one.
	fsmWant(t, "restart", m.Startup(c.now, nil), fsmSend(255), fsmMove(ActionBecomeMaster, StateInitialize, StateMaster))

	b := fsmStarted(t, c, fsmConfig(3, 100, time.Second), StateBackup)
	fsmWant(t, "backup", b.Shutdown(c.advance(time.Second), nil), fsmMove(ActionStop, StateBackup, StateInitialize))
	fsmWantDeadline(t, "backup", b, time.Time{})
	fsmWant(t, "never started", fsmMustNew(fsmConfig(3, 100, time.Second)).Shutdown(c.now, nil))
}

func TestMachineFault(t *testing.T) {
	c := newFSMClock()
	m := fsmStarted(t, c, fsmConfig(3, 100, time.Second), StateBackup)
	m.ReceiveAdvert(c.advance(time.Second), fsmAdvert("192.0.2.20", 150, 300*time.Millisecond), nil)

	fsmWant(t, "backup down", m.InterfaceDown(c.advance(time.Second), nil), fsmMove(ActionEnterFault, StateBackup, StateFault))
	fsmWantDeadline(t, "fault", m, time.Time{})
	fsmWant(t, "down again", m.InterfaceDown(c.now, nil))
	fsmWant(t, "timer in fault", m.Timer(c.advance(time.Hour), nil))
	fsmWant(t, "advert in fault", m.ReceiveAdvert(c.now, fsmAdvert("192.0.2.20", 0, time.Second), nil))
	fsmWant(t, "priority in fault", m.SetPriority(c.now, 120, nil))

	// Leaving Fault: Backup with the configured interval and a full Master_Down_Interval.
	now := c.advance(time.Second)
	fsmWant(t, "up", m.InterfaceUp(now, nil), fsmMove(ActionBecomeBackup, StateFault, StateBackup))
	if got := m.MasterAdverInterval(); got != time.Second {
		t.Fatalf("MasterAdverInterval after fault = %v", got)
	}
	fsmWantDeadline(t, "up", m, now.Add(3*time.Second+(256-120)*time.Second/256))
	fsmWant(t, "up again", m.InterfaceUp(now, nil))

	// Master: a priority 0 advert first (keepalived), then Fault.
	now = c.at(t, m.Deadline())
	m.Timer(now, nil)
	fsmWantState(t, "master", m, StateMaster)
	fsmWant(t, "master down", m.InterfaceDown(c.advance(time.Millisecond), nil),
		fsmSend(0), fsmMove(ActionEnterFault, StateMaster, StateFault))

	// The owner leaves Fault straight to Master.
	o := fsmStarted(t, c, fsmConfig(3, 255, time.Second), StateMaster)
	o.InterfaceDown(c.advance(time.Second), nil)
	now = c.advance(time.Second)
	fsmWant(t, "owner up", o.InterfaceUp(now, nil), fsmSend(255), fsmMove(ActionBecomeMaster, StateFault, StateMaster))
	fsmWantDeadline(t, "owner up", o, now.Add(time.Second))

	// Down before Startup: Startup goes to Fault; Shutdown from Fault stops.
	f := fsmMustNew(fsmConfig(3, 100, time.Second))
	fsmWant(t, "down in init", f.InterfaceDown(c.now, nil))
	fsmWant(t, "startup while down", f.Startup(c.now, nil), fsmMove(ActionEnterFault, StateInitialize, StateFault))
	fsmWant(t, "shutdown in fault", f.Shutdown(c.now, nil), fsmMove(ActionStop, StateFault, StateInitialize))
	fsmWant(t, "up in init", f.InterfaceUp(c.now, nil))
	fsmWant(t, "startup after up", f.Startup(c.now, nil), fsmMove(ActionBecomeBackup, StateInitialize, StateBackup))
}

func TestMachineSetPriority(t *testing.T) {
	t.Run("master changes its next advert only", func(t *testing.T) {
		// keepalived: vrrp_set_effective_priority sends nothing; the next
		// Adver_Timer advert carries the new priority.
		c := newFSMClock()
		cfg := fsmConfig(3, 100, time.Second)
		cfg.StartAsMaster = true
		m := fsmStarted(t, c, cfg, StateMaster)
		due := m.Deadline()
		now := c.advance(400 * time.Millisecond)
		fsmWant(t, "lower", m.SetPriority(now, 50, nil))
		fsmWantDeadline(t, "lower", m, due)
		fsmWant(t, "same", m.SetPriority(c.advance(time.Millisecond), 50, nil))
		fsmWant(t, "clamp high", m.SetPriority(c.now, 255, nil))
		if m.Priority() != 254 {
			t.Fatalf("Priority = %d, want 254", m.Priority())
		}
		fsmWant(t, "clamp zero", m.SetPriority(c.now, 0, nil))
		if m.Priority() != 1 {
			t.Fatalf("Priority = %d", m.Priority())
		}
		fsmWant(t, "timer", m.Timer(c.at(t, m.Deadline()), nil), fsmSend(1))
	})
	t.Run("owner keeps 255", func(t *testing.T) {
		c := newFSMClock()
		m := fsmStarted(t, c, fsmConfig(3, 255, time.Second), StateMaster)
		fsmWant(t, "owner", m.SetPriority(c.now, 10, nil))
		if m.Priority() != 255 {
			t.Fatalf("Priority = %d", m.Priority())
		}
	})
	t.Run("backup shifts its down timer and preempts", func(t *testing.T) {
		c := newFSMClock()
		m := fsmStarted(t, c, fsmConfig(3, 100, time.Second), StateBackup)
		fsmWant(t, "accepted", m.ReceiveAdvert(c.advance(time.Second), fsmAdvert("192.0.2.20", 150, time.Second), nil))
		last := c.now
		fsmWant(t, "raise", m.SetPriority(c.advance(time.Second), 200, nil))
		// last advert + 3 s + 56/256 s, no longer + 156/256 s.
		fsmWantDeadline(t, "raise", m, last.Add(3*time.Second+218750*time.Microsecond))
		// The 150 master is now lower: its adverts are discarded and we take over.
		m.ReceiveAdvert(c.advance(time.Second), fsmAdvert("192.0.2.20", 150, time.Second), nil)
		fsmWantDeadline(t, "discarded", m, last.Add(3*time.Second+218750*time.Microsecond))
		got := m.Timer(c.at(t, m.Deadline()), nil)
		fsmWant(t, "preempt", got, fsmSend(200), fsmMove(ActionBecomeMaster, StateBackup, StateMaster))
	})
	t.Run("before startup", func(t *testing.T) {
		c := newFSMClock()
		m := fsmMustNew(fsmConfig(3, 100, time.Second))
		fsmWant(t, "init", m.SetPriority(c.now, 200, nil))
		m.Startup(c.now, nil)
		fsmWantDeadline(t, "startup", m, c.now.Add(3*time.Second+218750*time.Microsecond))
	})
}

func TestMachineTimerEarlyAndLate(t *testing.T) {
	c := newFSMClock()
	start := c.now
	m := fsmStarted(t, c, fsmConfig(3, 255, time.Second), StateMaster)
	fsmWant(t, "early", m.Timer(c.advance(999*time.Millisecond), nil))
	fsmWantDeadline(t, "early", m, start.Add(time.Second))
	// 1.99 intervals late: the backups heard us 2.99 intervals ago, less than
	// any Master_Down_Interval; one advert, the next one a full interval from now.
	now := c.at(t, start.Add(2990*time.Millisecond))
	fsmWant(t, "late master", m.Timer(now, nil), fsmSend(255))
	fsmWantDeadline(t, "late master", m, now.Add(time.Second))
	fsmWant(t, "immediately again", m.Timer(now, nil))
	// 2 intervals late: silent for 3 intervals, the bound below every
	// backup's Master_Down_Interval (3.0078 intervals at priority 254), so a
	// backup may have taken over: re-announce.
	now = c.at(t, m.Deadline().Add(2*time.Second))
	fsmWant(t, "frozen master", m.Timer(now, nil), fsmSend(255), Action{Kind: ActionAnnounce, Reason: AnnounceResumedLate})
	fsmWantDeadline(t, "frozen master", m, now.Add(time.Second))
	if n := m.Stats().ResumedLate; n != 1 {
		t.Fatalf("ResumedLate = %d, want 1", n)
	}

	b := fsmStarted(t, c, fsmConfig(3, 100, time.Second), StateBackup)
	now = c.at(t, b.Deadline().Add(2*time.Second))
	fsmWant(t, "late backup", b.Timer(now, nil), fsmSend(100), fsmMove(ActionBecomeMaster, StateBackup, StateMaster))
	fsmWantDeadline(t, "late backup", b, now.Add(time.Second))

	// An advert handled after the deadline but before Timer keeps the backup a backup.
	b2 := fsmStarted(t, c, fsmConfig(3, 100, time.Second), StateBackup)
	now = c.at(t, b2.Deadline().Add(time.Millisecond))
	fsmWant(t, "late advert", b2.ReceiveAdvert(now, fsmAdvert("192.0.2.20", 150, time.Second), nil))
	fsmWant(t, "timer after late advert", b2.Timer(now, nil))
	fsmWantState(t, "late advert", b2, StateBackup)

	fsmWant(t, "init", fsmMustNew(fsmConfig(3, 100, time.Second)).Timer(c.now, nil))
}

// TestMachineStartAsMaster: keepalived 1.2-style `state MASTER` (see Config.StartAsMaster).
func TestMachineStartAsMaster(t *testing.T) {
	c := newFSMClock()
	cfg := fsmConfig(3, 100, time.Second)
	cfg.StartAsMaster = true
	m := fsmMustNew(cfg)
	fsmWant(t, "startup", m.Startup(c.now, nil), fsmSend(100), fsmMove(ActionBecomeMaster, StateInitialize, StateMaster))
	fsmWantDeadline(t, "startup", m, c.now.Add(time.Second))
	// It yields to a better master by the ordinary rules.
	now := c.advance(20 * time.Millisecond)
	fsmWant(t, "better master", m.ReceiveAdvert(now, fsmAdvert("192.0.2.20", 150, time.Second), nil),
		fsmMove(ActionBecomeBackup, StateMaster, StateBackup))
	fsmWantDeadline(t, "better master", m, now.Add(3*time.Second+609375*time.Microsecond))

	// It applies with nopreempt too (a resumed vrrpd must not fail over), and a
	// nopreempt master still yields to a better one.
	cfg.Preempt = false
	n := fsmMustNew(cfg)
	fsmWant(t, "nopreempt", n.Startup(c.now, nil), fsmSend(100), fsmMove(ActionBecomeMaster, StateInitialize, StateMaster))
	fsmWant(t, "nopreempt yields", n.ReceiveAdvert(c.advance(time.Millisecond), fsmAdvert("192.0.2.20", 150, time.Second), nil),
		fsmMove(ActionBecomeBackup, StateMaster, StateBackup))
}

// TestMachineAppends: actions are appended to the caller's slice, never overwrite it.
func TestMachineAppends(t *testing.T) {
	c := newFSMClock()
	m := fsmMustNew(fsmConfig(3, 255, time.Second))
	out := make([]Action, 1, 8)
	out[0] = fsmSend(42)
	out = m.Startup(c.now, out)
	want := []Action{fsmSend(42), fsmSend(255), fsmMove(ActionBecomeMaster, StateInitialize, StateMaster)}
	if !slices.Equal(out, want) {
		t.Fatalf("out = %v, want %v", out, want)
	}
}

func TestMachineStats(t *testing.T) {
	c := newFSMClock()
	m := fsmStarted(t, c, fsmConfig(3, 100, time.Second), StateBackup)
	m.ReceiveAdvert(c.advance(time.Second), fsmAdvert("192.0.2.20", 150, time.Second), nil)
	m.ReceiveAdvert(c.advance(time.Second), fsmAdvert("192.0.2.20", 0, time.Second), nil)
	// Becomes master (1 advert), one Adver_Timer advert, one answer to priority 0, then
	// a priority 0 advert on Shutdown.
	m.Timer(c.at(t, m.Deadline()), nil)
	m.Timer(c.at(t, m.Deadline()), nil)
	m.ReceiveAdvert(c.advance(time.Millisecond), fsmAdvert("192.0.2.20", 0, time.Second), nil)
	m.Shutdown(c.advance(time.Millisecond), nil)
	want := Stats{
		MasterTransitions:    1,
		NewMasterReason:      MasterReasonPriority,
		AdvertsReceived:      3,
		AdvertsSent:          4,
		PriorityZeroReceived: 2,
		PriorityZeroSent:     1,
	}
	if got := m.Stats(); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
}

func TestMachineConfigValidate(t *testing.T) {
	ok := fsmConfig(3, 100, time.Second)
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		modify func(*Config)
		substr string
	}{
		{"vrid 0", func(c *Config) { c.VRID = 0 }, "VRID"},
		{"priority 0", func(c *Config) { c.Priority = 0 }, "priority"},
		{"version 1", func(c *Config) { c.Version = 1 }, "version"},
		{"version 4", func(c *Config) { c.Version = 4 }, "version"},
		{"v3 zero interval", func(c *Config) { c.AdvertInterval = 0 }, "VRRPv3"},
		{"v3 5ms", func(c *Config) { c.AdvertInterval = 5 * time.Millisecond }, "VRRPv3"},
		{"v3 15ms", func(c *Config) { c.AdvertInterval = 15 * time.Millisecond }, "VRRPv3"},
		{"v3 41s", func(c *Config) { c.AdvertInterval = 41 * time.Second }, "VRRPv3"},
		{"v2 100ms", func(c *Config) { c.Version = 2; c.AdvertInterval = 100 * time.Millisecond }, "VRRPv2"},
		{"v2 1.5s", func(c *Config) { c.Version = 2; c.AdvertInterval = 1500 * time.Millisecond }, "VRRPv2"},
		{"v2 256s", func(c *Config) { c.Version = 2; c.AdvertInterval = 256 * time.Second }, "VRRPv2"},
		{"negative preempt delay", func(c *Config) { c.PreemptDelay = -time.Second }, "preempt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.modify(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.substr) {
				t.Fatalf("Validate = %v, want error mentioning %q", err, tt.substr)
			}
			defer func() {
				if recover() == nil {
					t.Fatal("New did not panic")
				}
			}()
			fsmMustNew(cfg)
		})
	}
	for _, good := range []Config{
		fsmConfig(3, 1, 10*time.Millisecond),
		fsmConfig(3, 255, fsmV3IntervalMax),
		fsmConfig(2, 254, time.Second),
		fsmConfig(2, 1, 255*time.Second),
	} {
		if err := good.Validate(); err != nil {
			t.Errorf("%+v: %v", good, err)
		}
	}
}

func TestMachineStrings(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{StateInitialize.String(), "INIT"},
		{StateBackup.String(), "BACKUP"},
		{StateMaster.String(), "MASTER"},
		{StateFault.String(), "FAULT"},
		{State(9).String(), "State(9)"},
		{ActionKind(0).String(), "ActionKind(0)"},
		{fsmSend(0).String(), "SendAdvert(priority=0)"},
		{fsmMove(ActionBecomeMaster, StateBackup, StateMaster).String(), "BecomeMaster(BACKUP->MASTER)"},
		{fsmMove(ActionStop, StateFault, StateInitialize).String(), "Stop(FAULT->INIT)"},
		{fsmMove(ActionEnterFault, StateBackup, StateFault).String(), "EnterFault(BACKUP->FAULT)"},
		{fsmMove(ActionBecomeBackup, StateMaster, StateBackup).String(), "BecomeBackup(MASTER->BACKUP)"},
		{MasterReasonNotMaster.String(), "notMaster"},
		{MasterReasonPriority.String(), "priority"},
		{MasterReasonPreempted.String(), "preempted"},
		{MasterReasonMasterNoResponse.String(), "masterNoResponse"},
		{MasterReason(7).String(), "MasterReason(7)"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	if fsmSend(1).IsTransition() || !fsmMove(ActionStop, StateBackup, StateInitialize).IsTransition() {
		t.Error("IsTransition")
	}
}

// TestMachineAllocs: the hot path of 200 instances advertising every 50 ms must not
// allocate once the caller's action slice has room.
func TestMachineAllocs(t *testing.T) {
	const n = 200
	c := newFSMClock()
	machines := make([]*Machine, n)
	adverts := make([]Advert, n)
	for i := range machines {
		cfg := fsmConfig(3, 100, 50*time.Millisecond)
		cfg.VRID = uint8(i%255 + 1)
		if i%2 == 0 {
			cfg.StartAsMaster = true
			adverts[i] = fsmAdvert("192.0.2.1", 50, 50*time.Millisecond) // discarded by a master
		} else {
			adverts[i] = fsmAdvert("192.0.2.20", 150, 50*time.Millisecond) // accepted by a backup
		}
		machines[i] = fsmMustNew(cfg)
		machines[i].Startup(c.now, nil)
	}
	out := make([]Action, 0, 8)
	allocs := testing.AllocsPerRun(100, func() {
		now := c.advance(50 * time.Millisecond)
		for i, m := range machines {
			out = m.Timer(now, out[:0])
			out = m.ReceiveAdvert(now, adverts[i], out[:0])
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per round of %d instances", allocs, n)
	}
	for i, m := range machines {
		want := StateBackup
		if i%2 == 0 {
			want = StateMaster
		}
		fsmWantState(t, "after rounds", m, want)
	}
	if st := machines[0].Stats(); st.AdvertsSent < 100 {
		t.Fatalf("master sent only %d adverts", st.AdvertsSent)
	}

	// The other events do not allocate either.
	m := fsmMustNew(fsmConfig(3, 100, 50*time.Millisecond))
	allocs = testing.AllocsPerRun(100, func() {
		now := c.advance(time.Second)
		out = m.Startup(now, out[:0])
		out = m.SetPriority(now, 120, out[:0])
		out = m.ReceiveAdvert(now, adverts[1], out[:0])
		out = m.ReceiveAdvert(now, Advert{Priority: 0}, out[:0])
		out = m.Timer(now.Add(time.Second), out[:0])
		out = m.SetPriority(now, 100, out[:0])
		out = m.InterfaceDown(now, out[:0])
		out = m.InterfaceUp(now, out[:0])
		out = m.Shutdown(now, out[:0])
	})
	if allocs != 0 {
		t.Fatalf("%v allocations for the other events", allocs)
	}
}

func BenchmarkMachineReceiveAdvert(b *testing.B) {
	c := newFSMClock()
	m := fsmMustNew(fsmConfig(3, 100, 50*time.Millisecond))
	m.Startup(c.now, nil)
	a := fsmAdvert("192.0.2.20", 150, 50*time.Millisecond)
	out := make([]Action, 0, 8)
	b.ReportAllocs()
	for b.Loop() {
		out = m.ReceiveAdvert(c.advance(time.Millisecond), a, out[:0])
	}
}

func BenchmarkMachineTimer(b *testing.B) {
	c := newFSMClock()
	m := fsmMustNew(fsmConfig(3, 255, 50*time.Millisecond))
	m.Startup(c.now, nil)
	out := make([]Action, 0, 8)
	b.ReportAllocs()
	for b.Loop() {
		out = m.Timer(c.advance(50*time.Millisecond), out[:0])
	}
}

// fsmMustNew is New for configurations the test knows to be valid.
func fsmMustNew(cfg Config) *Machine {
	m, err := New(cfg)
	if err != nil {
		panic(err)
	}
	return m
}

// TestMachineOtherMaster: what a master does on hearing another master, with
// keepalived's lower_prio_no_advert and higher_prio_send_advert (the split
// brain a frozen master leaves behind when it resumes).
func TestMachineOtherMaster(t *testing.T) {
	announce := Action{Kind: ActionAnnounce, Reason: AnnounceLowerPriorityMaster}
	for _, tc := range []struct {
		name          string
		noAdvert      bool
		higherAdvert  bool
		prio          uint8
		src           string
		want          []Action
		state         State
		lowerMasters  uint64
		advertsSentBy uint64
	}{
		{name: "lower answered", prio: 100, src: "192.0.2.20", want: []Action{fsmSend(150), announce}, state: StateMaster, lowerMasters: 1, advertsSentBy: 1},
		{name: "lower, no advert", noAdvert: true, prio: 100, src: "192.0.2.20", want: []Action{announce}, state: StateMaster, lowerMasters: 1},
		{name: "equal, lower address", prio: 150, src: "192.0.2.9", want: []Action{fsmSend(150), announce}, state: StateMaster, lowerMasters: 1, advertsSentBy: 1},
		{name: "higher yields", prio: 200, src: "192.0.2.1", want: []Action{fsmMove(ActionBecomeBackup, StateMaster, StateBackup)}, state: StateBackup},
		{name: "higher, send first", higherAdvert: true, prio: 200, src: "192.0.2.1", want: []Action{fsmSend(150), fsmMove(ActionBecomeBackup, StateMaster, StateBackup)}, state: StateBackup, advertsSentBy: 1},
		{name: "lower, higher option irrelevant", higherAdvert: true, noAdvert: true, prio: 1, src: "192.0.2.20", want: []Action{announce}, state: StateMaster, lowerMasters: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newFSMClock()
			cfg := fsmConfig(3, 150, time.Second)
			cfg.StartAsMaster = true
			cfg.LowerPrioNoAdvert = tc.noAdvert
			cfg.HigherPrioSendAdvert = tc.higherAdvert
			m := fsmStarted(t, c, cfg, StateMaster)
			sent := m.Stats().AdvertsSent
			got := m.ReceiveAdvert(c.advance(100*time.Millisecond), fsmAdvert(tc.src, tc.prio, time.Second), nil)
			fsmWant(t, tc.name, got, tc.want...)
			fsmWantState(t, tc.name, m, tc.state)
			st := m.Stats()
			if st.LowerPriorityMastersHeard != tc.lowerMasters || st.AdvertsSent-sent != tc.advertsSentBy {
				t.Fatalf("stats: lower masters heard %d, adverts sent %d; want %d, %d",
					st.LowerPriorityMastersHeard, st.AdvertsSent-sent, tc.lowerMasters, tc.advertsSentBy)
			}
		})
	}
}
