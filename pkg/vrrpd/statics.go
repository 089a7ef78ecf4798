package vrrpd

import (
	"context"
	"errors"
	"log/slog"

	"github.com/vrrpkit/vrrpkit/pkg/netstate"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// Static addresses, routes and rules: keepalived's static_ipaddress,
// static_routes and static_rules. They belong to no instance and are held
// whatever the VRRP state: added when a snapshot is applied, reconciled on
// reload, removed at exit (keepalived 2.2.7 vrrp/vrrp_daemon.c: start_vrrp
// adds them with netlink_iplist / netlink_rtlist / netlink_rulelist after
// the instances are set up and before they run; a reload first drops the
// ones no longer configured (clear_diff_static_*); vrrp_terminate_phase1
// removes rules, routes then addresses, after the instances stepped down).
//
// Ownership. keepalived counts a static as its own, and removes it at exit,
// once adding it succeeded, and rtnetlink's EEXIST is success for it
// (core/keepalived_netlink.c netlink_talk returns 0 on EEXIST for
// RTM_NEWADDR / RTM_NEWROUTE; static rules are deleted at start and added
// again). vrrpkit does the same: a static found already present, exactly as
// configured, is adopted, so that a vrrpd restarted after a crash takes over
// what the previous one added without removing and re-adding it (no gap in
// traffic) and still removes it at exit. The price, the same as keepalived's:
// an identical address, route or rule that was there before vrrpkit ever
// started is removed at exit too; a crash restart cannot tell the two
// apart. A route of the same destination, table and metric that differs
// otherwise is an error (netstate.Routes.AddRoute) and is left alone, where
// keepalived would take it over.
//
// An add that fails (no such device, a conflicting route) is logged with
// where the static is defined, and does not fail the apply; the next apply
// (a reload) tries it again, as keepalived's netlink_*list(ADD) retries the
// ones not set.

// RouteAdopter is implemented by a Routes that can record a route or rule
// already in the kernel as added by this process, so that RemoveRoute and
// RemoveRule take it away later: the routes' Addresses.Adopt. Without it, a
// static route or rule found already present is left in place at exit.
type RouteAdopter interface {
	AdoptRoute(r netstate.Route)
	AdoptRule(r netstate.Rule)
}

// static is one static address, route or rule of the running snapshot.
type static[T comparable] struct {
	v  T
	at string // defined_at, for logs ("" unknown: VirtualAddress has none)
	// set: added or adopted by this process, so removed when it goes.
	set bool
}

// staticSet is the running snapshot's statics, in configuration order.
type staticSet struct {
	addrs  []static[netstate.Address]
	routes []static[netstate.Route]
	rules  []static[netstate.Rule]
}

// staticsOf converts the snapshot's statics; one that cannot be converted
// is logged and skipped, as keepalived skips a bad line. Duplicates are
// kept once.
func staticsOf(snap *pb.ConfigSnapshot, log *slog.Logger) staticSet {
	var s staticSet
	for _, va := range snap.GetStaticIpaddress() {
		a, err := toAddress(va, "")
		if err == nil && a.Dev == "" {
			err = errors.New("no dev") // pkg/snapshot gives it default_interface or eth0
		}
		if err != nil {
			log.Error("ignoring static address", "address", va.GetPrefix(), "err", err)
			continue
		}
		s.addrs = appendStatic(s.addrs, a, "")
	}
	for _, r := range snap.GetStaticRoutes() {
		nr, err := RouteOf(r)
		if err != nil {
			log.Error("ignoring static route", "defined_at", r.GetDefinedAt(), "err", err)
			continue
		}
		s.routes = appendStatic(s.routes, nr, r.GetDefinedAt())
	}
	for _, r := range snap.GetStaticRules() {
		nr, err := RuleOf(r)
		if err != nil {
			log.Error("ignoring static rule", "defined_at", r.GetDefinedAt(), "err", err)
			continue
		}
		s.rules = appendStatic(s.rules, nr, r.GetDefinedAt())
	}
	return s
}

func appendStatic[T comparable](list []static[T], v T, at string) []static[T] {
	for _, x := range list {
		if x.v == v {
			return list
		}
	}
	return append(list, static[T]{v: v, at: at})
}

// applyStaticsLocked makes the snapshot's statics the running ones: it
// removes the ones this process holds that are no longer configured (rules,
// routes, then addresses), then adds those it does not hold yet (addresses,
// routes, then rules: a route may use a static address as its source, a
// rule a static route's table).
func (e *Engine) applyStaticsLocked(snap *pb.ConfigSnapshot) {
	want := staticsOf(snap, e.log)
	old := e.statics
	carrySet(old.addrs, want.addrs)
	carrySet(old.routes, want.routes)
	carrySet(old.rules, want.rules)
	s := e.staticOps()
	dropGone(old.rules, want.rules, s.removeRule)
	dropGone(old.routes, want.routes, s.removeRoute)
	dropGone(old.addrs, want.addrs, s.removeAddr)
	addUnset(want.addrs, s.addAddr)
	addUnset(want.routes, s.addRoute)
	addUnset(want.rules, s.addRule)
	e.statics = want
}

// removeStaticsLocked removes every static this process holds, at exit.
func (e *Engine) removeStaticsLocked() {
	s := e.staticOps()
	dropGone(e.statics.rules, nil, s.removeRule)
	dropGone(e.statics.routes, nil, s.removeRoute)
	dropGone(e.statics.addrs, nil, s.removeAddr)
	e.statics = staticSet{}
}

// carrySet marks the wanted statics that the running snapshot holds already.
func carrySet[T comparable](old, want []static[T]) {
	for i := range want {
		for _, o := range old {
			if o.set && o.v == want[i].v {
				want[i].set = true
				break
			}
		}
	}
}

// dropGone removes the held statics of old that want does not list.
func dropGone[T comparable](old, want []static[T], remove func(static[T])) {
	for _, o := range old {
		if !o.set {
			continue
		}
		kept := false
		for _, w := range want {
			if w.v == o.v {
				kept = true
				break
			}
		}
		if !kept {
			remove(o)
		}
	}
}

// addUnset adds the statics not held yet and marks those that took.
func addUnset[T comparable](want []static[T], add func(static[T]) bool) {
	for i := range want {
		if !want[i].set {
			want[i].set = add(want[i])
		}
	}
}

// staticOps are the kernel operations on statics, each bounded by
// addressTimeout and logging its failure.
type staticOps struct{ e *Engine }

func (e *Engine) staticOps() staticOps { return staticOps{e} }

func (s staticOps) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), addressTimeout)
}

