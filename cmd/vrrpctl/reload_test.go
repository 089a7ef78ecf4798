package main

import (
	"context"
	"strings"
	"testing"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// reloadSupervisor answers Reload: refused when the request is not a dry
// run, with a plan otherwise.
type reloadSupervisor struct {
	fakeSupervisor
	got []*pb.ReloadRequest
}

func (f *reloadSupervisor) Reload(_ context.Context, req *pb.ReloadRequest) (*pb.ReloadResponse, error) {
	f.got = append(f.got, req)
	if !req.GetDryRun() {
		return &pb.ReloadResponse{Generation: 4, Errors: []string{"/etc/keepalived/keepalived.conf:12: error: priority: \"lots\" is not a whole number in [1, 255]"}}, nil
	}
	return &pb.ReloadResponse{DryRun: true, Accepted: true, Generation: 5, Plan: &pb.ReloadPlan{InstancesChanged: 1, InstancesUnchanged: 9,
		Items: []*pb.PlanItem{{Section: "instance", Op: "change", Name: "VI_1", Details: []string{"priority: 100 -> 110"}}}}}, nil
}

// TestReload: --dry-run reaches the supervisor and prints the plan (exit
// 0); a refused file prints its file:line errors and exits 1.
func TestReload(t *testing.T) {
	f := &reloadSupervisor{}
	dir := serve(t, f)
	r := runT(t, "reload", "--dry-run", "--run-dir", dir)
	want := "dry run: the configuration would be accepted as generation 5; nothing was changed\n" +
		"instances: 0 added, 0 removed, 1 changed in place, 0 restarted, 9 unchanged\n" +
		"instance           change  VI_1:\n" +
		"                           priority: 100 -> 110\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("reload --dry-run: %v\nwant stdout:\n%s", r, want)
	}
	r = runT(t, "--json", "reload", "--run-dir", dir)
	if r.code != 1 || !strings.Contains(r.stdout, `"accepted": false`) || !strings.Contains(r.stdout, "keepalived.conf:12: error") ||
		!strings.Contains(r.stderr, "refused") {
		t.Errorf("reload of a broken file: %v", r)
	}
	if len(f.got) != 2 || !f.got[0].GetDryRun() || f.got[1].GetDryRun() {
		t.Errorf("requests %v", f.got)
	}
}
