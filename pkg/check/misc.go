package check

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/scriptrun"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// ScriptRunner runs a MISC_CHECK script. checkerd never forks: the
// supervisor runs scripts as script_user (design.md, "Processes"), and a
// child names the script, never its command line: name is the checker's
// MiscScriptNames entry, which the supervisor resolves in its own copy of
// the running generation (the implementation adds the generation). An
// error means the script was not run (runner unreachable, generation gone).
type ScriptRunner interface {
	RunMisc(ctx context.Context, name string) (scriptrun.Result, error)
}

// MiscKillGrace is keepalived's wait between the SIGTERM a MISC_CHECK
// script gets at misc_timeout and the SIGKILL after it (check_misc.c
// misc_check_child_thread: 2 s); the runner applies it.
const MiscKillGrace = 2 * time.Second

// MiscGrace is how long past misc_timeout a check waits for the runner's
// answer: the runner ends the script (SIGTERM, SIGKILL MiscKillGrace
// later) and says it timed out (Result.TimedOut); the check's own
// deadline only covers a runner that never answers.
const MiscGrace = MiscKillGrace + 2*time.Second

// Misc is MISC_CHECK (keepalived 2.2.7 check/check_misc.c
// misc_check_child_thread): up when the script exits 0; down on any other
// exit, a signal, or misc_timeout (the script's group is then killed).
// With Dynamic (misc_dynamic), an exit of 2..255 is up too, with the real
// server's weight set to exit-2 (0..253); exit 0 restores the configured
// weight, and exit 1 is down.
type Misc struct {
	Runner ScriptRunner
	// Name is the script's name for the runner (MiscScriptNames).
	Name string
	// Path is the command line, for the Reason.
	Path    string
	Timeout time.Duration
	Dynamic bool
	// Last, when set, keeps the last verdict: a run the runner could not
	// make (err from RunMisc: supervisor unreachable, generation gone)
	// repeats it rather than failing the real server, as a vrrp_script
	// keeps its result then (pkg/track). FromSnapshot sets it.
	Last *MiscLast
}

// MiscLast is a MISC_CHECK's last verdict, shared by the copies of one
// Misc. A check suspended and resumed (ha_suspend) may have its canceled
// attempt end while the new one runs, hence the lock.
type MiscLast struct {
	mu sync.Mutex
	r  Result
	ok bool
}

func (l *MiscLast) get() (Result, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r, l.ok
}

func (l *MiscLast) set(r Result) {
	l.mu.Lock()
	l.r, l.ok = r, true
	l.mu.Unlock()
}

// periodFromStart: keepalived schedules a MISC_CHECK's next run
// delay_loop (or delay_before_retry) after the last one started
// (check_misc.c misc_check_child_thread: timer_add_long(last_ran, ...)),
// so a slow script does not stretch the period.
func (Misc) periodFromStart() bool { return true }

// Check runs the script once.
func (m Misc) Check(ctx context.Context) Result {
	if m.Runner == nil {
		return down("MISC_CHECK %q: no script runner", m.Path)
	}
	res, err := m.Runner.RunMisc(ctx, m.Name)
	if err != nil && m.Last != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		if r, ok := m.Last.get(); ok {
			r.Reason = fmt.Sprintf("MISC_CHECK %q not run (%v); as last time: %s", m.Path, err, r.Reason)
			return r
		}
	}
	r := m.verdict(ctx, res, err)
	if m.Last != nil && err == nil {
		m.Last.set(r)
	}
	return r
}

func (m Misc) verdict(ctx context.Context, res scriptrun.Result, err error) Result {
	switch {
	case err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return down("MISC_CHECK %q timed out after %s (no answer from the script runner)", m.Path, m.Timeout)
	case err != nil:
		return down("MISC_CHECK %q not run: %v", m.Path, err)
	case res.Err != nil:
		return down("MISC_CHECK %q could not run: %v", m.Path, res.Err)
	case res.TimedOut:
		// keepalived: "Misc check ... timed out".
		return down("MISC_CHECK %q timed out after %s", m.Path, m.Timeout)
	case res.Signal != 0:
		return down("MISC_CHECK %q failed (due to signal %d)", m.Path, int(res.Signal))
	case res.ExitStatus == 0:
		// With misc_dynamic, exit 0 puts the configured weight back
		// (cur_weight 0): no weight of its own.
		return up("MISC_CHECK %q exited 0", m.Path)
	case m.Dynamic && res.ExitStatus >= 2 && res.ExitStatus <= 255:
		w := res.ExitStatus - 2
		return Result{Up: true, Reason: fmt.Sprintf("MISC_CHECK %q exited %d: weight %d", m.Path, res.ExitStatus, w),
			Weight: int64(w), HasWeight: true, WeightAbsolute: true}
	}
	return down("MISC_CHECK %q failed (exited with status %d)", m.Path, res.ExitStatus)
}

// MiscScriptNames returns, for each checker of rs in order, the name under
// which a MISC_CHECK's script is asked for (RunScriptRequest.name, kind
// SCRIPT_KIND_MISC_CHECK), "" for the other checkers. checkerd and the
// supervisor both compute it from the same snapshot, so this is the one
// definition. A name is the real server's health_id and a digest of the
// checker's settings (its position aside, as Job.Key): a reload that keeps
// a MISC_CHECK running (same Key) keeps its name, so the next run finds the
// script in the new generation too.
func MiscScriptNames(rs *pb.LvsRealServer) []string {
	keys := checkerKeys(rs)
	names := make([]string, len(keys))
	for i, c := range rs.GetCheckers() {
		if c.GetType() != pb.LvsCheckerType_LVS_CHECKER_MISC {
			continue
		}
		sum := sha256.Sum256([]byte(keys[i]))
		names[i] = rs.GetHealthId() + " MISC_CHECK " + hex.EncodeToString(sum[:6])
	}
	return names
}

// checkerKeys are the checkers' settings keys, identical ones numbered
// (#2, #3 ...) so that every key of one real server is distinct.
func checkerKeys(rs *pb.LvsRealServer) []string {
	seen := map[string]int{}
	out := make([]string, 0, len(rs.GetCheckers()))
	for _, c := range rs.GetCheckers() {
		k := settingsKey(c)
		seen[k]++
		if n := seen[k]; n > 1 {
			k += "#" + strconv.Itoa(n)
		}
		out = append(out, k)
	}
	return out
}

// MiscWeight is the weight the misc_dynamic MISC_CHECKs of a real server
// set, as keepalived 2.2.7 computes it (check_misc.c: rs->effective_weight
// is iweight plus each checker's cur_weight, which for a misc_dynamic
// checker up with weight w is w - iweight): one such checker sets the
// weight to w. abs are the up checkers' weights (Result.WeightAbsolute);
// ok is false when there are none, and the configured weight stands.
// FILE_CHECK deltas are not in it (TrackerResult.value carries them).
func MiscWeight(iweight uint32, abs []int64) (w uint32, ok bool) {
	if len(abs) == 0 {
		return 0, false
	}
	sum := int64(iweight)
	for _, a := range abs {
		sum += a - int64(iweight)
	}
	return uint32(min(max(sum, 0), 65535)), true
}

// commandLine shows a script's words as a user would type them: a word
// with blanks or quotes in it single-quoted, for the Reason.
func commandLine(args []string) string {
	words := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		words[i] = a
	}
	return strings.Join(words, " ")
}
