package main

import (
	"testing"

	"github.com/vrrpkit/vrrpkit/pkg/ipc"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// TestControlAccessComplete: every Supervisor RPC is in controlAccess, so
// that adding one means deciding whether the status group may call it
// (unlisted ones are root only, which is safe but easy to miss).
func TestControlAccessComplete(t *testing.T) {
	var methods []string
	for _, m := range pb.Supervisor_ServiceDesc.Methods {
		methods = append(methods, m.MethodName)
	}
	for _, s := range pb.Supervisor_ServiceDesc.Streams {
		methods = append(methods, s.StreamName)
	}
	for _, m := range methods {
		if _, ok := controlAccess[m]; !ok {
			t.Errorf("Supervisor.%s is not in controlAccess: add it as ipc.GroupRead (it only reads) or ipc.RootOnly", m)
		}
	}
	if controlAccess["Reload"] != ipc.RootOnly {
		t.Error("Reload must be root only")
	}
}

func TestLookupStatusGroup(t *testing.T) {
	if g, err := lookupStatusGroup(""); g != nil || err != nil {
		t.Errorf(`lookupStatusGroup("") = %v, %v; want none`, g, err)
	}
	if g, err := lookupStatusGroup("no-such-group-vrrpkit"); err == nil {
		t.Errorf("an unknown group resolved to %v", g)
	}
	if g, err := lookupStatusGroup("root"); err == nil {
		t.Errorf("root's group resolved to %v: gid 0 would leave the socket root only", g)
	}
	if runDirMode(nil) != 0o750 || runDirMode(&ipc.Group{Name: "x", GID: 5}) != 0o751 {
		t.Errorf("runDirMode: %o without a group, %o with one", runDirMode(nil), runDirMode(&ipc.Group{GID: 5}))
	}
}
