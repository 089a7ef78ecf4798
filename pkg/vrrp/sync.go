package vrrp

// This file holds the rules of a vrrp_sync_group, whose instances change
// state together, as keepalived 2.2.7 applies them (vrrp/vrrp_sync.c,
// vrrp/vrrp_track.c down_instance, vrrp/vrrp_scheduler.c try_up_instance
// and the VRRP_TSM table):
//
//   - FAULT: while any member has a fault of its own, every member is in
//     FAULT (vrrp_sync_fault); the group leaves FAULT only when no member
//     has one left (try_up_instance counts num_member_fault down to zero),
//     and then they all go to BACKUP.
//   - BACKUP: a member that leaves MASTER for BACKUP (it heard a higher
//     priority) takes every other MASTER member to BACKUP with it
//     (vrrp_sync_backup, from the TSM's MASTER->BACKUP entry). No priority 0
//     advert is sent for that (vrrp_state_leave_master with wantstate
//     BACKUP).
//   - MASTER: a backup whose down timer runs out becomes master only if the
//     group is already MASTER or every other member wants MASTER too (its
//     own down timer ran out and no advert has been accepted since);
//     otherwise it stays BACKUP, wanting MASTER, with its down timer re-armed
//     (vrrp_sync_can_goto_master, "prefer backup state to avoid thrashing").
//     A member that does become master takes every other member to MASTER
//     at once (vrrp_sync_master).
//
// The functions are pure: the engine gives them its members' states and
// carries out the orders they return.

// SyncMember is one member of a sync group as the rules see it.
type SyncMember struct {
	State State
	// WantsMaster: a backup whose down timer ran out while the group held
	// it (Machine.WantsMaster).
	WantsMaster bool
	// Faulted: the member has a fault of its own (not one the group gave
	// it).
	Faulted bool
}

// SyncFaulted reports whether the group is in FAULT: some member has a
// fault of its own.
func SyncFaulted(members []SyncMember) bool {
	for _, m := range members {
		if m.Faulted {
			return true
		}
	}
	return false
}

// SyncCanGoMaster reports whether member self may become master now that
// its down timer ran out (vrrp_sync_can_goto_master).
func SyncCanGoMaster(members []SyncMember, self int) bool {
	for i, m := range members {
		if i != self && m.State == StateMaster {
			return true // the group is MASTER already
		}
	}
	for i, m := range members {
		if i != self && !m.WantsMaster {
			return false
		}
	}
	return true
}

// SyncOrder tells the engine to move member Member to state To
// (Machine.GoMaster or Machine.GoBackup).
type SyncOrder struct {
	Member int
	To     State
}

// SyncFollow returns what the other members must do after member self made
// transition a (an action for which IsTransition holds).
func SyncFollow(members []SyncMember, self int, a Action) []SyncOrder {
	var out []SyncOrder
	switch {
	case a.Kind == ActionBecomeBackup && a.From == StateMaster:
		for i, m := range members {
			if i != self && m.State == StateMaster {
				out = append(out, SyncOrder{Member: i, To: StateBackup})
			}
		}
	case a.Kind == ActionBecomeMaster:
		for i, m := range members {
			if i != self && m.State == StateBackup {
				out = append(out, SyncOrder{Member: i, To: StateMaster})
			}
		}
	}
	return out
}
