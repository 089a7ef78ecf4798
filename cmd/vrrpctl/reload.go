package main

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/vrrpkit/vrrpkit/pkg/ctlview"
	"github.com/vrrpkit/vrrpkit/pkg/rundir"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// errRefused: the supervisor refused the file; vrrpctl exits 1 after
// printing why.
var errRefused = errors.New("the configuration was refused; the running one stays")

func reloadCmd(g *globals) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "re-read the configuration file and apply it, or show what that would change",
		Long: "reload makes the supervisor re-read its configuration file, as SIGHUP does, and\n" +
			"apply it as the next generation: unchanged instances, checks and IPVS entries\n" +
			"keep their state; changed ones change in place where they can. It prints what\n" +
			"changed. With --dry-run it prints only what would change, and changes nothing.\n" +
			"A file with errors is refused (exit 1) with file:line messages, and the running\n" +
			"configuration stays.",
		Example: "  vrrpctl reload --dry-run\n" +
			"  vrrpctl reload\n" +
			"  vrrpctl reload --dry-run --json | jq '.plan.items[] | select(.op == \"restart\")'",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var resp *pb.ReloadResponse
			// A reload of thousands of instances may take longer than a
			// status call; --timeout still bounds it when set higher.
			timeout := max(g.timeout, 30*time.Second)
			err := callSupervisor(cmd.Context(), rundir.Dir(g.runDir), timeout, "reload", func(ctx context.Context, c pb.SupervisorClient) (err error) {
				resp, err = c.Reload(ctx, &pb.ReloadRequest{DryRun: dryRun})
				return err
			})
			if err != nil {
				return err
			}
			v := ctlview.ReloadFromProto(resp)
			if g.json {
				err = ctlview.WriteReloadJSON(cmd.OutOrStdout(), v)
			} else {
				err = ctlview.WriteReloadText(cmd.OutOrStdout(), v)
			}
			if err == nil && !resp.GetAccepted() {
				err = errRefused
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only print what the reload would change")
	return cmd
}
