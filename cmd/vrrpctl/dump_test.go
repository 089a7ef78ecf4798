package main

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// dumpSupervisor answers Dump with a text naming the kind asked for.
type dumpSupervisor struct {
	fakeSupervisor
}

func (*dumpSupervisor) Dump(_ context.Context, req *pb.DumpRequest) (*pb.DumpResponse, error) {
	switch req.GetKind() {
	case pb.DumpKind_DUMP_KIND_DATA:
		return &pb.DumpResponse{Text: "------< Global definitions >------\n Router ID = r1\n"}, nil
	case pb.DumpKind_DUMP_KIND_STATS:
		return &pb.DumpResponse{Text: "VRRP Instance: VI_1\n  Advertisements:\n"}, nil
	}
	return nil, status.Error(codes.InvalidArgument, "no kind")
}

// TestDumpStats: vrrpctl dump and vrrpctl stats print the supervisor's
// text as it is, each asking for its own kind; without a supervisor they
// fail as every command does.
func TestDumpStats(t *testing.T) {
	dir := serve(t, &dumpSupervisor{})
	if r := runT(t, "dump", "--run-dir", dir); r.code != 0 || r.stdout != "------< Global definitions >------\n Router ID = r1\n" || r.stderr != "" {
		t.Errorf("vrrpctl dump: %v", r)
	}
	if r := runT(t, "stats", "--run-dir", dir); r.code != 0 || r.stdout != "VRRP Instance: VI_1\n  Advertisements:\n" || r.stderr != "" {
		t.Errorf("vrrpctl stats: %v", r)
	}
	if r := runT(t, "stats", "extra", "--run-dir", dir); r.code != 2 {
		t.Errorf("vrrpctl stats extra: %v, want exit 2", r)
	}
	r := runT(t, "dump", "--run-dir", t.TempDir())
	if r.code != 1 || !strings.Contains(r.stderr, "cannot reach the supervisor") {
		t.Errorf("vrrpctl dump without a supervisor: %v", r)
	}
}
