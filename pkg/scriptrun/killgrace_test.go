package scriptrun

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestCommandKillGrace: a Command's KillGrace overrides the Runner's (0:
// SIGKILL at once): its script gets SIGTERM at the timeout, and SIGKILL
// KillGrace later if it ignores that (keepalived's MISC_CHECK timeout,
// check_misc.c misc_check_child_thread).
func TestCommandKillGrace(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	got := filepath.Join(dir, "got")
	obeys := writeScript(t, dir, "obeys", "trap 'echo TERM > "+got+"; exit 7' TERM\nwhile :; do sleep 0.05; done")
	ignores := writeScript(t, dir, "ignores", "trap '' TERM\nwhile :; do sleep 0.05; done")
	r, _ := newRunner() // no KillGrace of its own
	res := r.Run(context.Background(), Command{Args: []string{obeys}, Timeout: 300 * time.Millisecond, KillGrace: 5 * time.Second})
	if !res.TimedOut || res.ExitStatus != 7 {
		t.Errorf("obeys SIGTERM: got %+v, want timed out, exit 7 from its TERM trap", res)
	}
	if b, _ := os.ReadFile(got); string(b) != "TERM\n" {
		t.Errorf("script's trap wrote %q", b)
	}
	start := time.Now()
	res = r.Run(context.Background(), Command{Args: []string{ignores}, Timeout: 200 * time.Millisecond, KillGrace: 500 * time.Millisecond})
	took := time.Since(start)
	if !res.TimedOut || res.Signal != syscall.SIGKILL {
		t.Errorf("ignores SIGTERM: got %+v, want timed out and killed by SIGKILL", res)
	}
	if took < 700*time.Millisecond {
		t.Errorf("ignores SIGTERM: ended after %v, before timeout + KillGrace (700ms)", took)
	}
}
