package lvs

import (
	"testing"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// TestStepQuorumAgreesWithNext: quorum decided step by step (one health
// change at a time, as vrrpd does) is what a later Next keeps, including
// through hysteresis, so the table computed once for many changes has the
// states the scripts were run for.
func TestStepQuorumAgreesWithNext(t *testing.T) {
	vs := vs(4, 1, nil, rs(1, 2), rs(2, 2), rs(3, 2))
	h := map[string]bool{"rs1": true, "rs2": true, "rs3": true}
	tab := Desired([]*pb.VirtualServer{vs}, health(h))
	if !tab.QuorumUp[vs.Name] {
		t.Fatal("quorum down at start with 6 of quorum 4 + hysteresis 1")
	}
	for _, step := range []struct {
		id      string
		up      bool
		wantUp  bool
		changed bool
	}{
		{"rs1", false, true, false}, // 4: not below quorum - hysteresis (3)
		{"rs2", false, false, true}, // 2: lost
		{"rs2", true, false, false}, // 4: not at quorum + hysteresis (5)
		{"rs1", true, true, true},   // 6: gained
	} {
		h[step.id] = step.up
		was, known, up, _ := tab.StepQuorum(vs, health(h))
		if !known || up != step.wantUp || (was != up) != step.changed {
			t.Fatalf("%s up=%v: was %v known %v up %v, want up %v changed %v", step.id, step.up, was, known, up, step.wantUp, step.changed)
		}
		if next := tab.Next([]*pb.VirtualServer{vs}, health(h)); next.QuorumUp[vs.Name] != up {
			t.Fatalf("%s up=%v: Next says quorum %v, the step %v", step.id, step.up, next.QuorumUp[vs.Name], up)
		}
	}
}
