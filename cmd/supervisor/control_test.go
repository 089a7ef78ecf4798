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
