package vrrp

import (
	"net/netip"
	"testing"
	"time"
)

// fsmFuzzConfig derives a valid configuration from six bytes.
func fsmFuzzConfig(b []byte) Config {
	cfg := Config{
		VRID:        1,
		Version:     2 + b[0]&1,
		Priority:    max(b[1], 1),
		Preempt:     b[2]&1 == 0,
		PrimaryAddr: netip.AddrFrom4([4]byte{192, 0, 2, b[3]}),
	}
	cfg.StartAsMaster = b[2]&2 != 0
	if b[2]&4 != 0 {
		cfg.PreemptDelay = time.Duration(b[4]) * 100 * time.Millisecond
	}
	if cfg.Version == 2 {
		cfg.AdvertInterval = time.Duration(b[5]%5+1) * time.Second
	} else {
		cfg.AdvertInterval = time.Duration(int(b[5])%100+1) * fsmV3IntervalUnit
	}
	return cfg
}

// FuzzMachine feeds random event sequences to a machine and checks after every event
// that it did not panic and kept its invariants:
//   - Master has an Adver_Timer deadline no further than one Advertisement_Interval
//     away, Backup a Master_Down_Timer deadline no further than Master_Down_Interval
//     away, Initialize and Fault none;
//   - the transitions returned chain from the state before the call to the state after;
//   - BecomeMaster is preceded by an advert with our priority, priority 0 adverts only
//     come from a master leaving;
//   - the effective priority is 255 for the owner and 1..254 for everyone else;
//   - Stats.MasterTransitions counts the BecomeMaster actions.
func FuzzMachine(f *testing.F) {
	f.Add([]byte{1, 100, 0, 10, 0, 99, 0, 0, 0, 0, 3, 0, 0, 0, 2, 1, 200, 1, 3, 20, 150, 100, 4, 200, 0, 0, 6, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0})
	f.Add([]byte{0, 255, 0, 10, 0, 0, 0, 0, 0, 0, 4, 11, 255, 1, 3, 0, 0, 0, 4, 9, 0, 1, 1, 0, 0, 0})
	f.Add([]byte{1, 200, 4, 10, 30, 4, 0, 0, 0, 0, 4, 20, 100, 5, 8, 50, 10, 0, 4, 20, 100, 5, 3, 0, 0, 0, 2, 9, 9, 9})
	f.Add([]byte{1, 100, 3, 10, 0, 9, 6, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 5, 0, 0, 0, 5, 255, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 6 {
			return
		}
		cfg := fsmFuzzConfig(data)
		m := fsmMustNew(cfg)
		c := newFSMClock()
		var out []Action
		var becameMaster uint64
		for ops := data[6:]; len(ops) >= 4; ops = ops[4:] {
			op, a1, a2, a3 := ops[0], ops[1], ops[2], ops[3]
			before := m.State()
			switch op % 12 {
			case 0:
				out = m.Startup(c.now, out[:0])
			case 1:
				out = m.Shutdown(c.now, out[:0])
			case 2:
				out = m.Timer(c.advance(time.Duration(a1)*time.Duration(a2)*time.Millisecond), out[:0])
			case 3:
				if d := m.Deadline(); !d.IsZero() && d.After(c.now) {
					c.now = d
				}
				out = m.Timer(c.now, out[:0])
			case 4:
				src := netip.AddrFrom4([4]byte{192, 0, 2, a1})
				if a3&0x80 != 0 {
					src = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: a1})
				}
				interval := time.Duration(a3&0x7f) * fsmV3IntervalUnit
				if cfg.Version == 2 && a3&1 == 0 {
					interval = cfg.AdvertInterval
				}
				out = m.ReceiveAdvert(c.now, Advert{Src: src, Priority: a2, MaxAdvertInterval: interval}, out[:0])
			case 5:
				out = m.SetPriority(c.now, a1, out[:0])
			case 6:
				out = m.InterfaceDown(c.now, out[:0])
			case 7:
				out = m.InterfaceUp(c.now, out[:0])
			case 8:
				c.advance(time.Duration(a1) * time.Duration(a2) * 100 * time.Microsecond)
				out = out[:0]
			case 9:
				if d := m.Deadline(); !d.IsZero() && d.After(c.now) {
					c.now = d
				}
				m.HoldBackup(c.now)
				out = out[:0]
			case 10:
				out = m.GoMaster(c.now, MasterReasonPreempted, out[:0])
			case 11:
				out = m.GoBackup(c.now, out[:0])
			}
			for _, act := range out {
				if act.Kind == ActionBecomeMaster {
					becameMaster++
				}
			}
			fsmCheckInvariants(t, m, c.now, before, out)
			if got := m.Stats().MasterTransitions; got != becameMaster {
				t.Fatalf("MasterTransitions = %d, BecomeMaster actions = %d", got, becameMaster)
			}
		}
	})
}

