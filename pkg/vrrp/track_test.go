package vrrp

import (
	"math"
	"testing"
)

func TestEffect(t *testing.T) {
	script := func(w int, rev bool) Tracker { return Tracker{Kind: TrackScript, Name: "chk", Weight: w, Reverse: rev} }
	file := func(w int, rev bool) Tracker { return Tracker{Kind: TrackFile, Name: "f", Weight: w, Reverse: rev} }
	up := TrackerState{Known: true, Up: true}
	down := TrackerState{Known: true}
	val := func(v int64) TrackerState { return TrackerState{Known: true, Up: true, Value: v} }
	for _, tc := range []struct {
		name  string
		t     Tracker
		s     TrackerState
		delta int
		fault string
	}{
		// vrrp_track.c process_script_update_priority / initialise_track_script_state.
		{"positive weight up adds", script(20, false), up, 20, ""},
		{"positive weight down adds nothing", script(20, false), down, 0, ""},
		{"negative weight down subtracts", script(-60, false), down, -60, ""},
		{"negative weight up adds nothing", script(-60, false), up, 0, ""},
		{"reverse positive up subtracts", script(20, true), up, -20, ""},
		{"reverse positive down nothing", script(20, true), down, 0, ""},
		{"reverse negative down adds", script(-60, true), down, 60, ""},
		{"reverse negative up nothing", script(-60, true), up, 0, ""},
		{"weight 0 down faults", script(0, false), down, 0, "track_script chk failed"},
		{"weight 0 up is fine", script(0, false), up, 0, ""},
		{"weight 0 reverse up faults", script(0, true), up, 0, "track_script chk succeeded (reverse)"},
		{"weight 0 reverse down is fine", script(0, true), down, 0, ""},
		// SCRIPT_INIT_STATE_INIT: no result yet.
		{"init weighted adds nothing (positive)", script(20, false), TrackerState{}, 0, ""},
		{"init weighted adds nothing (negative)", script(-20, false), TrackerState{}, 0, ""},
		{"init weight 0 holds in fault", script(0, false), TrackerState{}, 0, "track_script chk has no result yet"},
		// initialise_vrrp_file_tracking_priorities.
		{"file value times weight", file(10, false), val(3), 30, ""},
		{"file negative", file(-10, false), val(3), -30, ""},
		{"file reverse", file(10, true), val(3), -30, ""},
		{"file capped at 253", file(100, false), val(3), 253, ""},
		{"file -253 still runs", file(1, false), val(-253), -253, ""},
		{"file -254 faults", file(1, false), val(-254), 0, "track_file f value -254 gives -254"},
		{"file huge negative faults", file(-2, false), val(math.MaxInt64), 0, "track_file f value 9223372036854775807 gives -9223372036854775808"},
		{"file weight 0 zero fine", file(0, false), val(0), 0, ""},
		{"file weight 0 non-zero faults", file(0, false), val(7), 0, "track_file f value is 7"},
		{"file weight 0 reverse zero faults", file(0, true), val(0), 0, "track_file f value is 0"},
		{"file weight 0 reverse non-zero fine", file(0, true), val(1), 0, ""},
		{"interface down", Tracker{Kind: TrackInterface, Name: "eth1"}, down, 0, "interface eth1 down"},
		{"interface down weighted", Tracker{Kind: TrackInterface, Name: "eth1", Weight: -30}, down, -30, ""},
		{"process lost quorum", Tracker{Kind: TrackProcess, Name: "p"}, down, 0, "track_process p lost quorum"},
		{"group tracker", Tracker{Kind: TrackScript, Name: "g", Group: "G"}, down, 0, "sync group G: track_script g failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Effect(tc.t, tc.s)
			if got.Delta != tc.delta || got.Fault != tc.fault {
				t.Fatalf("Effect = %+v, want delta %d fault %q", got, tc.delta, tc.fault)
			}
		})
	}
}

func TestFold(t *testing.T) {
	for _, tc := range []struct {
		name   string
		base   uint8
		deltas []int
		fault  bool
		prio   uint8
	}{
		{"no trackers", 150, nil, false, 150},
		{"one failing script -60", 150, []int{-60}, false, 90},
		{"sum", 100, []int{20, -5, 10}, false, 125},
		{"clamped low to 1", 100, []int{-200}, false, 1},
		{"clamped high to 254", 200, []int{100}, false, 254},
		{"exactly 254", 204, []int{50}, false, 254},
		{"owner never moves", 255, []int{-100}, false, 255},
		{"owner can fault", 255, nil, true, 255},
		{"fault keeps the sum", 150, []int{-60}, true, 90},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var eff []TrackEffect
			for _, d := range tc.deltas {
				eff = append(eff, TrackEffect{Delta: d})
			}
			if tc.fault {
				eff = append(eff, TrackEffect{Fault: "x"})
			}
			prio, faulted := Fold(tc.base, eff)
			if prio != tc.prio || faulted != tc.fault {
				t.Fatalf("Fold = %d, %v; want %d, %v", prio, faulted, tc.prio, tc.fault)
			}
		})
	}
}
