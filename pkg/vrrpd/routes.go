package vrrpd

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/vrrpkit/vrrpkit/pkg/netstate"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// Routes adds and removes virtual routes and rules (netstate.Routes). Remove
// takes away only what this process added.
type Routes interface {
	AddRoute(ctx context.Context, r netstate.Route) error
	RemoveRoute(ctx context.Context, r netstate.Route) error
	AddRule(ctx context.Context, r netstate.Rule) error
	RemoveRule(ctx context.Context, r netstate.Rule) error
}

// initVMACRoutes sets the engine's VMAC and route managers from o, or the
// running system's.
func (e *Engine) initVMACRoutes(o Options) {
	e.vmacs, e.routes = o.VMACs, o.Routes
	if e.vmacs == nil {
		e.vmacs = netstate.NewVMACs(e.log)
	}
	if e.routes == nil {
		e.routes = netstate.NewRoutes(nil, e.log)
	}
}

// setRoutes parses the instance's virtual_routes and virtual_rules.
func (in *instance) setRoutes(cfg *pb.VrrpInstance) error {
	in.routes, in.rules = nil, nil
	for _, r := range cfg.GetVirtualRoutes() {
		nr, err := RouteOf(r)
		if err != nil {
			return err
		}
		in.routes = append(in.routes, nr)
	}
	for _, r := range cfg.GetVirtualRules() {
		nr, err := RuleOf(r)
		if err != nil {
			return err
		}
		in.rules = append(in.rules, nr)
	}
	return nil
}

// RouteOf converts a snapshot route (virtual_routes or static_routes). A
// route without "dev" gets none: keepalived lets the kernel choose the
// device from the gateway, and does not default it to the instance's
// interface (vrrp/vrrp_iproute.c alloc_route). A route without no_track
// is marked "proto keepalived", as keepalived marks the routes it tracks.
func RouteOf(r *pb.Route) (netstate.Route, error) {
	at := r.GetDefinedAt()
	dst, err := netip.ParsePrefix(r.GetTo())
	if err != nil {
		if a, aerr := netip.ParseAddr(r.GetTo()); aerr == nil {
			dst, err = a.Prefix(a.BitLen())
		}
	}
	if err != nil {
		return netstate.Route{}, fmt.Errorf("route %q (%s): %w", r.GetTo(), at, err)
	}
	out := netstate.Route{Dst: dst, Type: r.GetType(), Dev: r.GetDev(), Table: int(r.GetTable()),
		Metric: int(r.GetMetric()), Scope: r.GetScope()}
	if !r.GetNoTrack() {
		out.Protocol = netstate.RouteProtoKeepalived
	}
	for _, f := range []struct {
		s   string
		dst *netip.Addr
		w   string
	}{{r.GetVia(), &out.Gw, "via"}, {r.GetSrc(), &out.Src, "src"}} {
		if f.s == "" {
			continue
		}
		a, err := netip.ParseAddr(f.s)
		if err != nil {
			return netstate.Route{}, fmt.Errorf("route %s (%s): %s %q: %w", dst, at, f.w, f.s, err)
		}
		*f.dst = a
	}
	return out, nil
}

// RuleOf converts a snapshot rule (virtual_rules or static_rules).
func RuleOf(r *pb.Rule) (netstate.Rule, error) {
	at := r.GetDefinedAt()
	out := netstate.Rule{IPv6: r.GetIpv6(), Table: int(r.GetTable()), Priority: int(r.GetPriority()),
		Mark: r.GetFwmark(), Mask: r.GetFwmask(), IIF: r.GetIif(), OIF: r.GetOif(), Action: r.GetAction()}
	for _, f := range []struct {
		s   string
		dst *netip.Prefix
		w   string
	}{{r.GetFrom(), &out.From, "from"}, {r.GetTo(), &out.To, "to"}} {
		if f.s == "" || f.s == "all" {
			continue
		}
		p, err := netip.ParsePrefix(f.s)
		if err != nil {
			a, aerr := netip.ParseAddr(f.s)
			if aerr != nil {
				return netstate.Rule{}, fmt.Errorf("rule (%s): %s %q: %w", at, f.w, f.s, err)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		*f.dst = p
	}
	if out.Action == "goto" {
		// The snapshot carries no goto target.
		return netstate.Rule{}, fmt.Errorf("rule (%s): goto is not supported", at)
	}
	return out, nil
}

// changeRoutesLocked adds the instance's virtual routes then rules when it
// becomes master, and removes rules then routes when it leaves master, as
// keepalived does (vrrp/vrrp.c vrrp_state_become_master and
// vrrp_restore_interface: vrrp_handle_iproutes / vrrp_handle_iprules).
func (e *Engine) changeRoutesLocked(in *instance, add bool) {
	if len(in.routes) == 0 && len(in.rules) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), addressTimeout)
	defer cancel()
	if add {
		for _, r := range in.routes {
			if err := e.routes.AddRoute(ctx, r); err != nil {
				e.log.Error("adding virtual route", "instance", in.name(), "route", r.String(), "err", err)
			}
		}
		for _, r := range in.rules {
			if err := e.routes.AddRule(ctx, r); err != nil {
				e.log.Error("adding virtual rule", "instance", in.name(), "rule", r.String(), "err", err)
			}
		}
		return
	}
	for _, r := range in.rules {
		if err := e.routes.RemoveRule(ctx, r); err != nil {
			e.log.Error("removing virtual rule", "instance", in.name(), "rule", r.String(), "err", err)
		}
	}
	for _, r := range in.routes {
		if err := e.routes.RemoveRoute(ctx, r); err != nil {
			e.log.Error("removing virtual route", "instance", in.name(), "route", r.String(), "err", err)
		}
	}
}
