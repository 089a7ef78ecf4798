package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/vrrpkit/vrrpkit/pkg/ctlview"
	"github.com/vrrpkit/vrrpkit/pkg/rundir"
)

func peersCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "peers",
		Short: "show every other router heard on each instance's VRID",
		Long: "peers lists, for every VRRP instance, the other routers heard on its VRID:\n" +
			"address, priority and advert interval from their last advert, when they were\n" +
			"last heard, and adverts of theirs that were dropped, by reason (a password or\n" +
			"interval that differs, a source missing from unicast_peer). An instance that\n" +
			"heard another master while MASTER is flagged first: that is a split brain.",
		Example: "  vrrpctl peers\n" +
			"  vrrpctl peers --json | jq '.vrrp_instances[] | select(.other_master_heard > 0) | .name'",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := fetchStatus(cmd.Context(), rundir.Dir(g.runDir), g.timeout)
			if err != nil {
				return err
			}
			v := ctlview.PeersFromProto(st)
			if g.json {
				return ctlview.WritePeersJSON(cmd.OutOrStdout(), v)
			}
			return ctlview.WritePeersText(cmd.OutOrStdout(), v, time.Now())
		},
	}
}
