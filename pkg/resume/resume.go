// Package resume keeps the supervisor's resume record: which VRRP instances
// vrrpd holds as MASTER, followed from vrrpd's event stream (Vrrpd.Events,
// proto/vrrpkit/v1/control.proto). When vrrpd dies, that set goes into the
// next snapshot's resume_master, so the restarted vrrpd resumes those
// instances as master and a vrrpd crash moves no VIP (design.md, "Flows" 5).
package resume

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vrrpkit/vrrpkit/pkg/ipc"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// Record is the last known state of every instance, as vrrpd's event stream
// reports it. It is safe for concurrent use.
type Record struct {
	mu     sync.Mutex
	states map[string]pb.VrrpState
}

// Apply folds one event into the record: a snapshot replaces it (a stream
// starts with one, so a reconnecting follower never replays), a transition
// changes one instance. Address changes do not change the state.
func (r *Record) Apply(ev *pb.VrrpEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch e := ev.GetEvent().(type) {
	case *pb.VrrpEvent_Snapshot:
		r.states = make(map[string]pb.VrrpState, len(e.Snapshot.GetInstances()))
		for _, in := range e.Snapshot.GetInstances() {
			r.states[in.GetName()] = in.GetState()
		}
	case *pb.VrrpEvent_Transition:
		if r.states == nil {
			r.states = map[string]pb.VrrpState{}
		}
		r.states[e.Transition.GetInstance()] = e.Transition.GetTo()
	}
}

// Masters returns the instances in MASTER, sorted.
func (r *Record) Masters() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for name, st := range r.states {
		if st == pb.VrrpState_VRRP_STATE_MASTER {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Summary is a one-line count of instances by state, e.g. "2 instances:
// 1 MASTER, 1 BACKUP" (MASTER first: states in the reverse order of the VrrpState enum), for
// systemd's STATUS= and logs.
func (r *Record) Summary() string {
	r.mu.Lock()
	counts := map[pb.VrrpState]int{}
	for _, st := range r.states {
		counts[st]++
	}
	n := len(r.states)
	r.mu.Unlock()
	if n == 0 {
		return "no instances"
	}
	var parts []string
	states := make([]pb.VrrpState, 0, len(counts))
	for st := range counts {
		states = append(states, st)
	}
	slices.Sort(states)
	for _, st := range slices.Backward(states) {
		parts = append(parts, strconv.Itoa(counts[st])+" "+strings.TrimPrefix(st.String(), "VRRP_STATE_"))
	}
	noun := " instances: "
	if n == 1 {
		noun = " instance: "
	}
	return strconv.Itoa(n) + noun + strings.Join(parts, ", ")
}

// Follower subscribes to vrrpd's events and applies them to a Record.
type Follower struct {
	// Path is vrrpd's socket.
	Path string
	// Record receives every event.
	Record *Record
	// OnEvent, if not nil, is called after each event is applied, from the
	// goroutine that called Run.
	OnEvent func(*pb.VrrpEvent)
	// Logger; nil discards.
	Logger *slog.Logger
	// DialOptions are passed to ipc.Dial.
	DialOptions []grpc.DialOption
	// Retry is the wait before reconnecting after the stream ended; zero
	// means 50 ms. vrrpd's socket is local, so a short wait is cheap, and
	// the record must be current when vrrpd dies.
	Retry time.Duration
}

// Run follows the stream until ctx ends, reconnecting whenever it ends
// (vrrpd restarting its server, or a transient error). The caller owns
// the goroutine that runs it and cancels ctx when the vrrpd process it
// follows is gone.
func (f *Follower) Run(ctx context.Context) {
	log := f.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	retry := f.Retry
	if retry <= 0 {
		retry = 50 * time.Millisecond
	}
	warned := false
	for {
		err := f.once(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := retry
		if status.Code(err) == codes.Unimplemented {
			// A vrrpd without the stream: nothing to follow, and no resume
			// record; say so once and ask rarely.
			if !warned {
				log.Warn("vrrpd has no event stream: no resume record, a vrrpd crash will not resume its masters", "err", err)
				warned = true
			}
			wait = time.Second
		} else {
			log.Debug("vrrpd event stream ended; reconnecting", "err", err, "after", wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (f *Follower) once(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	conn, err := ipc.Dial(dctx, f.Path, f.DialOptions...)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close()
	stream, err := pb.NewVrrpdClient(conn).Events(ctx, &pb.EventsRequest{})
	if err != nil {
		return err
	}
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return errors.New("stream closed by vrrpd")
		}
		if err != nil {
			return err
		}
		f.Record.Apply(ev)
		if f.OnEvent != nil {
			f.OnEvent(ev)
		}
	}
}
