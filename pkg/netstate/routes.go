package netstate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// RouteProtoKeepalived is RTPROT_KEEPALIVED (18, /etc/iproute2/rt_protos):
// keepalived marks the routes it tracks with it (vrrp/vrrp_iproute.c
// alloc_route: a route without no_track gets "protocol keepalived").
const RouteProtoKeepalived = 18

// Route is one route, described like the arguments of "ip route add"
// (ip-route(8)).
type Route struct {
	// Dst is the destination prefix; 0.0.0.0/0 or ::/0 for "default".
	Dst netip.Prefix
	// Type is "" or "unicast", "blackhole", "unreachable", "prohibit" or
	// "throw".
	Type string
	// Gw is the gateway ("via"), if any.
	Gw netip.Addr
	// Src is the preferred source address, if any.
	Src netip.Addr
	// Dev is the output interface; "" lets the kernel find it from Gw.
	Dev string
	// Table is the routing table; 0 means main.
	Table int
	// Metric is the route's priority (RTA_PRIORITY).
	Metric int
	// Scope as in [Address.Scope]; "" lets the kernel choose.
	Scope string
	// Protocol is the routing protocol (RTM_PROTOCOL); 0 means boot, as
	// with "ip route add".
	Protocol int
}

// String formats r like "ip route add" arguments.
func (r Route) String() string {
	var b strings.Builder
	if r.Type != "" && r.Type != "unicast" {
		b.WriteString(r.Type + " ")
	}
	b.WriteString(r.Dst.String())
	if r.Gw.IsValid() {
		b.WriteString(" via " + r.Gw.String())
	}
	if r.Dev != "" {
		b.WriteString(" dev " + r.Dev)
	}
	if r.Src.IsValid() {
		b.WriteString(" src " + r.Src.String())
	}
	if r.Table != 0 {
		fmt.Fprintf(&b, " table %d", r.Table)
	}
	if r.Metric != 0 {
		fmt.Fprintf(&b, " metric %d", r.Metric)
	}
	if r.Scope != "" {
		b.WriteString(" scope " + r.Scope)
	}
	if r.Protocol != 0 {
		fmt.Fprintf(&b, " proto %d", r.Protocol)
	}
	return b.String()
}

var routeTypes = map[string]int{
	"": unix.RTN_UNICAST, "unicast": unix.RTN_UNICAST, "blackhole": unix.RTN_BLACKHOLE,
	"unreachable": unix.RTN_UNREACHABLE, "prohibit": unix.RTN_PROHIBIT, "throw": unix.RTN_THROW,
}

func (r Route) check() error {
	if !r.Dst.IsValid() {
		return errors.New("invalid or missing destination")
	}
	if _, ok := routeTypes[r.Type]; !ok {
		return fmt.Errorf("route type %q: want unicast, blackhole, unreachable, prohibit or throw", r.Type)
	}
	is4 := r.Dst.Addr().Is4()
	for _, a := range []netip.Addr{r.Gw, r.Src} {
		if a.IsValid() && a.Is4() != is4 {
			return fmt.Errorf("%s is not of the family of %s", a, r.Dst)
		}
	}
	if r.Scope != "" {
		if _, err := parseScope(r.Scope); err != nil {
			return err
		}
	}
	if r.Table < 0 || r.Metric < 0 || r.Protocol < 0 || r.Protocol > 255 {
		return errors.New("negative table or metric, or protocol out of range")
	}
	return nil
}

// toNetlink converts a checked Route; devIndex is Dev's index (0 none).
func (r Route) toNetlink(devIndex int) *netlink.Route {
	dst := r.Dst.Masked()
	n := &netlink.Route{
		LinkIndex: devIndex,
		Dst:       &net.IPNet{IP: dst.Addr().AsSlice(), Mask: net.CIDRMask(dst.Bits(), dst.Addr().BitLen())},
		Type:      routeTypes[r.Type],
		Table:     r.Table,
		Priority:  r.Metric,
		Protocol:  netlink.RouteProtocol(r.Protocol),
		Family:    netlink.FAMILY_V6,
	}
	if dst.Addr().Is4() {
		n.Family = netlink.FAMILY_V4
	}
	if r.Gw.IsValid() {
		n.Gw = r.Gw.AsSlice()
	}
	if r.Src.IsValid() {
		n.Src = r.Src.AsSlice()
	}
	if r.Scope != "" {
		s, _ := parseScope(r.Scope)
		n.Scope = netlink.Scope(s)
	} else if !r.Gw.IsValid() && n.Type == unix.RTN_UNICAST && devIndex != 0 {
		// What "ip route add PREFIX dev D" picks for a route without a
		// gateway (ip-route(8): scope link for unicast without gateway).
		n.Scope = netlink.SCOPE_LINK
	}
	return n
}

