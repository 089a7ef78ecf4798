package main

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vrrpkit/vrrpkit/pkg/ctlview"
	"github.com/vrrpkit/vrrpkit/pkg/rundir"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

func watchCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "watch",
		Short: "print transitions, address changes, health changes and reloads as they happen",
		Long: "watch prints, one line each and in order, every VRRP state transition, virtual\n" +
			"address taken or released, tracker or real-server result that changes, and\n" +
			"reload, as the supervisor hears of them, until interrupted. With --json each line\n" +
			"is a JSON object (README.md, \"vrrpctl watch --json\").",
		Example: "  vrrpctl watch\n" +
			"  vrrpctl watch --json | jq -c 'select(.type == \"transition\")'",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			// No --timeout: a watch lasts until interrupted.
			return callSupervisor(cmd.Context(), rundir.Dir(g.runDir), 0, "watch", func(ctx context.Context, c pb.SupervisorClient) error {
				return watch(ctx, c, out, g.json)
			})
		},
	}
}

func watch(ctx context.Context, c pb.SupervisorClient, out io.Writer, asJSON bool) error {
	stream, err := c.Watch(ctx, &pb.WatchRequest{})
	if err != nil {
		return err
	}
	for {
		ev, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled {
				return nil
			}
			return err
		}
		v := ctlview.WatchFromProto(ev)
		if v == nil {
			continue
		}
		if asJSON {
			err = ctlview.WriteWatchJSON(out, v)
		} else {
			err = ctlview.WriteWatchText(out, v, time.Local)
		}
		if err != nil {
			return err
		}
	}
}
