package vrrpd

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"google.golang.org/grpc"

	"github.com/vrrpkit/vrrpkit/pkg/ipc"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// HealthSink takes checkerd's health events. *Engine is one
// (Engine.ApplyHealth); tests of the engine feed it directly, without a
// follower.
type HealthSink interface {
	ApplyHealth(ev *pb.HealthEvent) bool
}

// HealthFollower follows checkerd's health stream (Checkerd.Health on
// <run-dir>/checkerd.sock) into a HealthSink, reconnecting with backoff
// whenever the stream ends, as resume.Follower does for vrrpd's own
// events. While checkerd is away the sink keeps the last results it had;
// the snapshot that starts each new stream brings it up to date.
type HealthFollower struct {
	// Path is checkerd's socket.
	Path string
	Sink HealthSink
	// Logger; nil discards.
	Logger *slog.Logger
	// DialOptions are passed to ipc.Dial.
	DialOptions []grpc.DialOption
	// MinRetry and MaxRetry bound the wait before reconnecting; it doubles
	// after each failed attempt and starts again from MinRetry once a
	// stream delivered an event. Zero means 100 ms and 5 s.
	MinRetry, MaxRetry time.Duration
}

// Run follows the stream until ctx ends. The caller owns the goroutine
// that runs it.
func (f *HealthFollower) Run(ctx context.Context) {
	log := f.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lo, hi := f.MinRetry, f.MaxRetry
	if lo <= 0 {
		lo = 100 * time.Millisecond
	}
	if hi < lo {
		hi = max(lo, 5*time.Second)
	}
	wait := lo
	for {
		got, err := f.once(ctx)
		if ctx.Err() != nil {
			return
		}
		if got {
			wait = lo
		}
		log.Debug("checkerd health stream ended; keeping the last results and reconnecting", "err", err, "after", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, hi)
	}
}

// once follows one stream; got reports whether it delivered anything.
func (f *HealthFollower) once(ctx context.Context) (got bool, err error) {
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	conn, err := ipc.Dial(dctx, f.Path, f.DialOptions...)
	cancel()
	if err != nil {
		return false, err
	}
	defer conn.Close()
	stream, err := pb.NewCheckerdClient(conn).Health(ctx, &pb.HealthRequest{})
	if err != nil {
		return false, err
	}
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return got, errors.New("stream closed by checkerd")
		}
		if err != nil {
			return got, err
		}
		got = true
		f.Sink.ApplyHealth(ev)
	}
}