// Rule is one policy routing rule, described like the arguments of "ip
// rule add" (ip-rule(8)).
type Rule struct {
	// IPv6 selects the family when neither From nor To is set.
	IPv6 bool
	From netip.Prefix
	To   netip.Prefix
	// Table is the table looked up ("lookup"); 0 with Action "" is an
	// error.
	Table int
	// Priority is the preference; 0 lets the kernel choose.
	Priority int
	// Mark and Mask: fwmark M/MASK (Mask 0 means all ones when Mark set).
	Mark, Mask uint32
	IIF, OIF   string
	// Action is "" (lookup Table), "blackhole", "unreachable", "prohibit"
	// or "goto" (to the rule of preference Goto).
	Action string
	Goto   int
}

// String formats r like "ip rule add" arguments.
func (r Rule) String() string {
	var b strings.Builder
	if r.Priority != 0 {
		fmt.Fprintf(&b, "pref %d ", r.Priority)
	}
	b.WriteString("from ")
	if r.From.IsValid() {
		b.WriteString(r.From.String())
	} else {
		b.WriteString("all")
	}
	if r.To.IsValid() {
		b.WriteString(" to " + r.To.String())
	}
	if r.Mark != 0 {
		fmt.Fprintf(&b, " fwmark %#x", r.Mark)
		if r.Mask != 0 {
			fmt.Fprintf(&b, "/%#x", r.Mask)
		}
	}
	if r.IIF != "" {
		b.WriteString(" iif " + r.IIF)
	}
	if r.OIF != "" {
		b.WriteString(" oif " + r.OIF)
	}
	switch r.Action {
	case "":
		fmt.Fprintf(&b, " lookup %d", r.Table)
	case "goto":
		fmt.Fprintf(&b, " goto %d", r.Goto)
	default:
		b.WriteString(" " + r.Action)
	}
	if r.IPv6 {
		b.WriteString(" (inet6)")
	}
	return b.String()
}

var ruleActions = map[string]uint8{
	"": unix.FR_ACT_TO_TBL, "blackhole": unix.FR_ACT_BLACKHOLE, "unreachable": unix.FR_ACT_UNREACHABLE,
	"prohibit": unix.FR_ACT_PROHIBIT, "goto": unix.FR_ACT_GOTO,
}

// normalize checks r and sets IPv6 from its prefixes.
func (r Rule) normalize() (Rule, error) {
	if _, ok := ruleActions[r.Action]; !ok {
		return r, fmt.Errorf("rule action %q: want blackhole, unreachable, prohibit or goto", r.Action)
	}
	fam := 0
	for _, p := range []netip.Prefix{r.From, r.To} {
		if !p.IsValid() {
			continue
		}
		f := 6
		if p.Addr().Is4() {
			f = 4
		}
		if fam != 0 && fam != f {
			return r, errors.New("from and to are of different families")
		}
		fam = f
	}
	if fam != 0 {
		r.IPv6 = fam == 6
	}
	if r.Action == "" && r.Table == 0 {
		return r, errors.New("no table to look up")
	}
	if r.Action == "goto" && r.Goto <= 0 {
		return r, errors.New("goto without a target preference")
	}
	if r.Table < 0 || r.Priority < 0 {
		return r, errors.New("negative table or priority")
	}
	return r, nil
}

