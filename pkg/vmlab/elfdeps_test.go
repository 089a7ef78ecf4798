package vmlab

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func TestSharedDeps(t *testing.T) {
	ls, err := exec.LookPath("ls")
	if err != nil {
		t.Skip("no ls on PATH")
	}
	deps, err := sharedDeps(ls)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(deps, func(p string) bool { return strings.Contains(p, "ld-linux") }) ||
		!slices.ContainsFunc(deps, func(p string) bool { return strings.HasSuffix(p, "/libc.so.6") }) {
		t.Errorf("sharedDeps(%s) = %v, want the loader and libc", ls, deps)
	}
	if deps, err := sharedDeps("/bin/busybox"); err != nil || len(deps) != 0 {
		t.Errorf("sharedDeps(static busybox) = %v, %v; want none", deps, err)
	}
}
