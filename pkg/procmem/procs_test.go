package procmem

import (
	"runtime"
	"testing"
)

// TestApplyProcs: GOMAXPROCS is set to what is wanted, unless the
// environment sets it.
func TestApplyProcs(t *testing.T) {
	orig := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(orig) })
	none := func(string) (string, bool) { return "", false }
	if got := ApplyProcs(1, none); got != 1 || runtime.GOMAXPROCS(0) != 1 {
		t.Fatalf("ApplyProcs(1) = %d, GOMAXPROCS %d; want 1", got, runtime.GOMAXPROCS(0))
	}
	runtime.GOMAXPROCS(2)
	set := func(k string) (string, bool) { return "2", k == "GOMAXPROCS" }
	if got := ApplyProcs(1, set); got != 2 || runtime.GOMAXPROCS(0) != 2 {
		t.Fatalf("with GOMAXPROCS=2 in the environment: ApplyProcs(1) = %d, GOMAXPROCS %d; want 2 kept", got, runtime.GOMAXPROCS(0))
	}
}
