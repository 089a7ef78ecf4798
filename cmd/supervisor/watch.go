package main

// vrrpctl watch: the supervisor republishes what it hears from its
// children (vrrpd's event stream, which it follows anyway, and checkerd's
// health stream, which it follows for this) and its own reloads, to every
// watcher, through one fanout.Hub that never blocks the supervisor.

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vrrpkit/vrrpkit/pkg/vrrpd"
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

// watchHealth is a vrrpd.HealthSink that republishes checkerd's changed
// results to watchers. Snapshots are not changes and are not passed on.
type watchHealth struct{ d *daemon }

func (w watchHealth) ApplyHealth(ev *pb.HealthEvent) bool {
	if ev.GetResult() != nil {
		w.d.publishWatch(&pb.WatchEvent{Event: &pb.WatchEvent_Health{Health: ev}})
	}
	return false
}

// followHealth follows checkerd's health stream for watchers until ctx
// ends, as vrrpd follows it (reconnecting when checkerd restarts).
func (d *daemon) followHealth(ctx context.Context) {
	f := &vrrpd.HealthFollower{Path: d.dir.Checkerd(), Sink: watchHealth{d}, Logger: d.log, DialOptions: []grpc.DialOption{fastRedial}}
	f.Run(ctx)
}
