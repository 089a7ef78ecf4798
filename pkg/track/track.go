package track

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/vrrpkit/vrrpkit/pkg/scriptrun"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// State is what a tracker says.
type State int

const (
	// StateInit: no result yet (keepalived's SCRIPT_INIT_STATE_INIT). Only
	// a script starts so; instances neither add nor subtract its weight
	// until its first result.
	StateInit State = iota
	StateUp
	StateDown
)

func (s State) String() string {
	switch s {
	case StateInit:
		return "init"
	case StateUp:
		return "up"
	case StateDown:
		return "down"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Key names a tracker: kind and name. Names are unique per kind.
type Key struct {
	Kind pb.TrackerKind
	Name string
}

func (k Key) String() string {
	switch k.Kind {
	case pb.TrackerKind_TRACKER_KIND_SCRIPT:
		return "vrrp_script " + k.Name
	case pb.TrackerKind_TRACKER_KIND_FILE:
		return "vrrp_track_file " + k.Name
	case pb.TrackerKind_TRACKER_KIND_PROCESS:
		return "vrrp_track_process " + k.Name
	}
	return k.Kind.String() + " " + k.Name
}

// Result is a tracker's current result.
type Result struct {
	Key
	State State
	// Value is a track_file's integer (0 when missing or unreadable); 0
	// for the other kinds (a process count is in Detail).
	Value int64
	// Detail is what the last run or read said, for logs and status.
	Detail string
	// Weight, when HasWeight, is the weight a real server's misc_dynamic
	// MISC_CHECKs set (TrackerResult.weight).
	Weight    uint32
	HasWeight bool
}

// same reports whether r and o say the same thing (Detail aside): a change
// of Detail alone is not a transition.
func (r Result) same(o Result) bool {
	return r.State == o.State && r.Value == o.Value && r.HasWeight == o.HasWeight && r.Weight == o.Weight
}

// Proto returns r as the wire's TrackerResult. A tracker in StateInit has
// none (see Snapshot.Proto).
func (r Result) Proto() *pb.TrackerResult {
	p := &pb.TrackerResult{Kind: r.Kind, Name: r.Name, Up: r.State == StateUp, Value: r.Value, Detail: r.Detail}
	if r.HasWeight {
		p.Weight = &r.Weight
	}
	return p
}

// Event is one change of a tracker's result.
type Event struct {
	// Generation running when the result was produced.
	Generation uint64
	At         time.Time
	Result     Result
}

// Snapshot is every tracker's result at one moment.
type Snapshot struct {
	Generation uint64
	At         time.Time
	// Sorted by kind, then name.
	Results []Result
}

// Proto returns the results for the wire. Trackers still in StateInit are
// left out: TrackerResult has no "no result yet", and a tracker absent from
// the snapshot is exactly that to vrrpd (keepalived's instances neither add
// nor subtract an init script's weight).
func (s Snapshot) Proto() *pb.HealthSnapshot {
	out := &pb.HealthSnapshot{}
	for _, r := range s.Results {
		if r.State != StateInit {
			out.Results = append(out.Results, r.Proto())
		}
	}
	return out
}

// ScriptRunner runs a vrrp_script of the given configuration generation by
// name (the supervisor's ScriptRunner service: checkerd never forks). An
// error means the script was not run (runner unreachable, generation not
// the running one); it is logged and not counted as a failure.
type ScriptRunner interface {
	RunScript(ctx context.Context, generation uint64, name string) (scriptrun.Result, error)
}

// Clock is the time source; tests inject a fake one.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer of a Clock.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

// SystemClock is the real clock.
type SystemClock struct{}

func (SystemClock) Now() time.Time { return time.Now() }

func (SystemClock) NewTimer(d time.Duration) Timer { return sysTimer{time.NewTimer(d)} }

type sysTimer struct{ t *time.Timer }

func (t sysTimer) C() <-chan time.Time { return t.t.C }
func (t sysTimer) Stop() bool          { return t.t.Stop() }

// Options configure a Set. Zero values take the defaults.
type Options struct {
	Clock  Clock
	Runner ScriptRunner
	// Proc is where processes are listed; default the real /proc.
	Proc ProcSource
	// ProcInterval is how often /proc is scanned (default 1 s).
	ProcInterval time.Duration
	// FileRecheck is how often watched files are re-read whatever inotify
	// says (default 30 s).
	FileRecheck time.Duration
	// ScriptGrace is how long past a script's timeout checkerd waits for the
	// runner's answer before counting the run as timed out itself (the
	// runner enforces the timeout; this covers a runner that never answers).
	// Default 2 s, keepalived's wait between SIGTERM and SIGKILL.
	ScriptGrace time.Duration
	// RunsAs describes checkerd's user for log hints ("uid 65534 (nobody)").
	RunsAs string
	Log    *slog.Logger
}

// ErrOldGeneration: the snapshot is older than the running one.
var ErrOldGeneration = errors.New("track: snapshot generation is older than the running one")

// ErrClosed: the Set was closed.
var ErrClosed = errors.New("track: set closed")

// InvalidSnapshotError: the snapshot cannot be applied; nothing changed.
type InvalidSnapshotError struct {
	Key       Key
	DefinedAt string
	Err       error
}

func (e *InvalidSnapshotError) Error() string {
	if e.DefinedAt != "" {
		return fmt.Sprintf("%s: %s: %v", e.DefinedAt, e.Key, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Key, e.Err)
}

func (e *InvalidSnapshotError) Unwrap() error { return e.Err }

// ApplyResult says what Apply did to each tracker (Key.String names).
type ApplyResult struct {
	Generation                         uint64
	Added, Removed, Changed, Unchanged []string
}

// Set runs the trackers of the current snapshot. Its methods are safe for
// concurrent use.
type Set struct {
	opts Options
	log  *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	procs  *procScanner

	applyMu sync.Mutex // one Apply at a time, start to finish

	mu       sync.Mutex
	closed   bool
	applied  bool
	gen      uint64
	trackers map[Key]*entry
	results  map[Key]Result
	subs     map[*Subscription]struct{}
}

// entry is one running tracker.
type entry struct {
	cfg    proto.Message // normalised: what decides "unchanged"
	cancel context.CancelFunc
	done   chan struct{} // closed when its goroutine is gone; nil for processes
	proc   *procTracker
}

// NewSet returns an empty Set. Close stops it.
func NewSet(opts Options) *Set {
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
	}
	if opts.Proc == nil {
		opts.Proc = ProcFS("/proc")
	}
	if opts.ProcInterval <= 0 {
		opts.ProcInterval = time.Second
	}
	if opts.FileRecheck <= 0 {
		opts.FileRecheck = 30 * time.Second
	}
	if opts.ScriptGrace <= 0 {
		opts.ScriptGrace = 2 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Set{opts: opts, log: opts.Log, ctx: ctx, cancel: cancel,
		trackers: map[Key]*entry{}, results: map[Key]Result{}, subs: map[*Subscription]struct{}{}}
	s.procs = newProcScanner(s)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.procs.run(ctx)
	}()
	return s
}

// Close stops every tracker and ends every subscription.
func (s *Set) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	for sub := range s.subs {
		sub.end(false)
	}
	s.subs = nil
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// Generation returns the running generation.
func (s *Set) Generation() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// Apply makes snap the running configuration (see the package doc). An
// older generation is refused with ErrOldGeneration; re-applying the running
// generation changes nothing. On error nothing changed.
func (s *Set) Apply(snap *pb.ConfigSnapshot) (ApplyResult, error) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	want, err := desired(snap)
	if err != nil {
		return ApplyResult{}, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ApplyResult{}, ErrClosed
	}
	g := snap.GetGeneration()
	if g != 0 && g < s.gen {
		s.mu.Unlock()
		return ApplyResult{}, fmt.Errorf("%w: %d, running %d", ErrOldGeneration, g, s.gen)
	}
	res := ApplyResult{Generation: g}
	if s.applied && g != 0 && g == s.gen {
		for k := range s.trackers {
			res.Unchanged = append(res.Unchanged, k.String())
		}
		s.mu.Unlock()
		slices.Sort(res.Unchanged)
		return res, nil
	}
	// Results from here on are the new generation's.
	s.gen = g
	s.applied = true
	var stopped []*entry
	for k, e := range s.trackers {
		if _, ok := want[k]; !ok {
			res.Removed = append(res.Removed, k.String())
			stopped = append(stopped, e)
			s.drop(k)
		}
	}
	for k, d := range want {
		old, ok := s.trackers[k]
		switch {
		case ok && proto.Equal(old.cfg, d.cfg):
			res.Unchanged = append(res.Unchanged, k.String())
			continue
		case ok:
			res.Changed = append(res.Changed, k.String())
			stopped = append(stopped, old)
			s.drop(k)
		default:
			res.Added = append(res.Added, k.String())
		}
		s.start(k, d, g)
		// Subscribers learn a new or restarted tracker's first result
		// (scripts in init have none yet; processes get theirs from the
		// scan below).
		if r := s.results[k]; r.State != StateInit {
			s.publishLocked(r)
		}
	}
	s.mu.Unlock()
	// New process trackers get their first count before Apply returns, so
	// the snapshot that follows has them.
	s.procs.scan()
	s.procs.wake()
	// Wait outside the lock: a stopping tracker may be reporting.
	for _, e := range stopped {
		if e.done != nil {
			<-e.done
		}
	}
	for _, l := range []*[]string{&res.Added, &res.Removed, &res.Changed, &res.Unchanged} {
		slices.Sort(*l)
	}
	return res, nil
}

// drop stops tracker k and forgets its result. s.mu is held.
func (s *Set) drop(k Key) {
	e := s.trackers[k]
	e.cancel()
	if e.proc != nil {
		s.procs.remove(e.proc)
	}
	delete(s.trackers, k)
	delete(s.results, k)
}

// start starts the tracker d under k. s.mu is held.
func (s *Set) start(k Key, d wanted, gen uint64) {
	ctx, cancel := context.WithCancel(s.ctx)
	e := &entry{cfg: d.cfg, cancel: cancel}
	s.trackers[k] = e
	rep := func(r Result) { s.report(e, r) }
	switch c := d.cfg.(type) {
	case *pb.VrrpScript:
		st := newScriptState(c)
		s.results[k] = st.snapshot(k, "no result yet")
		if st.state != StateInit {
			s.results[k] = st.snapshot(k, "init_fail")
		}
		e.done = make(chan struct{})
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer close(e.done)
			(&scriptTracker{key: k, cfg: c, st: st, set: s, report: rep}).run(ctx)
		}()
	case *pb.VrrpTrackFile:
		ft := newFileTracker(k, c, s, rep, gen)
		// The first read happens here, so the snapshot that follows the
		// apply already has it (keepalived reads at start, init_track_files).
		s.results[k] = ft.start()
		e.done = make(chan struct{})
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer close(e.done)
			ft.run(ctx)
		}()
	case *pb.VrrpTrackProcess:
		pt := newProcTracker(k, c, rep)
		if !pt.m.full && len(pt.m.name) > maxComm {
			s.log.Warn("process name is longer than a comm can be, so it never matches; use full_command to match argv[0]",
				"vrrp_track_process", k.Name, "process", pt.m.name, "max", maxComm)
		}
		e.proc = pt
		// No result until the first scan, which wake() asks for at once.
		s.results[k] = Result{Key: k, State: StateInit, Detail: "not scanned yet"}
		s.procs.add(pt)
	}
}

