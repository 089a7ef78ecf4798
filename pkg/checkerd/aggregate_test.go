package checkerd

import (
	"errors"
	"testing"

	"github.com/vrrpkit/vrrpkit/pkg/check"
	"github.com/vrrpkit/vrrpkit/pkg/track"
)

// TestAggregate: the rule that folds a real server's checkers into one
// result (check_api.c: alive while no checker has failed).
func TestAggregate(t *testing.T) {
	ran := func(up bool, reason string, weight int64) *rsCheck {
		return &rsCheck{sc: check.SnapshotCheck{Type: "TCP_CHECK"}, ran: true,
			last: check.Transition{Up: up, Result: check.Result{Up: up, Reason: reason, Weight: weight, HasWeight: weight != 0}}}
	}
	notRun := func(alpha bool) *rsCheck {
		return &rsCheck{sc: check.SnapshotCheck{Type: "HTTP_GET", Job: check.Job{Params: check.Params{Alpha: alpha}}}}
	}
	unsupported := &rsCheck{sc: check.SnapshotCheck{Type: "MISC_CHECK", Err: errors.New("MISC_CHECK: not supported")}}
	for _, tc := range []struct {
		name   string
		checks []*rsCheck
		state  track.State
		value  int64
		detail string
	}{
		{"none ran", []*rsCheck{notRun(false)}, track.StateInit, 0, "not checked yet"},
		{"only unsupported", []*rsCheck{unsupported}, track.StateInit, 0, "no checker runs: MISC_CHECK: not supported"},
		{"all up", []*rsCheck{ran(true, "a ok", 0), ran(true, "b ok", 0)}, track.StateUp, 0, "a ok; b ok"},
		{"one down", []*rsCheck{ran(true, "a ok", 0), ran(false, "b refused", 0)}, track.StateDown, 0, "TCP_CHECK: b refused"},
		{"up, other not run", []*rsCheck{ran(true, "a ok", 0), notRun(false)}, track.StateUp, 0, "a ok"},
		{"up, alpha not run", []*rsCheck{ran(true, "a ok", 0), notRun(true)}, track.StateDown, 0, "HTTP_GET not checked yet (alpha)"},
		{"unsupported ignored", []*rsCheck{ran(true, "a ok", 0), unsupported}, track.StateUp, 0, "a ok"},
		{"file weights add", []*rsCheck{ran(true, "f1", 3), ran(true, "f2", -1)}, track.StateUp, 2, "f1; f2"},
		{"down drops weight", []*rsCheck{ran(true, "f1", 3), ran(false, "x", 0)}, track.StateDown, 0, "TCP_CHECK: x"},
	} {
		r := aggregate("rs", tc.checks)
		if r.State != tc.state || r.Value != tc.value || r.Detail != tc.detail || r.Key != rsKey("rs") {
			t.Errorf("%s: got %v %d %q (%v), want %v %d %q", tc.name, r.State, r.Value, r.Detail, r.Key, tc.state, tc.value, tc.detail)
		}
	}
}
