package lvs

import (
	"testing"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// healthOf serves fixed ServerHealth by health id; absent is unknown.
func healthOf(m map[string]ServerHealth) Health {
	return func(id string) (ServerHealth, bool) { h, ok := m[id]; return h, ok }
}

func dyn(w uint32) ServerHealth { return ServerHealth{Up: true, Weight: w, HasWeight: true} }

// TestDesiredDynamicWeights: a live real server's destination weight is
// the one its misc_dynamic MISC_CHECK set (exit status - 2: check_misc.c),
// else the configured one, plus its FILE_CHECK deltas, clamped to
// [0, 65535] (check_data.h real_weight); and the quorum counts those
// weights (ipwrapper.c weigh_live_realservers).
func TestDesiredDynamicWeights(t *testing.T) {
	for _, tc := range []struct {
		name   string
		vs     *pb.VirtualServer
		health map[string]ServerHealth
		want   string
		up     bool
	}{
		{"exit 7: weight 5", vs(1, 0, nil, rs(1, 1), rs(2, 3)), map[string]ServerHealth{"rs1": dyn(5), "rs2": {Up: true}},
			"10.0.0.1:80=5 10.0.0.2:80=3", true},
		// keepalived keeps a server whose exit 2 set weight 0 in the table
		// at weight 0 (alive: ipvs_cmd uses real_weight(effective_weight)).
		{"exit 2: in the table at weight 0", vs(1, 0, nil, rs(1, 4), rs(2, 3)), map[string]ServerHealth{"rs1": dyn(0), "rs2": {Up: true}},
			"10.0.0.1:80=0 10.0.0.2:80=3", true},
		{"exit 0 after a dynamic weight: configured weight", vs(1, 0, nil, rs(1, 4)), map[string]ServerHealth{"rs1": {Up: true}},
			"10.0.0.1:80=4", true},
		{"down: removed whatever the weight said", vs(1, 0, nil, rs(1, 4), rs(2, 3)), map[string]ServerHealth{"rs1": {Up: false, Weight: 9, HasWeight: true}, "rs2": {Up: true}},
			"10.0.0.2:80=3", true},
		{"down with inhibit: weight 0", vs(1, 0, nil, rs(1, 4, inhibit)), map[string]ServerHealth{"rs1": {Up: false}},
			"10.0.0.1:80=0", false},
		{"FILE_CHECK delta adds", vs(1, 0, nil, rs(1, 4)), map[string]ServerHealth{"rs1": {Up: true, Delta: 3}},
			"10.0.0.1:80=7", true},
		{"dynamic weight plus delta", vs(1, 0, nil, rs(1, 4)), map[string]ServerHealth{"rs1": {Up: true, Weight: 5, HasWeight: true, Delta: 2}},
			"10.0.0.1:80=7", true},
		{"negative delta clamps at 0", vs(1, 0, nil, rs(1, 4), rs(2, 1)), map[string]ServerHealth{"rs1": {Up: true, Delta: -10}, "rs2": {Up: true}},
			"10.0.0.1:80=0 10.0.0.2:80=1", true},
		{"big delta clamps at 65535", vs(1, 0, nil, rs(1, 65000)), map[string]ServerHealth{"rs1": {Up: true, Delta: 1000}},
			"10.0.0.1:80=65535", true},
		// quorum 4: configured weights 2+2 would meet it; the dynamic
		// weights 0+2 do not, so the sorry server takes over.
		{"dynamic weights count for quorum", vs(4, 0, sorry(), rs(1, 2), rs(2, 2)), map[string]ServerHealth{"rs1": dyn(0), "rs2": {Up: true}},
			"10.0.9.9:80=1", false},
		{"dynamic weights meet quorum", vs(4, 0, sorry(), rs(1, 2), rs(2, 2)), map[string]ServerHealth{"rs1": dyn(5), "rs2": {Up: false}},
			"10.0.0.1:80=5", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab := Desired([]*pb.VirtualServer{tc.vs}, healthOf(tc.health))
			if got := dests(tab.Services[svc80]); got != tc.want {
				t.Errorf("destinations: got %q, want %q", got, tc.want)
			}
			if got := tab.QuorumUp[tc.vs.Name]; got != tc.up {
				t.Errorf("quorum up: got %v, want %v", got, tc.up)
			}
		})
	}
}

// TestNextWeightChange: a weight change alone, the server staying up,
// changes the destination in the next table (keepalived update_svr_wgt ->
// LVS_CMD_EDIT_DEST) and can cross the quorum.
func TestNextWeightChange(t *testing.T) {
	vss := []*pb.VirtualServer{vs(3, 0, sorry(), rs(1, 3))}
	tab := Desired(vss, healthOf(map[string]ServerHealth{"rs1": {Up: true}}))
	if got := dests(tab.Services[svc80]); got != "10.0.0.1:80=3" || !tab.QuorumUp[vss[0].Name] {
		t.Fatalf("start: %q quorum %v", got, tab.QuorumUp[vss[0].Name])
	}
	tab = tab.Next(vss, healthOf(map[string]ServerHealth{"rs1": dyn(8)}))
	if got := dests(tab.Services[svc80]); got != "10.0.0.1:80=8" || !tab.QuorumUp[vss[0].Name] {
		t.Fatalf("weight 8: %q quorum %v", got, tab.QuorumUp[vss[0].Name])
	}
	tab = tab.Next(vss, healthOf(map[string]ServerHealth{"rs1": dyn(1)}))
	if got := dests(tab.Services[svc80]); got != "10.0.9.9:80=1" || tab.QuorumUp[vss[0].Name] {
		t.Fatalf("weight 1 < quorum 3: %q quorum %v, want the sorry server and quorum down", got, tab.QuorumUp[vss[0].Name])
	}
}

// TestNextQuorumSettingChanged: a reload that changes quorum re-decides
// the state with the same live weight (ipwrapper.c init_service_vs ->
// update_quorum_state), with the hysteresis of the state it was in.
func TestNextQuorumSettingChanged(t *testing.T) {
	h := healthOf(map[string]ServerHealth{"rs1": {Up: true}, "rs2": {Up: true}})
	v := vs(2, 0, sorry(), rs(1, 2), rs(2, 2))
	tab := Desired([]*pb.VirtualServer{v}, h)
	if !tab.QuorumUp[v.Name] {
		t.Fatal("live 4, quorum 2: want up")
	}
	raised := vs(5, 0, sorry(), rs(1, 2), rs(2, 2))
	tab = tab.Next([]*pb.VirtualServer{raised}, h)
	if tab.QuorumUp[v.Name] || dests(tab.Services[svc80]) != "10.0.9.9:80=1" {
		t.Fatalf("quorum raised to 5 over live 4: up %v, %q; want lost, the sorry server in", tab.QuorumUp[v.Name], dests(tab.Services[svc80]))
	}
	// Down, quorum 4 hysteresis 1: gaining needs 5; live 4 stays down.
	tab = tab.Next([]*pb.VirtualServer{vs(4, 1, sorry(), rs(1, 2), rs(2, 2))}, h)
	if tab.QuorumUp[v.Name] {
		t.Fatal("down, quorum 4 + hysteresis 1 over live 4: want still down")
	}
	tab = tab.Next([]*pb.VirtualServer{vs(3, 1, sorry(), rs(1, 2), rs(2, 2))}, h)
	if !tab.QuorumUp[v.Name] {
		t.Fatal("down, quorum 3 + hysteresis 1 over live 4: want gained")
	}
}
