package vmlab

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"testing"
)

// BuildGo builds the Go main package pkg (an import path, or a path
// relative to the test's package directory) as a static binary
// (CGO_ENABLED=0), so it runs in the VM's bare initramfs, and returns its
// path under t.TempDir(). The test is skipped when the go tool is missing.
func BuildGo(t testing.TB, pkg string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("vmlab: the go tool is not on PATH")
	}
	out := filepath.Join(t.TempDir(), path.Base(pkg))
	cmd := exec.Command(goBin, "build", "-trimpath", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("vmlab: go build %s: %v\n%s", pkg, err, b)
	}
	return out
}
