package ctlview

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// WatchEvent is one line of `vrrpctl watch --json`. Type says which fields
// it has:
//
//	transition             instance, from, to, priority, reason
//	address                instance, address, held
//	lower_priority_master  instance, from_address, their_priority, priority
//	health                 kind, name, up, detail (and weight for misc_dynamic)
//	reload                 accepted, errors, plan (as vrrpctl reload --json)
//
// and every one has at and generation.
type WatchEvent struct {
	At         *Time  `json:"at"`
	Type       string `json:"type"`
	Generation uint64 `json:"generation"`

	Instance      string  `json:"instance,omitempty"`
	From          string  `json:"from,omitempty"`
	To            string  `json:"to,omitempty"`
	Priority      *uint32 `json:"priority,omitempty"`
	Reason        string  `json:"reason,omitempty"`
	Address       string  `json:"address,omitempty"`
	Held          *bool   `json:"held,omitempty"`
	FromAddress   string  `json:"from_address,omitempty"`
	TheirPriority *uint32 `json:"their_priority,omitempty"`

	Kind   string  `json:"kind,omitempty"`
	Name   string  `json:"name,omitempty"`
	Up     *bool   `json:"up,omitempty"`
	Detail string  `json:"detail,omitempty"`
	Weight *uint32 `json:"weight,omitempty"`

	Reload *Reload `json:"reload,omitempty"`
}

// WatchFromProto converts one event of Supervisor.Watch; nil for kinds it
// does not know (a newer supervisor's).
func WatchFromProto(ev *pb.WatchEvent) *WatchEvent {
	out := &WatchEvent{At: fromTimestamp(ev.GetAt())}
	u32 := func(v uint32) *uint32 { return &v }
	b := func(v bool) *bool { return &v }
	switch e := ev.GetEvent().(type) {
	case *pb.WatchEvent_Vrrp:
		v := e.Vrrp
		out.Generation = v.GetGeneration()
		if t := v.GetAt(); t != nil {
			out.At = fromTimestamp(t) // when vrrpd did it
		}
		switch x := v.GetEvent().(type) {
		case *pb.VrrpEvent_Transition:
			tr := x.Transition
			out.Type, out.Instance, out.From, out.To = "transition", tr.GetInstance(), State(tr.GetFrom()), State(tr.GetTo())
			out.Priority, out.Reason = u32(tr.GetPriority()), tr.GetReason()
		case *pb.VrrpEvent_Address:
			a := x.Address
			out.Type, out.Instance, out.Address, out.Held = "address", a.GetInstance(), a.GetPrefix(), b(a.GetHeld())
			if d := a.GetDev(); d != "" {
				out.Address += " dev " + d
			}
		case *pb.VrrpEvent_LowerPriorityMaster:
			lp := x.LowerPriorityMaster
			out.Type, out.Instance, out.FromAddress = "lower_priority_master", lp.GetInstance(), lp.GetFrom()
			out.TheirPriority, out.Priority = u32(lp.GetTheirPriority()), u32(lp.GetPriority())
		default:
			return nil
		}
	case *pb.WatchEvent_Health:
		r := e.Health.GetResult()
		if r == nil {
			return nil
		}
		out.Type, out.Generation = "health", e.Health.GetGeneration()
		out.Kind, out.Name, out.Up, out.Detail = TrackerKind(r.GetKind()), r.GetName(), b(r.GetUp()), r.GetDetail()
		if r.Weight != nil {
			out.Weight = u32(r.GetWeight())
		}
	case *pb.WatchEvent_Reload:
		out.Type, out.Generation, out.Reload = "reload", e.Reload.GetGeneration(), ReloadFromProto(e.Reload)
	default:
		return nil
	}
	return out
}

// WriteWatchJSON writes ev as one line of JSON.
func WriteWatchJSON(w io.Writer, ev *WatchEvent) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("writing a watch event as JSON: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteWatchText writes ev as one line, time first (in loc):
//
//	04:20:01.123 VI_1 BACKUP -> MASTER priority 150: master down timer expired
func WriteWatchText(w io.Writer, ev *WatchEvent, loc *time.Location) error {
	var b strings.Builder
	at := "-"
	if ev.At != nil {
		at = ev.At.In(loc).Format("15:04:05.000")
	}
	b.WriteString(at + " ")
	switch ev.Type {
	case "transition":
		fmt.Fprintf(&b, "%s %s -> %s priority %d", ev.Instance, ev.From, ev.To, *ev.Priority)
		if ev.Reason != "" {
			b.WriteString(": " + ev.Reason)
		}
	case "address":
		verb := "released"
		if *ev.Held {
			verb = "took"
		}
		fmt.Fprintf(&b, "%s %s %s", ev.Instance, verb, ev.Address)
	case "lower_priority_master":
		fmt.Fprintf(&b, "%s heard master %s at priority %d (ours %d) and answered it", ev.Instance, ev.FromAddress, *ev.TheirPriority, *ev.Priority)
	case "health":
		state := "down"
		if *ev.Up {
			state = "up"
		}
		fmt.Fprintf(&b, "%s %s %s", ev.Kind, ev.Name, state)
		if ev.Weight != nil {
			fmt.Fprintf(&b, " weight %d", *ev.Weight)
		}
		if ev.Detail != "" {
			b.WriteString(": " + ev.Detail)
		}
	case "reload":
		r := ev.Reload
		if !r.Accepted {
			fmt.Fprintf(&b, "reload refused, generation %d keeps running: %s", r.Generation, strings.Join(r.Errors, "; "))
			break
		}
		fmt.Fprintf(&b, "reload accepted as generation %d", r.Generation)
		if p := r.Plan; p != nil {
			fmt.Fprintf(&b, ": instances %d added, %d removed, %d changed in place, %d restarted; %d other changes",
				p.InstancesAdded, p.InstancesRemoved, p.InstancesChanged, p.InstancesRestarted, otherItems(p))
		}
	default:
		b.WriteString(ev.Type)
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func otherItems(p *ReloadPlan) int {
	n := 0
	for _, it := range p.Items {
		if it.Section != "instance" {
			n++
		}
	}
	return n
}