func (r Rule) toNetlink() *netlink.Rule {
	n := netlink.NewRule()
	n.Family = netlink.FAMILY_V4
	if r.IPv6 {
		n.Family = netlink.FAMILY_V6
	}
	if r.From.IsValid() {
		p := r.From.Masked()
		n.Src = &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
	}
	if r.To.IsValid() {
		p := r.To.Masked()
		n.Dst = &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
	}
	n.Table = r.Table
	if r.Priority != 0 {
		n.Priority = r.Priority
	}
	if r.Mark != 0 {
		n.Mark = r.Mark
		if r.Mask != 0 {
			m := r.Mask
			n.Mask = &m
		}
	}
	n.IifName, n.OifName = r.IIF, r.OIF
	n.Type = ruleActions[r.Action]
	if r.Action == "goto" {
		n.Goto = r.Goto
	}
	return n
}

// Routes adds and removes routes and policy rules in one network namespace
// and remembers which ones it added, with their exact attributes: only
// those are ever removed. A route or rule that was already there when it
// was asked for is not recorded, so it is left in place forever, as
// keepalived leaves what it did not add. It is safe for concurrent use.
type Routes struct {
	h   *netlink.Handle
	log *slog.Logger

	mu     sync.Mutex
	routes map[Route]struct{}
	rules  map[Rule]struct{}
}

// NewRoutes returns a route manager that works through h, or through
// rtnetlink sockets in the calling goroutine's network namespace when h is
// nil. The caller keeps ownership of h. A nil log discards messages.
func NewRoutes(h *netlink.Handle, log *slog.Logger) *Routes {
	if h == nil {
		h = &netlink.Handle{}
	}
	return &Routes{h: h, log: orDiscard(log), routes: map[Route]struct{}{}, rules: map[Rule]struct{}{}}
}

// AddRoute adds r like "ip route add" and records it as added by vrrpkit.
// If the kernel already holds a route with the same key (EEXIST: same
// destination, table, metric and, for IPv6, gateway and device), nothing
// is recorded: if it is the same route it is left as it is, without error;
// if it differs from r, that is an error, and the existing route is not
// touched.
func (m *Routes) AddRoute(ctx context.Context, r Route) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("netstate: add route %s: %w", r, err)
	}
	if err := r.check(); err != nil {
		return fmt.Errorf("netstate: add route %s: %w", r, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	idx, err := m.devIndex(r.Dev)
	if err != nil {
		return fmt.Errorf("netstate: add route %s: %w", r, err)
	}
	nr := r.toNetlink(idx)
	err = m.h.RouteAdd(nr)
	switch {
	case err == nil:
		m.routes[r] = struct{}{}
		m.log.Info("added route", "route", r.String())
		return nil
	case errors.Is(err, unix.EEXIST):
		if _, ours := m.routes[r]; ours {
			return nil
		}
		same, lerr := m.hasRoute(nr)
		if lerr != nil {
			return fmt.Errorf("netstate: add route %s: exists; %w", r, lerr)
		}
		if !same {
			return fmt.Errorf("netstate: add route %s: a different route with the same destination, table and metric exists: %w", r, err)
		}
		m.log.Info("route already present; not ours, it will not be removed", "route", r.String())
		return nil
	default:
		return fmt.Errorf("netstate: add route %s: %w", r, err)
	}
}

// RemoveRoute deletes r if this manager added it, matching every attribute
// it was added with, and forgets it. Otherwise it does nothing. A route
// already gone (ESRCH, or its device gone) is forgotten without error.
func (m *Routes) RemoveRoute(ctx context.Context, r Route) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("netstate: remove route %s: %w", r, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ours := m.routes[r]; !ours {
		m.log.Debug("not removing route that vrrpkit did not add", "route", r.String())
		return nil
	}
	idx, err := m.devIndex(r.Dev)
	if errors.Is(err, ErrLinkNotFound) {
		delete(m.routes, r)
		return nil
	}
	if err != nil {
		return fmt.Errorf("netstate: remove route %s: %w", r, err)
	}
	err = m.h.RouteDel(r.toNetlink(idx))
	switch {
	case err == nil:
		m.log.Info("removed route", "route", r.String())
	case errors.Is(err, unix.ESRCH), errors.Is(err, unix.ENODEV):
		m.log.Debug("route already gone", "route", r.String())
	default:
		return fmt.Errorf("netstate: remove route %s: %w", r, err)
	}
	delete(m.routes, r)
	return nil
}

// OwnedRoutes returns the routes this manager added and has not removed.
func (m *Routes) OwnedRoutes() []Route {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Route, 0, len(m.routes))
	for r := range m.routes {
		out = append(out, r)
	}
	return out
}