func fsmCheckInvariants(t *testing.T, m *Machine, now time.Time, before State, out []Action) {
	t.Helper()
	cfg := m.Config()
	state, deadline := m.State(), m.Deadline()
	switch state {
	case StateMaster:
		if deadline.IsZero() || deadline.After(now.Add(cfg.AdvertInterval)) {
			t.Fatalf("master deadline %v, now %v", deadline, now)
		}
	case StateBackup:
		if deadline.IsZero() || deadline.After(now.Add(m.MasterDownInterval())) {
			t.Fatalf("backup deadline %v, now %v, down interval %v", deadline, now, m.MasterDownInterval())
		}
	case StateInitialize, StateFault:
		if !deadline.IsZero() {
			t.Fatalf("%v with deadline %v", state, deadline)
		}
	default:
		t.Fatalf("unknown state %v", state)
	}

	p := m.Priority()
	if cfg.Priority == 255 && p != 255 || cfg.Priority != 255 && (p < 1 || p > 254) {
		t.Fatalf("priority %d with configured %d", p, cfg.Priority)
	}

	cur := before
	for i, act := range out {
		switch act.Kind {
		case ActionSendAdvert:
			if act.Priority == 0 {
				// Only a master leaving sends priority 0, and the transition follows.
				if cur != StateMaster || i+1 >= len(out) || !out[i+1].IsTransition() {
					t.Fatalf("priority 0 advert out of place: %v from %v", out, before)
				}
			} else if act.Priority != p {
				t.Fatalf("advert priority %d, ours %d", act.Priority, p)
			}
		case ActionBecomeMaster, ActionBecomeBackup, ActionEnterFault, ActionStop:
			if act.From != cur || act.From == act.To {
				t.Fatalf("transition %v does not follow %v: %v", act, cur, out)
			}
			if want := map[ActionKind]State{
				ActionBecomeMaster: StateMaster, ActionBecomeBackup: StateBackup,
				ActionEnterFault: StateFault, ActionStop: StateInitialize,
			}[act.Kind]; act.To != want {
				t.Fatalf("%v enters %v", act.Kind, act.To)
			}
			if act.Kind == ActionBecomeMaster && (i == 0 || out[i-1].Kind != ActionSendAdvert || out[i-1].Priority == 0) {
				t.Fatalf("BecomeMaster without an advert first: %v", out)
			}
			cur = act.To
		case ActionAnnounce:
			// Only a master announces, and never as it leaves.
			if cur != StateMaster || act.Reason != AnnounceLowerPriorityMaster && act.Reason != AnnounceResumedLate {
				t.Fatalf("announce %v out of place: %v from %v", act, out, before)
			}
			if i != len(out)-1 {
				t.Fatalf("announce %v is not the last action: %v", act, out)
			}
		default:
			t.Fatalf("unknown action %v", act)
		}
	}
	if cur != state {
		t.Fatalf("actions %v lead from %v to %v, machine is %v", out, before, cur, state)
	}
}
