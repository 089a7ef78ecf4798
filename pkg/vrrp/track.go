package vrrp

// This file folds the state of an instance's trackers (track_script,
// track_file, track_process, track_interface) into its effective priority
// and the reasons it must be in FAULT. It is pure arithmetic, as keepalived
// 2.2.7 does it incrementally in vrrp/vrrp_track.c
// (initialise_track_script_state, process_script_update_priority,
// initialise_vrrp_file_tracking_priorities, process_update_track_process_status,
// vrrp_set_effective_priority); here it is recomputed from scratch, which
// gives the same sums and cannot drift.

import (
	"fmt"
	"math"
)

// TrackerKind says what a tracker watches.
type TrackerKind uint8

const (
	TrackScript TrackerKind = iota + 1
	TrackFile
	TrackProcess
	TrackInterface
)

// String returns the keyword keepalived uses for the kind.
func (k TrackerKind) String() string {
	switch k {
	case TrackScript:
		return "track_script"
	case TrackFile:
		return "track_file"
	case TrackProcess:
		return "track_process"
	case TrackInterface:
		return "track_interface"
	}
	return fmt.Sprintf("TrackerKind(%d)", uint8(k))
}

// Tracker is one tracker as an instance uses it.
type Tracker struct {
	Kind TrackerKind
	Name string
	// Weight is the effective weight (the reference's override or the
	// tracker's own), -253..253 as keepalived's parser leaves it; 0 means
	// the tracker faults the instance instead of moving its priority.
	Weight int
	// Reverse is `weight N reverse`: the weight applies the other way round
	// (keepalived's weight_multiplier -1), and with weight 0 the instance
	// faults while the tracker is up (file: while its value is zero).
	Reverse bool
	// Group names the sync group the tracker comes from ("" the instance's
	// own); it only words fault reasons.
	Group string
}

// TrackerState is what is known of a tracker now.
type TrackerState struct {
	// Known is false until the first result arrives: keepalived's
	// SCRIPT_INIT_STATE_INIT. An init_fail script is known and down from
	// the start (SCRIPT_INIT_STATE_FAILED, vrrp_scheduler.c vrrp_init_script).
	Known bool
	// Up: script succeeded (after rise), process quorum met, interface up.
	// Unused for files.
	Up bool
	// Value is a track_file's number.
	Value int64
}

// TrackEffect is what one tracker does to its instance.
type TrackEffect struct {
	// Delta is added to the base priority.
	Delta int
	// Fault, when not "", is why the instance must be in FAULT.
	Fault string
	// Pending: the fault is only that a weight-0 tracker has no result
	// yet. keepalived holds a starting instance in INIT, silently, until
	// the first result (seen with 2.2.7: no notify before it).
	Pending bool
}

// trackFileFault is keepalived's threshold for a track_file result that
// faults the instance (vrrp_track.c: status <= -254), and trackFileMax the
// most one file may add (status > 253 counts as 253).
const (
	trackFileFault = -254
	trackFileMax   = 253
)

// Effect is what tracker t in state s does to an instance.
//
// Scripts, processes and interfaces (vrrp_track.c): a positive weight is
// added while the tracker is up, a negative one while it is down, each
// multiplied by -1 with reverse; weight 0 faults the instance while it is
// down (with reverse: while it is up). Before its first result a script
// (and here a process or file too: checkerd reports them all) adds nothing
// whatever its weight, and with weight 0 holds the instance in FAULT, as
// keepalived's num_script_init keeps an instance out of BACKUP
// (vrrp_scheduler.c vrrp_init_state, "Entering FAULT STATE (init)").
//
// Files (initialise_vrrp_file_tracking_priorities): the value times the
// weight (times -1 with reverse); a result of -254 or less faults the
// instance, more than 253 counts as 253. Weight 0 faults it while the value
// is non-zero (with reverse: while it is zero).
func Effect(t Tracker, s TrackerState) TrackEffect {
	if !s.Known {
		if t.Weight == 0 {
			return TrackEffect{Fault: t.describe("has no result yet"), Pending: true}
		}
		return TrackEffect{}
	}
	mult := 1
	if t.Reverse {
		mult = -1
	}
	if t.Kind == TrackFile {
		var status int64
		if t.Weight == 0 {
			if (s.Value != 0) == !t.Reverse {
				return TrackEffect{Fault: t.describe(fmt.Sprintf("value is %d", s.Value))}
			}
			return TrackEffect{}
		}
		status = mulSat(s.Value, int64(t.Weight*mult))
		if status <= trackFileFault {
			return TrackEffect{Fault: t.describe(fmt.Sprintf("value %d gives %d", s.Value, status))}
		}
		return TrackEffect{Delta: int(min(status, trackFileMax))}
	}
	if t.Weight == 0 {
		if s.Up != !t.Reverse {
			return TrackEffect{Fault: t.describe(t.downWord(s.Up))}
		}
		return TrackEffect{}
	}
	if (t.Weight > 0) == s.Up {
		return TrackEffect{Delta: t.Weight * mult}
	}
	return TrackEffect{}
}

// describe words a fault: "track_script chk_nginx failed",
// "interface eth1 down", "sync group G: track_file f value is 1".
func (t Tracker) describe(what string) string {
	s := t.Kind.String() + " " + t.Name + " " + what
	if t.Kind == TrackInterface {
		s = "interface " + t.Name + " " + what
	}
	if t.Group != "" {
		s = "sync group " + t.Group + ": " + s
	}
	return s
}

// downWord is how a tracker that faults its instance in state up is
// described.
func (t Tracker) downWord(up bool) string {
	switch {
	case t.Kind == TrackInterface && up:
		return "up (reverse)"
	case t.Kind == TrackInterface:
		return "down"
	case t.Kind == TrackProcess && up:
		return "has quorum (reverse)"
	case t.Kind == TrackProcess:
		return "lost quorum"
	case up:
		return "succeeded (reverse)"
	}
	return "failed"
}

// mulSat multiplies without overflow, saturating at the int64 limits.
func mulSat(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	p := a * b
	if p/b != a || (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) {
		if (a < 0) != (b < 0) {
			return math.MinInt64
		}
		return math.MaxInt64
	}
	return p
}

// Fold is the effective priority of an instance with configured priority
// base and the given tracker effects, and whether any of them faults it.
//
// The sum is clamped to 1..254 (vrrp_set_effective_priority). The address
// owner (255) keeps 255: keepalived drops every weighted tracker of an
// owner at config time (vrrp.c vrrp_complete_instance, "ignoring tracked
// script with weights due to address_owner"), so only weight-0 trackers,
// which fault, act on it.
func Fold(base uint8, effects []TrackEffect) (priority uint8, faulted bool) {
	total := int64(base)
	for _, e := range effects {
		total += int64(e.Delta)
		if e.Fault != "" {
			faulted = true
		}
	}
	if base == fsmPriorityOwner {
		return base, faulted
	}
	return uint8(max(1, min(total, fsmPriorityMaxBackup))), faulted
}
