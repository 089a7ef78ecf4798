package vrrp

import (
	"errors"
	"testing"
	"time"
)

func TestMachineReconfigure(t *testing.T) {
	t.Run("refused changes leave the machine as it was", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			change func(*Config)
		}{
			{"vrid", func(c *Config) { c.VRID = 52 }},
			{"version", func(c *Config) { c.Version, c.AdvertInterval = 2, time.Second }},
			{"becomes owner", func(c *Config) { c.Priority = 255 }},
		} {
			c := newFSMClock()
			m := fsmStarted(t, c, fsmConfig(3, 100, time.Second), StateBackup)
			before, due := m.Config(), m.Deadline()
			cfg := m.Config()
			tc.change(&cfg)
			if err := m.Reconfigure(c.now, cfg); !errors.Is(err, ErrRestartNeeded) {
				t.Fatalf("%s: err = %v, want ErrRestartNeeded", tc.name, err)
			}
			if m.Config() != before || !m.Deadline().Equal(due) {
				t.Fatalf("%s: machine changed by a refused Reconfigure", tc.name)
			}
		}
		c := newFSMClock()
		m := fsmStarted(t, c, fsmConfig(3, 255, time.Second), StateMaster)
		cfg := m.Config()
		cfg.Priority = 200
		if err := m.Reconfigure(c.now, cfg); !errors.Is(err, ErrRestartNeeded) {
			t.Fatalf("owner -> 200: err = %v", err)
		}
		cfg.Priority, cfg.AdvertInterval = 255, 5*time.Millisecond
		if err := m.Reconfigure(c.now, cfg); err == nil || errors.Is(err, ErrRestartNeeded) {
			t.Fatalf("invalid interval: err = %v, want a validation error", err)
		}
	})
	t.Run("master keeps its state and advertises on the new interval", func(t *testing.T) {
		c := newFSMClock()
		cfg := fsmConfig(3, 100, time.Second)
		cfg.StartAsMaster = true
		m := fsmStarted(t, c, cfg, StateMaster)
		now := c.advance(200 * time.Millisecond)
		cfg.Priority, cfg.AdvertInterval, cfg.Preempt = 120, 300*time.Millisecond, false
		cfg.PrimaryAddr = fsmAddr("192.0.2.99") // from the interface, not the config
		if err := m.Reconfigure(now, cfg); err != nil {
			t.Fatal(err)
		}
		fsmWantState(t, "reconfigured", m, StateMaster)
		// Due at 1 s; the new interval brings it to 200 + 300 ms.
		fsmWantDeadline(t, "shorter interval", m, now.Add(300*time.Millisecond))
		if m.Config().Priority != 120 || m.Priority() != 100 || m.Config().PrimaryAddr != fsmAddr("192.0.2.10") {
			t.Fatalf("base %d effective %d primary %v: want base 120, effective 100 until SetPriority, primary kept",
				m.Config().Priority, m.Priority(), m.Config().PrimaryAddr)
		}
		fsmWant(t, "effective", m.SetPriority(now, 120, nil))
		fsmWant(t, "advert", m.Timer(c.at(t, m.Deadline()), nil), fsmSend(120))
		fsmWantDeadline(t, "next", m, c.now.Add(300*time.Millisecond))
		// A longer interval starts after the advert already due.
		cfg.AdvertInterval = 2 * time.Second
		due := m.Deadline()
		if err := m.Reconfigure(c.advance(100*time.Millisecond), cfg); err != nil {
			t.Fatal(err)
		}
		fsmWantDeadline(t, "longer interval", m, due)
		fsmWant(t, "advert", m.Timer(c.at(t, due), nil), fsmSend(120))
		fsmWantDeadline(t, "then 2s", m, due.Add(2*time.Second))
	})
	t.Run("v3 backup keeps the master's interval, moves its down timer by the skew", func(t *testing.T) {
		c := newFSMClock()
		m := fsmStarted(t, c, fsmConfig(3, 100, time.Second), StateBackup)
		fsmWant(t, "accepted", m.ReceiveAdvert(c.advance(time.Second), fsmAdvert("192.0.2.20", 150, time.Second), nil))
		last := c.now
		cfg := m.Config()
		cfg.Priority, cfg.AdvertInterval = 200, 100*time.Millisecond
		if err := m.Reconfigure(c.advance(100*time.Millisecond), cfg); err != nil {
			t.Fatal(err)
		}
		if m.MasterAdverInterval() != time.Second {
			t.Fatalf("Master_Adver_Interval = %v, want the master's 1s", m.MasterAdverInterval())
		}
		// Skew follows the effective priority, still 100.
		fsmWantDeadline(t, "base only", m, last.Add(3*time.Second+609375*time.Microsecond))
		m.SetPriority(c.now, 200, nil)
		fsmWantDeadline(t, "effective 200", m, last.Add(3*time.Second+218750*time.Microsecond))
		fsmWantState(t, "still backup", m, StateBackup)
	})
	t.Run("v2 backup's down interval follows its own interval", func(t *testing.T) {
		c := newFSMClock()
		m := fsmStarted(t, c, fsmConfig(2, 100, time.Second), StateBackup)
		fsmWant(t, "accepted", m.ReceiveAdvert(c.advance(time.Second), fsmAdvert("192.0.2.20", 150, 0), nil))
		last := c.now
		cfg := m.Config()
		cfg.AdvertInterval = 2 * time.Second
		if err := m.Reconfigure(c.advance(100*time.Millisecond), cfg); err != nil {
			t.Fatal(err)
		}
		fsmWantDeadline(t, "3 × 2 s + skew", m, last.Add(6*time.Second+609375*time.Microsecond))
	})
	t.Run("nopreempt ends a preempt_delay window", func(t *testing.T) {
		c := newFSMClock()
		cfg := fsmConfig(3, 200, time.Second)
		cfg.PreemptDelay = 10 * time.Second
		m := fsmStarted(t, c, cfg, StateBackup)
		// A lower master is accepted during preempt_delay.
		fsmWant(t, "lower accepted", m.ReceiveAdvert(c.advance(time.Second), fsmAdvert("192.0.2.20", 100, time.Second), nil))
		cfg.Preempt = false
		if err := m.Reconfigure(c.now, cfg); err != nil {
			t.Fatal(err)
		}
		// Without preemption the lower master is accepted for good: the
		// down timer keeps moving with its adverts.
		for i := 0; i < 15; i++ {
			fsmWant(t, "accepted", m.ReceiveAdvert(c.advance(time.Second), fsmAdvert("192.0.2.20", 100, time.Second), nil))
		}
		fsmWantState(t, "backup", m, StateBackup)
		fsmWantDeadline(t, "follows the master", m, c.now.Add(3*time.Second+218750*time.Microsecond))
	})
}
