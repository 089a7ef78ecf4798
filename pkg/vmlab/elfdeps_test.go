package vmlab

import (
	"os"
	"os/exec"
	"path/filepath"
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
	static := BuildGo(t, "github.com/vrrpkit/vrrpkit/pkg/vmlab/internal/ipvsprobe")
	if deps, err := sharedDeps(static); err != nil || len(deps) != 0 {
		t.Errorf("sharedDeps(static Go program) = %v, %v; want none", deps, err)
	}
	script := filepath.Join(t.TempDir(), "s")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if deps, err := sharedDeps(script); err != nil || len(deps) != 0 {
		t.Errorf("sharedDeps(script) = %v, %v; want none", deps, err)
	}
}