// AddRule adds r like "ip rule add" and records it as added by vrrpkit. An
// identical rule already present (EEXIST) is left alone and not recorded.
func (m *Routes) AddRule(ctx context.Context, r Rule) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("netstate: add rule %s: %w", r, err)
	}
	r, err := r.normalize()
	if err != nil {
		return fmt.Errorf("netstate: add rule %s: %w", r, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	err = m.h.RuleAdd(r.toNetlink())
	switch {
	case err == nil:
		m.rules[r] = struct{}{}
		m.log.Info("added rule", "rule", r.String())
		return nil
	case errors.Is(err, unix.EEXIST):
		if _, ours := m.rules[r]; !ours {
			m.log.Info("rule already present; not ours, it will not be removed", "rule", r.String())
		}
		return nil
	default:
		return fmt.Errorf("netstate: add rule %s: %w", r, err)
	}
}

// RemoveRule deletes r if this manager added it and forgets it; otherwise
// it does nothing. A rule already gone (ENOENT) is forgotten without error.
func (m *Routes) RemoveRule(ctx context.Context, r Rule) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("netstate: remove rule %s: %w", r, err)
	}
	r, err := r.normalize()
	if err != nil {
		return fmt.Errorf("netstate: remove rule %s: %w", r, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ours := m.rules[r]; !ours {
		m.log.Debug("not removing rule that vrrpkit did not add", "rule", r.String())
		return nil
	}
	err = m.h.RuleDel(r.toNetlink())
	switch {
	case err == nil:
		m.log.Info("removed rule", "rule", r.String())
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ESRCH):
		m.log.Debug("rule already gone", "rule", r.String())
	default:
		return fmt.Errorf("netstate: remove rule %s: %w", r, err)
	}
	delete(m.rules, r)
	return nil
}

// OwnedRules returns the rules this manager added and has not removed.
func (m *Routes) OwnedRules() []Rule {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Rule, 0, len(m.rules))
	for r := range m.rules {
		out = append(out, r)
	}
	return out
}

func (m *Routes) devIndex(dev string) (int, error) {
	if dev == "" {
		return 0, nil
	}
	l, err := linkByName(m.h, dev)
	if err != nil {
		return 0, fmt.Errorf("dev %s: %w", dev, err)
	}
	return l.Attrs().Index, nil
}

// hasRoute reports whether the kernel holds a route equal to n in what "ip
// route add" sets: destination, table, metric, type, gateway, device and
// preferred source.
func (m *Routes) hasRoute(n *netlink.Route) (bool, error) {
	table := n.Table
	if table == 0 {
		table = unix.RT_TABLE_MAIN
	}
	filter := &netlink.Route{Dst: n.Dst, Table: table}
	var list []netlink.Route
	var err error
	for range dumpRetries {
		list, err = m.h.RouteListFiltered(n.Family, filter, netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return false, fmt.Errorf("list routes: %w", err)
	}
	for _, k := range list {
		if k.Priority == n.Priority && k.Type == n.Type && k.Gw.Equal(n.Gw) &&
			(n.LinkIndex == 0 || k.LinkIndex == n.LinkIndex) && (n.Src == nil || k.Src.Equal(n.Src)) {
			return true, nil
		}
	}
	return false, nil
}

// AdoptRoute records r as added by vrrpkit without touching the kernel, so
// that [Routes.RemoveRoute] will remove it: a restarted vrrpd takes over the
// static routes it finds already in place (keepalived counts an EEXIST as
// its own route). An invalid route is logged and ignored.
func (m *Routes) AdoptRoute(r Route) {
	if err := r.check(); err != nil {
		m.log.Error("cannot adopt route", "route", r.String(), "err", err)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.routes[r] = struct{}{}
}

// AdoptRule records r as added by vrrpkit without touching the kernel, so
// that [Routes.RemoveRule] will remove it. An invalid rule is logged and
// ignored.
func (m *Routes) AdoptRule(r Rule) {
	r, err := r.normalize()
	if err != nil {
		m.log.Error("cannot adopt rule", "rule", r.String(), "err", err)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rules[r] = struct{}{}
}
