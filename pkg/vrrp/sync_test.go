package vrrp

import (
	"slices"
	"testing"
	"time"
)

func TestSyncCanGoMaster(t *testing.T) {
	b := SyncMember{State: StateBackup}
	bw := SyncMember{State: StateBackup, WantsMaster: true}
	m := SyncMember{State: StateMaster}
	for _, tc := range []struct {
		name    string
		members []SyncMember
		want    bool
	}{
		{"alone", []SyncMember{b}, true},
		{"other does not want master", []SyncMember{b, b}, false},
		{"other wants master", []SyncMember{b, bw}, true},
		{"group already master", []SyncMember{b, m, b}, true},
		{"one of two others wants", []SyncMember{b, bw, b}, false},
		{"other in fault", []SyncMember{b, {State: StateFault}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SyncCanGoMaster(tc.members, 0); got != tc.want {
				t.Fatalf("SyncCanGoMaster = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSyncFollow(t *testing.T) {
	toBackup := Action{Kind: ActionBecomeBackup, From: StateMaster, To: StateBackup}
	toMaster := Action{Kind: ActionBecomeMaster, From: StateBackup, To: StateMaster}
	b, m, f := SyncMember{State: StateBackup}, SyncMember{State: StateMaster}, SyncMember{State: StateFault}
	for _, tc := range []struct {
		name    string
		members []SyncMember
		a       Action
		want    []SyncOrder
	}{
		{"master to backup takes masters along", []SyncMember{b, m, m, b}, toBackup, []SyncOrder{{1, StateBackup}, {2, StateBackup}}},
		{"backup from fault takes nobody", []SyncMember{b, m}, Action{Kind: ActionBecomeBackup, From: StateFault, To: StateBackup}, nil},
		{"master takes backups along", []SyncMember{m, b, f, m}, toMaster, []SyncOrder{{1, StateMaster}}},
		{"fault orders nothing (the engine folds faults)", []SyncMember{f, m}, Action{Kind: ActionEnterFault, From: StateBackup, To: StateFault}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SyncFollow(tc.members, 0, tc.a); !slices.Equal(got, tc.want) {
				t.Fatalf("SyncFollow = %v, want %v", got, tc.want)
			}
		})
	}
	if !SyncFaulted([]SyncMember{b, {State: StateFault, Faulted: true}}) || SyncFaulted([]SyncMember{b, f}) {
		t.Fatal("SyncFaulted: a group is faulted by its members' own faults only")
	}
}

func TestMachineSyncMoves(t *testing.T) {
	t.Run("hold backup re-arms and wants master until an advert", func(t *testing.T) {
		c := newFSMClock()
		m := fsmStarted(t, c, fsmConfig(3, 100, time.Second), StateBackup)
		m.HoldBackup(c.now) // before the deadline: nothing
		if m.WantsMaster() {
			t.Fatal("held before its deadline")
		}
		now := c.at(t, m.Deadline())
		m.HoldBackup(now)
		fsmWantState(t, "held", m, StateBackup)
		if !m.WantsMaster() {
			t.Fatal("WantsMaster false after HoldBackup")
		}
		fsmWantDeadline(t, "held", m, now.Add(m.MasterDownInterval()))
		m.ReceiveAdvert(c.advance(time.Second), fsmAdvert("192.0.2.20", 150, time.Second), nil)
		if m.WantsMaster() {
			t.Fatal("WantsMaster still true after an accepted advert")
		}
	})
	t.Run("go master and back", func(t *testing.T) {
		c := newFSMClock()
		m := fsmStarted(t, c, fsmConfig(3, 100, time.Second), StateBackup)
		fsmWant(t, "go master", m.GoMaster(c.now, MasterReasonPreempted, nil), fsmSend(100), fsmMove(ActionBecomeMaster, StateBackup, StateMaster))
		fsmWant(t, "again", m.GoMaster(c.now, MasterReasonPreempted, nil))
		// No priority 0 advert: vrrp_state_leave_master with wantstate BACKUP.
		fsmWant(t, "go backup", m.GoBackup(c.advance(time.Second), nil), fsmMove(ActionBecomeBackup, StateMaster, StateBackup))
		fsmWant(t, "again", m.GoBackup(c.now, nil))
		fsmWantDeadline(t, "backup", m, c.now.Add(m.MasterDownInterval()))
	})
}
