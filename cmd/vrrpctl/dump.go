package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/vrrpkit/vrrpkit/pkg/rundir"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// dumpCmds are vrrpctl dump and vrrpctl stats: keepalived's
// /tmp/keepalived.data and /tmp/keepalived.stats (what SIGUSR1 and SIGUSR2
// make the supervisor write), printed without any file.
func dumpCmds(g *globals) []*cobra.Command {
	return []*cobra.Command{
		dumpCmd(g, "dump", pb.DumpKind_DUMP_KIND_DATA,
			"print the state as keepalived's /tmp/keepalived.data (SIGUSR1)",
			"dump prints what keepalived writes to /tmp/keepalived.data on SIGUSR1, in its\n"+
				"layout: global definitions, every VRRP instance, the sockets and the\n"+
				"interfaces. The supervisor writes the same text to that file on SIGUSR1.\n"+
				"For scripts, vrrpctl status --json is the stable form.",
			"  vrrpctl dump | grep -E 'VRRP Instance|State ='"),
		dumpCmd(g, "stats", pb.DumpKind_DUMP_KIND_STATS,
			"print the counters as keepalived's /tmp/keepalived.stats (SIGUSR2)",
			"stats prints what keepalived writes to /tmp/keepalived.stats on SIGUSR2: each\n"+
				"instance's adverts, master transitions, packet and authentication errors\n"+
				"and priority 0 adverts. The supervisor writes the same text to that file on\n"+
				"SIGUSR2.",
			"  vrrpctl stats"),
	}
}

func dumpCmd(g *globals, use string, kind pb.DumpKind, short, long, example string) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Long: long, Example: example,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var resp *pb.DumpResponse
			err := callSupervisor(cmd.Context(), rundir.Dir(g.runDir), g.timeout, use, func(ctx context.Context, c pb.SupervisorClient) (err error) {
				resp, err = c.Dump(ctx, &pb.DumpRequest{Kind: kind})
				return err
			})
			if err != nil {
				return err
			}
			_, err = io.WriteString(cmd.OutOrStdout(), resp.GetText())
			return err
		},
	}
}
