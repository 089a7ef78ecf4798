package ctlview

import (
	"fmt"
	"io"
	"strings"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// Reload is `vrrpctl reload [--dry-run] --json`.
type Reload struct {
	DryRun     bool        `json:"dry_run"`
	Accepted   bool        `json:"accepted"`
	Generation uint64      `json:"generation"`
	Errors     []string    `json:"errors"`
	Warnings   []string    `json:"warnings"`
	Plan       *ReloadPlan `json:"plan"`
}

// ReloadPlan is pkg/plan's plan: instance counts and one item per change.
type ReloadPlan struct {
	InstancesAdded     uint32     `json:"instances_added"`
	InstancesRemoved   uint32     `json:"instances_removed"`
	InstancesChanged   uint32     `json:"instances_changed"`
	InstancesRestarted uint32     `json:"instances_restarted"`
	InstancesUnchanged uint32     `json:"instances_unchanged"`
	Items              []PlanItem `json:"items"`
}

// PlanItem is one change: section ("instance", "address", "tracker",
// "real_server_checks", "ipvs"), op ("add", "remove", "change",
// "restart"), what, and for changes "field: old -> new" lines.
type PlanItem struct {
	Section string   `json:"section"`
	Op      string   `json:"op"`
	Name    string   `json:"name"`
	Details []string `json:"details"`
}

// ReloadFromProto converts the supervisor's answer.
func ReloadFromProto(r *pb.ReloadResponse) *Reload {
	out := &Reload{DryRun: r.GetDryRun(), Accepted: r.GetAccepted(), Generation: r.GetGeneration(),
		Errors: strs(r.GetErrors()), Warnings: strs(r.GetWarnings())}
	if p := r.GetPlan(); p != nil {
		out.Plan = &ReloadPlan{InstancesAdded: p.GetInstancesAdded(), InstancesRemoved: p.GetInstancesRemoved(),
			InstancesChanged: p.GetInstancesChanged(), InstancesRestarted: p.GetInstancesRestarted(),
			InstancesUnchanged: p.GetInstancesUnchanged(), Items: []PlanItem{}}
		for _, it := range p.GetItems() {
			out.Plan.Items = append(out.Plan.Items, PlanItem{Section: it.GetSection(), Op: it.GetOp(), Name: it.GetName(), Details: strs(it.GetDetails())})
		}
	}
	return out
}

// WriteReloadJSON writes r as indented JSON.
func WriteReloadJSON(w io.Writer, r *Reload) error { return writeJSON(w, r, "the reload") }

// WriteReloadText writes what the reload did (or, dry, would do): the
// verdict, the findings, then the plan one change a line.
func WriteReloadText(w io.Writer, r *Reload) error {
	var b strings.Builder
	switch {
	case !r.Accepted:
		fmt.Fprintf(&b, "configuration refused (%d errors); generation %d keeps running\n", len(r.Errors), r.Generation)
	case r.DryRun:
		fmt.Fprintf(&b, "dry run: the configuration would be accepted as generation %d; nothing was changed\n", r.Generation)
	default:
		fmt.Fprintf(&b, "configuration accepted as generation %d\n", r.Generation)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	for _, e := range r.Warnings {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	if p := r.Plan; p != nil {
		fmt.Fprintf(&b, "instances: %d added, %d removed, %d changed in place, %d restarted, %d unchanged\n",
			p.InstancesAdded, p.InstancesRemoved, p.InstancesChanged, p.InstancesRestarted, p.InstancesUnchanged)
		if len(p.Items) == 0 {
			b.WriteString("nothing else changes\n")
		}
		for _, it := range p.Items {
			fmt.Fprintf(&b, "%-18s %-7s %s", it.Section, it.Op, it.Name)
			switch {
			case len(it.Details) == 1 && (it.Section == "address" || it.Op == "add"):
				fmt.Fprintf(&b, " %s\n", it.Details[0])
			case len(it.Details) > 0:
				b.WriteString(":\n")
				for _, d := range it.Details {
					fmt.Fprintf(&b, "%-26s %s\n", "", d)
				}
			default:
				b.WriteString("\n")
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