// report records r from tracker e and tells subscribers if it changed.
func (s *Set) report(e *entry, r Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.trackers[r.Key] != e {
		return // stopped or replaced meanwhile
	}
	old := s.results[r.Key]
	s.results[r.Key] = r
	if old.same(r) {
		return
	}
	s.publishLocked(r)
}

// publishLocked sends r to every subscriber. s.mu is held.
func (s *Set) publishLocked(r Result) {
	ev := Event{Generation: s.gen, At: s.opts.Clock.Now(), Result: r}
	for sub := range s.subs {
		select {
		case sub.c <- ev:
		default:
			sub.end(true)
			delete(s.subs, sub)
		}
	}
}

// Snapshot returns every tracker's current result.
func (s *Set) Snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshotLocked()
}

func (s *Set) snapshotLocked() Snapshot {
	snap := Snapshot{Generation: s.gen, At: s.opts.Clock.Now()}
	for _, r := range s.results {
		snap.Results = append(snap.Results, r)
	}
	slices.SortFunc(snap.Results, func(a, b Result) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
	})
	return snap
}

// subBuffer is how many changes a subscriber may lag behind before it is
// cut off (it then resubscribes and gets a fresh snapshot).
const subBuffer = 256

// Subscription is a stream of changes after a snapshot.
type Subscription struct {
	// C delivers the changes in order; it is closed when the subscription
	// ends (Close, Set.Close, or the reader fell behind: Overflowed).
	C          <-chan Event
	c          chan Event
	s          *Set
	overflowed bool
	ended      bool
}