func (s staticOps) fail(what string, st string, at string, err error) {
	args := []any{"static", st, "err", err}
	if at != "" {
		args = append(args, "defined_at", at)
	}
	s.e.log.Error(what, args...)
}

func (s staticOps) addAddr(x static[netstate.Address]) bool {
	ctx, cancel := s.ctx()
	defer cancel()
	if err := s.e.addrs.Add(ctx, x.v); err != nil {
		s.fail("adding static address", x.v.String(), x.at, err)
		return false
	}
	s.e.addrs.Adopt(x.v) // ours even if it was there already (see above)
	return true
}

func (s staticOps) removeAddr(x static[netstate.Address]) {
	ctx, cancel := s.ctx()
	defer cancel()
	if err := s.e.addrs.Remove(ctx, x.v); err != nil {
		s.fail("removing static address", x.v.String(), x.at, err)
	}
}

func (s staticOps) addRoute(x static[netstate.Route]) bool {
	ctx, cancel := s.ctx()
	defer cancel()
	if err := s.e.routes.AddRoute(ctx, x.v); err != nil {
		s.fail("adding static route", x.v.String(), x.at, err)
		return false
	}
	if ra, ok := s.e.routes.(RouteAdopter); ok {
		ra.AdoptRoute(x.v)
	}
	return true
}

func (s staticOps) removeRoute(x static[netstate.Route]) {
	ctx, cancel := s.ctx()
	defer cancel()
	if err := s.e.routes.RemoveRoute(ctx, x.v); err != nil {
		s.fail("removing static route", x.v.String(), x.at, err)
	}
}

func (s staticOps) addRule(x static[netstate.Rule]) bool {
	ctx, cancel := s.ctx()
	defer cancel()
	if err := s.e.routes.AddRule(ctx, x.v); err != nil {
		s.fail("adding static rule", x.v.String(), x.at, err)
		return false
	}
	if ra, ok := s.e.routes.(RouteAdopter); ok {
		ra.AdoptRule(x.v)
	}
	return true
}

func (s staticOps) removeRule(x static[netstate.Rule]) {
	ctx, cancel := s.ctx()
	defer cancel()
	if err := s.e.routes.RemoveRule(ctx, x.v); err != nil {
		s.fail("removing static rule", x.v.String(), x.at, err)
	}
}
