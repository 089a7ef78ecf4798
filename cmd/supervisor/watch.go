package main

// vrrpctl watch: the supervisor republishes what it hears from its
// children (vrrpd's event stream, which it follows anyway, and checkerd's
// health stream, which it follows for this) and its own reloads, to every
// watcher, through one fanout.Hub that never blocks the supervisor.

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vrrpkit/vrrpkit/pkg/ipc"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// watchBuffer is how far a watcher may fall behind before it is cut off: a
// failover of a few hundred instances, each a transition and its addresses.
const watchBuffer = 1024

func (d *daemon) publishWatch(ev *pb.WatchEvent) {
	if d.watch != nil {
		ev.At = timestamppb.Now()
		d.watch.Publish(ev)
	}
}

// Watch streams the hub to one watcher until it goes or falls behind.
func (c *control) Watch(_ *pb.WatchRequest, stream grpc.ServerStreamingServer[pb.WatchEvent]) error {
	sub := c.d.watch.Subscribe()
	defer sub.Close()
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case ev, ok := <-sub.C:
			if !ok {
				if sub.Lagged() {
					return status.Errorf(codes.ResourceExhausted, "watcher fell more than %d events behind; watch again", watchBuffer)
				}
				return status.Error(codes.Unavailable, "the supervisor is stopping")
			}
			if err := stream.Send(ev); err != nil {
				return err
			}
		}
	}
}

// followHealth republishes checkerd's changed results until ctx ends,
// reconnecting (checkerd restarts) with a short backoff. Snapshots are not
// changes and are not passed on.
func (d *daemon) followHealth(ctx context.Context) {
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := d.followHealthOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > 10*time.Second {
			delay = 100 * time.Millisecond // it was up a while: not a crash loop
		}
		d.log.Debug("checkerd health stream for watchers ended; reconnecting", "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

func (d *daemon) followHealthOnce(ctx context.Context) error {
	conn, err := ipc.Dial(ctx, d.dir.Checkerd(), fastRedial)
	if err != nil {
		return err
	}
	defer conn.Close()
	stream, err := pb.NewCheckerdClient(conn).Health(ctx, &pb.HealthRequest{})
	if err != nil {
		return err
	}
	for {
		ev, err := stream.Recv()
		if err != nil {
			return err
		}
		if ev.GetResult() != nil {
			d.publishWatch(&pb.WatchEvent{Event: &pb.WatchEvent_Health{Health: ev}})
		}
	}
}