// Subscribe returns the current snapshot and the changes after it, with
// none missed nor repeated.
func (s *Set) Subscribe() (Snapshot, *Subscription) {
	c := make(chan Event, subBuffer)
	sub := &Subscription{C: c, c: c, s: s}
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := s.snapshotLocked()
	if s.closed {
		sub.end(false)
		return snap, sub
	}
	s.subs[sub] = struct{}{}
	return snap, sub
}

// end closes the channel. s.mu is held.
func (sub *Subscription) end(overflow bool) {
	if sub.ended {
		return
	}
	sub.ended = true
	sub.overflowed = overflow
	close(sub.c)
}

// Overflowed reports whether the subscription ended because its reader
// fell behind.
func (sub *Subscription) Overflowed() bool {
	sub.s.mu.Lock()
	defer sub.s.mu.Unlock()
	return sub.overflowed
}

// Close ends the subscription.
func (sub *Subscription) Close() {
	sub.s.mu.Lock()
	defer sub.s.mu.Unlock()
	if sub.s.subs != nil {
		delete(sub.s.subs, sub)
	}
	sub.end(false)
}

// wanted is one tracker of a snapshot.
type wanted struct {
	cfg proto.Message
}

// desired validates snap's trackers and returns them normalised: the fields
// that do not change what checkerd computes (defined_at; weights, which
// vrrpd applies) are cleared, so moving a block or changing a weight does
// not restart it.
func desired(snap *pb.ConfigSnapshot) (map[Key]wanted, error) {
	out := map[Key]wanted{}
	add := func(k Key, at string, m proto.Message, check error) error {
		if _, dup := out[k]; dup {
			return &InvalidSnapshotError{Key: k, DefinedAt: at, Err: errors.New("defined twice")}
		}
		if check != nil {
			return &InvalidSnapshotError{Key: k, DefinedAt: at, Err: check}
		}
		out[k] = wanted{cfg: m}
		return nil
	}
	for _, c := range snap.GetScripts() {
		n := proto.Clone(c).(*pb.VrrpScript)
		n.DefinedAt, n.Weight, n.WeightReverse = "", 0, false
		var err error
		if c.GetName() == "" {
			err = errors.New("no name")
		}
		if e := add(Key{pb.TrackerKind_TRACKER_KIND_SCRIPT, c.GetName()}, c.GetDefinedAt(), n, err); e != nil {
			return nil, e
		}
	}
	for _, c := range snap.GetTrackFiles() {
		n := proto.Clone(c).(*pb.VrrpTrackFile)
		n.DefinedAt, n.Weight, n.WeightReverse = "", 0, false
		var err error
		if c.GetPath() == "" {
			err = errors.New("no file")
		}
		if e := add(Key{pb.TrackerKind_TRACKER_KIND_FILE, c.GetName()}, c.GetDefinedAt(), n, err); e != nil {
			return nil, e
		}
	}
	for _, c := range snap.GetTrackProcesses() {
		n := proto.Clone(c).(*pb.VrrpTrackProcess)
		n.DefinedAt, n.Weight, n.WeightReverse = "", 0, false
		var err error
		if len(c.GetProcess()) == 0 || c.GetProcess()[0] == "" {
			err = errors.New("no process name")
		}
		if e := add(Key{pb.TrackerKind_TRACKER_KIND_PROCESS, c.GetName()}, c.GetDefinedAt(), n, err); e != nil {
			return nil, e
		}
	}
	return out, nil
}
