package vmlab

import (
	"os"
	"path/filepath"
	"testing"
)

func TestPVHKernel(t *testing.T) {
	k := findKernel()
	if k == "" {
		t.Skip("no kernel in /boot")
	}
	if _, err := os.Stat(k); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	p, err := pvhKernel(k, dir)
	if err != nil {
		t.Skipf("kernel %s cannot be booted through PVH: %v", k, err)
	}
	if filepath.Dir(p) != dir {
		t.Errorf("vmlinux at %s, want it in %s", p, dir)
	}
	again, err := pvhKernel(k, dir)
	if err != nil || again != p {
		t.Errorf("second call = %s, %v; want the cached %s", again, err, p)
	}
}

func TestBzPayloadRejects(t *testing.T) {
	for _, b := range [][]byte{nil, make([]byte, 0x300)} {
		if _, err := bzPayload(b); err == nil {
			t.Errorf("bzPayload(%d zero bytes) = nil error", len(b))
		}
	}
}
