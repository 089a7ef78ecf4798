package vrrp

import (
	"errors"
	"fmt"
	"time"
)

// ErrRestartNeeded is returned by Reconfigure for a change a running
// machine cannot take: the caller stops the instance (a master sends
// priority 0) and starts a new one.
var ErrRestartNeeded = errors.New("vrrp: the change needs a restart")

// Reconfigure gives a running machine a new configuration without leaving
// its state, so that a reload does not flap an instance whose priority,
// timers or preemption changed (keepalived restarts every changed instance
// on reload; RFC 5798 does not require it: §6.1's parameters are only read
// when the timers that use them are next armed or an advert arrives).
//
// VRID, version and becoming or ceasing to be the address owner (priority
// 255, which changes Startup and preemption) need a restart:
// ErrRestartNeeded, and the machine is unchanged. So does an invalid cfg.
//
// The effective priority is not touched: the caller folds tracking into
// the new base priority (Config().Priority) and calls SetPriority, as it
// does after any tracker change. PrimaryAddr keeps the running value (it
// comes from the interface, not the configuration).
//
// Timers: a master sends its next advert no later than one new
// Advertisement_Interval from now (a longer interval takes effect after the
// advert already due). A backup moves its Master_Down_Timer by the change
// in Master_Down_Interval, so the deadline stays "last accepted advert +
// Master_Down_Interval" as SetPriority keeps it. For VRRPv3 a backup's
// Master_Adver_Interval is the master's (learned from its adverts) and does
// not change here.
func (m *Machine) Reconfigure(now time.Time, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	old := m.cfg
	switch {
	case cfg.VRID != old.VRID:
		return fmt.Errorf("%w: virtual_router_id %d -> %d", ErrRestartNeeded, old.VRID, cfg.VRID)
	case cfg.Version != old.Version:
		return fmt.Errorf("%w: version %d -> %d", ErrRestartNeeded, old.Version, cfg.Version)
	case (cfg.Priority == fsmPriorityOwner) != (old.Priority == fsmPriorityOwner):
		return fmt.Errorf("%w: priority %d -> %d changes address ownership", ErrRestartNeeded, old.Priority, cfg.Priority)
	}
	cfg.PrimaryAddr = old.PrimaryAddr
	oldDown := m.MasterDownInterval()
	m.cfg = cfg
	if cfg.AdvertInterval != old.AdvertInterval && (m.state == StateMaster || cfg.Version == 2) {
		// A master's Master_Adver_Interval is its own; VRRPv2 has no
		// other.
		m.masterAdverInterval = cfg.AdvertInterval
	}
	switch m.state {
	case StateMaster:
		if next := now.Add(cfg.AdvertInterval); m.timer == fsmTimerAdver && next.Before(m.deadline) {
			m.deadline = next
		}
	case StateBackup:
		if m.timer == fsmTimerMasterDown {
			m.deadline = m.deadline.Add(m.MasterDownInterval() - oldDown)
		}
		if !cfg.Preempt || cfg.PreemptDelay == 0 {
			// A preempt_delay window in progress ends with the delay.
			m.preemptArmed = false
		}
	}
	return nil
}
