package check

import (
	"context"
	"fmt"
	"time"
)

// ScriptRunner runs a MISC_CHECK script. checkerd never forks: the
// supervisor runs scripts as script_user (design.md, "Scripts"), so the
// implementation is a gRPC call to it.
type ScriptRunner interface {
	// RunScript runs path (a command line as keepalived splits it) and
	// returns its exit status; timedOut when it was killed at timeout.
	RunScript(ctx context.Context, path string, timeout time.Duration) (exit int, timedOut bool, err error)
}

// Misc is MISC_CHECK: up when the script exits 0. With Dynamic
// (misc_dynamic), exit 1 is down and an exit of 2..255 is up with weight
// exit-2 (check_misc.c misc_check_child_thread). A script killed at
// misc_timeout is down.
type Misc struct {
	Runner  ScriptRunner
	Path    string
	Timeout time.Duration
	Dynamic bool
}

// Check runs the script once.
func (m Misc) Check(ctx context.Context) Result {
	if m.Runner == nil {
		return down("MISC_CHECK %q: no script runner", m.Path)
	}
	code, timedOut, err := m.Runner.RunScript(ctx, m.Path, m.Timeout)
	switch {
	case err != nil:
		return down("MISC_CHECK %q could not run: %v", m.Path, err)
	case timedOut:
		return down("MISC_CHECK %q timed out after %s", m.Path, m.Timeout)
	case code == 0 && m.Dynamic:
		// misc_dynamic exit 0 restores the configured weight.
		return Result{Up: true, Reason: fmt.Sprintf("MISC_CHECK %q exited 0", m.Path), HasWeight: false}
	case code == 0:
		return up("MISC_CHECK %q exited 0", m.Path)
	case m.Dynamic && code >= 2 && code <= 255:
		return Result{Up: true, Reason: fmt.Sprintf("MISC_CHECK %q exited %d: weight %d", m.Path, code, code-2), Weight: int64(code - 2), HasWeight: true, WeightAbsolute: true}
	}
	return down("MISC_CHECK %q exited %d", m.Path, code)
}
