package vmlab

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// guestEnv is set for commands the agent runs, so code can tell it is in
// a vmlab VM.
const guestEnv = "VMLAB_GUEST"

// InVM reports whether this process runs inside a vmlab VM.
func InVM() bool { return os.Getenv(guestEnv) == "1" }

// RequireVM skips the test unless it runs inside a vmlab VM: the mark of a
// test meant to be run there by [RunTestsInVM].
func RequireVM(t testing.TB) {
	t.Helper()
	if !InVM() {
		t.Skip("vmlab: runs inside a VM only (through vmlab.RunTestsInVM)")
	}
}

// RunTestsInVM runs tests of the calling package inside a VM: it builds
// the package's test binary statically (go test -c, CGO_ENABLED=0, in the
// test's working directory, which go test makes the package directory),
// boots a VM from opts with the binary in it, and runs the tests matching
// pattern (-test.run) there with -test.v, logging their output and failing
// t if they fail or none passes. Those tests call [RequireVM] first, so on the host they
// skip; in the VM, they are root on a kernel with opts.Modules, free to
// program IPVS with the same code vrrpd runs. Their working directory in
// the VM is /, without the package's testdata. Inside a VM, RunTestsInVM
// itself skips.
func RunTestsInVM(t *testing.T, opts Options, pattern string) {
	t.Helper()
	if InVM() {
		t.Skip("vmlab: already inside a VM")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("vmlab: the go tool is not on PATH")
	}
	bin := filepath.Join(t.TempDir(), "pkg.test")
	build := exec.Command(goBin, "test", "-c", "-trimpath", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("vmlab: go test -c: %v\n%s", err, out)
	}
	if opts.Binaries == nil {
		opts.Binaries = map[string]string{}
	}
	opts.Binaries["/vmlab/pkg.test"] = bin
	vm := Boot(t, opts)
	timeout := 2 * time.Minute
	if d, ok := t.Deadline(); ok {
		timeout = time.Until(d) - 10*time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r, err := vm.Exec(ctx, Cmd{
		Argv: []string{"/vmlab/pkg.test", "-test.run", pattern, "-test.v", "-test.count=1",
			"-test.timeout", (timeout - 5*time.Second).String()},
		Dir: "/",
	})
	if r != nil {
		for _, l := range strings.Split(strings.TrimRight(string(r.Stdout)+string(r.Stderr), "\n"), "\n") {
			t.Log(l)
		}
	}
	switch {
	case err != nil:
		t.Fatalf("vmlab: tests in the VM: %v", err)
	case r.Exit != 0:
		t.Fatalf("vmlab: tests %q in the VM failed (exit %d %s)", pattern, r.Exit, r.Signal)
	case !strings.Contains(string(r.Stdout), "--- PASS: "):
		// Nothing matched, or all skipped: a guard that proves nothing.
		t.Fatalf("vmlab: no test matching %q passed in the VM", pattern)
	}
}
