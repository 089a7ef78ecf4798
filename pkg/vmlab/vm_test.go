package vmlab_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/vmlab"
)

func TestBootIPVS(t *testing.T) {
	begin := time.Now()
	vm := vmlab.Boot(t, vmlab.Options{Modules: []string{"ip_vs_rr"}})
	t.Logf("boot %v, loaded %v", vm.BootTime, vm.Hello.Loaded)
	out := vm.MustRun("cat", "/proc/net/ip_vs")
	if !strings.Contains(out, "IP Virtual Server version") {
		t.Errorf("/proc/net/ip_vs = %q, want the IPVS header", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := vm.Run(ctx, "sh", "-c", "echo out; echo err >&2; exit 3")
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Stdout) != "out\n" || string(r.Stderr) != "err\n" || r.Exit != 3 {
		t.Errorf("run = %q %q %d", r.Stdout, r.Stderr, r.Exit)
	}
	t.Logf("whole test %v", time.Since(begin))
}
