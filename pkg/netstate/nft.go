package netstate

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// DefaultNFTTable is the name of the nftables tables vrrpkit creates. It is
// deliberately not keepalived's default ("keepalived"): a keepalived on the
// same host or in the same namespace (a migration, an interop test) keeps
// its own tables, and neither daemon deletes the other's at start.
const DefaultNFTTable = "vrrpkit"

// DefaultNFTPriority is the priority of the base chains: keepalived's
// default for nftables_priority (core/global_data.c), one before the
// "filter" priority, so the drops happen before a host firewall accepts
// the traffic.
const DefaultNFTPriority int32 = -1

// nftMarker is the comment on the input chain's drop rule of every table
// vrrpkit creates. It tells a stale table of a crashed vrrpkit (replaced at
// start) from a table of the same name that someone else made (never
// touched). The nftables library can neither set a table's comment nor read
// a set's back; a rule's it can.
const nftMarker = "vrrpkit no_accept; managed by vrrpkit, do not edit"

// ErrNFTTableNotOurs is wrapped by the error of [NewNoAccept] when a table
// with the configured name exists but was not created by vrrpkit.
var ErrNFTTableNotOurs = errors.New("nftables table exists and was not created by vrrpkit")

// Set and chain names, as keepalived 2.2.7 names them
// (vrrp/vrrp_nftables.c), so that "nft list ruleset" reads the same.
const (
	nftSetVIPs       = "vips"
	nftSetLL         = "vips_link_local"
	nftSetLLName     = "vips_link_local_name"
	nftSetND         = "neighbor-discovery"
	nftChainIn       = "in"
	nftChainOut      = "out"
	nftChainInLL     = "in_link_local"
	nftChainOutLL    = "out_link_local"
	nftSetVMACMap    = "vmac_map"
	nftSetVMACSet    = "vmac_set"
	icmpv6NeighSolic = 135 // RFC 4861 §4.3
	icmpv6NeighAdv   = 136 // RFC 4861 §4.4
	icmpv6RouterSol  = 133 // RFC 4861 §4.1
	icmpv6MLD2Report = 143 // RFC 3810 §5.2
	// metaKeyOIFKIND is NFT_META_OIFKIND of linux/netfilter/nf_tables.h
	// (the output interface's rtnl_link_ops kind), which the nftables
	// library has no name for.
	metaKeyOIFKIND expr.MetaKey = 27
)

// NoAcceptOptions configures [NewNoAccept]. The zero value is keepalived's
// default configuration ("nftables" alone in global_defs), with the table
// named [DefaultNFTTable]; Netns must be set (netns.None() for the
// caller's namespace: a zero NsHandle is fd 0, which counts as open).
type NoAcceptOptions struct {
	// Netns is the network namespace to work in; netns.None() means the
	// caller's. The caller keeps ownership; NewNoAccept
	// keeps a duplicate.
	Netns netns.NsHandle
	// Table names both tables (family ip and family ip6). Empty means
	// [DefaultNFTTable]. keepalived.conf(5): "TABLENAME must not exist, and
	// must be different for each instance of keepalived running in the same
	// network namespace"; the same holds for vrrpkit daemons.
	Table string
	// Priority of the input and output base chains (nftables_priority);
	// nil means [DefaultNFTPriority].
	Priority *int32
	// Counters adds a counter to every rule (nftables_counters).
	Counters bool
	// Log receives what changed; nil discards.
	Log *slog.Logger
}

// BlockedAddr is one address whose traffic [NoAccept] drops.
type BlockedAddr struct {
	// Addr is the VIP (or excluded VIP). An IPv4-mapped IPv6 address is
	// taken as IPv4.
	Addr netip.Addr
	// Iface is the interface the address is configured on. It is used only
	// for IPv6 link-local addresses, which are blocked on that interface
	// alone (keepalived keys them by address and interface); a zone in
	// Addr is used when Iface is empty.
	Iface string
	// ByName keys a link-local address by interface name rather than
	// index (keepalived's vips_link_local_name set), so the rule survives
	// the interface being re-created. keepalived does this when the
	// instance has dont_track_primary, nftables_ifindex is not set and the
	// address is on the instance's interface or has dont_track
	// (vrrp_nftables.c nft_update_ipv6_address). Ignored for other
	// addresses.
	ByName bool
}

func (b BlockedAddr) String() string {
	if b.Addr.Is6() && b.Addr.IsLinkLocalUnicast() {
		s := b.Addr.WithZone("").String() + "%" + b.Iface
		if b.ByName {
			s += " (by name)"
		}
		return s
	}
	return b.Addr.String()
}

// normalize returns b in canonical form: unmapped, zone moved to Iface,
// Iface and ByName cleared where they do not matter.
func (b BlockedAddr) normalize() (BlockedAddr, error) {
	if !b.Addr.IsValid() {
		return b, errors.New("invalid address")
	}
	if z := b.Addr.Zone(); z != "" {
		if b.Iface == "" {
			b.Iface = z
		}
		b.Addr = b.Addr.WithZone("")
	}
	b.Addr = b.Addr.Unmap()
	if !(b.Addr.Is6() && b.Addr.IsLinkLocalUnicast()) {
		b.Iface, b.ByName = "", false
		return b, nil
	}
	if b.Iface == "" {
		return b, errors.New("an IPv6 link-local address needs its interface")
	}
	if len(b.Iface) > unix.IFNAMSIZ-1 {
		return b, fmt.Errorf("interface name %q is longer than %d bytes", b.Iface, unix.IFNAMSIZ-1)
	}
	return b, nil
}

// nftElem is one element of one of the sets: what [NoAccept] records, so
// that it deletes exactly what it added even after the interface of a
// link-local address is gone and its index can no longer be looked up.
type nftElem struct {
	ipv6 bool
	set  string
	key  string // the set key, as bytes
	val  string // the map value, as bytes; "" in a set
}

// elemFor encodes b as the element of the set it belongs in. ifindex is
// the interface index, used for link-local addresses keyed by index.
//
// Concatenated keys are laid out as the kernel compares them: each part
// padded to 4 bytes, the interface index in host byte order (it is what
// "meta iif" loads), the name NUL-padded to IFNAMSIZ (what "meta iifname"
// loads).
func elemFor(b BlockedAddr, ifindex uint32) nftElem {
	if b.Addr.Is4() {
		a := b.Addr.As4()
		return nftElem{set: nftSetVIPs, key: string(a[:])}
	}
	a := b.Addr.As16()
	if !b.Addr.IsLinkLocalUnicast() {
		return nftElem{ipv6: true, set: nftSetVIPs, key: string(a[:])}
	}
	if b.ByName {
		var name [unix.IFNAMSIZ]byte
		copy(name[:], b.Iface)
		return nftElem{ipv6: true, set: nftSetLLName, key: string(a[:]) + string(name[:])}
	}
	var idx [4]byte
	binary.NativeEndian.PutUint32(idx[:], ifindex)
	return nftElem{ipv6: true, set: nftSetLL, key: string(a[:]) + string(idx[:])}
}

// NoAccept enforces keepalived's no_accept mode (RFC 5798 §6.1 Accept_Mode
// false, RFC 3768 §6.4.3) with nftables, as keepalived 2.2.7 does when built
// with nftables (vrrp/vrrp_nftables.c): packets to a blocked address are
// dropped on input and packets from it on output, so a master that does
// not own its VIPs answers ARP and neighbor discovery for them, forwards
// traffic for them, but does not accept it itself.
//
// It creates, on first use of each family, a table of family ip and one of
// family ip6, both named by [NoAcceptOptions.Table], with keepalived's
// chains, sets and rules:
//
//	table ip vrrpkit   { set vips; chain in (hook input) "ip daddr @vips drop";
//	                     chain out (hook output) "ip saddr @vips drop" }
//	table ip6 vrrpkit  { sets vips, neighbor-discovery, vips_link_local[_name];
//	                     chain in: "icmpv6 type @neighbor-discovery accept",
//	                     "ip6 daddr fe80::/10 goto in_link_local",
//	                     "ip6 daddr @vips drop"; chain out likewise with saddr }
//
// VRRP adverts pass: they are sent from the interface's own address (an
// IPv6 link-local one) to the VRRP multicast group or a unicast peer's
// address, none of which is a VIP. IPv6 neighbor solicitations and
// advertisements pass too, so the VIP stays resolvable.
//
// The same tables hold the rules that keep VMACs quiet
// ([NoAccept.QuietVMAC]), as keepalived's do.
//
// Only this value's tables are touched; they are removed by
// [NoAccept.Close]. It is safe for concurrent use.
type NoAccept struct {
	ns       netns.NsHandle // owned duplicate, or not open
	conn     *nftables.Conn
	rt       *netlink.Handle
	table    string
	priority int32
	counters bool
	log      *slog.Logger

	mu      sync.Mutex
	closed  bool
	fam     [2]nftFamily // [0] ip, [1] ip6
	blocked map[BlockedAddr]nftElem
	refs    map[nftElem]int     // elements shared by several BlockedAddr (one global address on two interfaces)
	quiet   map[int]quietRecord // VMACs kept quiet (QuietVMAC), by interface index
}

// nftFamily is what exists in the kernel of one family's table.
type nftFamily struct {
	table *nftables.Table
	sets  map[string]*nftables.Set // the sets created, by name
}

// NewNoAccept prepares no_accept enforcement in the namespace of opts. It
// creates nothing yet, except that it deletes a table of the configured
// name left by an earlier vrrpkit that did not get to remove it (a crash):
// its drops belonged to instances that no longer exist. A table of that
// name that vrrpkit did not create is left alone and is an error wrapping
// [ErrNFTTableNotOurs].
func NewNoAccept(ctx context.Context, opts NoAcceptOptions) (*NoAccept, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("netstate: nftables: %w", err)
	}
	n := &NoAccept{
		table:    cmp.Or(opts.Table, DefaultNFTTable),
		priority: DefaultNFTPriority,
		counters: opts.Counters,
		log:      orDiscard(opts.Log),
		ns:       netns.None(),
		blocked:  make(map[BlockedAddr]nftElem),
		refs:     make(map[nftElem]int),
		quiet:    make(map[int]quietRecord),
	}
	if opts.Priority != nil {
		n.priority = *opts.Priority
	}
	if len(n.table) > 255 {
		return nil, fmt.Errorf("netstate: nftables: table name %q is too long", n.table)
	}
	n.log = n.log.With("table", n.table)
	if opts.Netns.IsOpen() {
		ns, err := dupNetns(opts.Netns)
		if err != nil {
			return nil, fmt.Errorf("netstate: nftables: %w", err)
		}
		n.ns = ns
	}
	fail := func(err error) (*NoAccept, error) {
		n.release()
		return nil, fmt.Errorf("netstate: nftables table %s: %w", n.table, err)
	}
	if err := n.openConn(); err != nil {
		return fail(err)
	}
	var err error
	if n.rt, err = newHandleAt(n.ns); err != nil {
		return fail(fmt.Errorf("rtnetlink handle: %w", err))
	}
	if err := n.removeStale(); err != nil {
		return fail(err)
	}
	return n, nil
}

// openConn opens the lasting nfnetlink socket in the namespace, where it
// stays, as rtnetlink sockets do.
func (n *NoAccept) openConn() error {
	return inNetns(n.ns, func() error {
		c, err := nftables.New(nftables.AsLasting())
		if err != nil {
			return fmt.Errorf("open nfnetlink socket: %w", err)
		}
		n.conn = c
		return nil
	})
}

// connect reopens the connection if an earlier failure dropped it.
func (n *NoAccept) connect() error {
	if n.conn != nil {
		return nil
	}
	return n.openConn()
}

// flush sends the queued transaction. After a failure the connection is
// dropped, to be reopened by the next operation: the library keeps a
// serialization error for every later flush.
func (n *NoAccept) flush() error {
	err := n.conn.Flush()
	if err != nil {
		n.dropConn()
	}
	return err
}

// dropConn discards the connection and whatever is queued on it.
func (n *NoAccept) dropConn() {
	if n.conn != nil {
		n.conn.CloseLasting() //nolint:errcheck // being discarded
		n.conn = nil
	}
}

func familyOf(ipv6 bool) nftables.TableFamily {
	if ipv6 {
		return nftables.TableFamilyIPv6
	}
	return nftables.TableFamilyIPv4
}

func familyName(ipv6 bool) string {
	if ipv6 {
		return "ip6"
	}
	return "ip"
}

// removeStale deletes our tables left by an earlier run, like keepalived's
// check_and_delete_tables, but only after checking they carry our marker.
func (n *NoAccept) removeStale() error {
	var stale []*nftables.Table
	for _, ipv6 := range []bool{false, true} {
		tables, err := n.conn.ListTablesOfFamily(familyOf(ipv6))
		if err != nil {
			return fmt.Errorf("list %s tables: %w", familyName(ipv6), err)
		}
		for _, t := range tables {
			if t.Name != n.table {
				continue
			}
			ours, err := n.isOurs(t)
			if err != nil {
				return err
			}
			if !ours {
				return fmt.Errorf("table %s %s: %w (no rule with vrrpkit's comment in its chain %q); "+
					"remove it or configure another table name", familyName(ipv6), t.Name, ErrNFTTableNotOurs, nftChainIn)
			}
			stale = append(stale, t)
		}
	}
	if len(stale) == 0 {
		return nil
	}
	for _, t := range stale {
		n.conn.DelTable(t)
	}
	if err := n.flush(); err != nil {
		return fmt.Errorf("delete stale tables: %w", err)
	}
	for _, t := range stale {
		n.log.Info("deleted stale nftables table of an earlier vrrpkit", "family", familyName(t.Family == nftables.TableFamilyIPv6))
	}
	return nil
}

func (n *NoAccept) isOurs(t *nftables.Table) (bool, error) {
	rules, err := n.conn.GetRules(t, &nftables.Chain{Name: nftChainIn, Table: t})
	if errors.Is(err, unix.ENOENT) {
		return false, nil // no such chain
	}
	if err != nil {
		return false, fmt.Errorf("list rules of table %s %s: %w", familyName(t.Family == nftables.TableFamilyIPv6), t.Name, err)
	}
	return slices.ContainsFunc(rules, func(r *nftables.Rule) bool {
		c, ok := userdata.GetString(r.UserData, userdata.TypeComment)
		return ok && c == nftMarker
	}), nil
}

// Block makes the kernel drop traffic to and from the addresses, in one
// atomic nftables transaction: either all are blocked or, with an error,
// none is. Addresses already blocked are not an error. The interface of a
// link-local address keyed by index must exist.
func (n *NoAccept) Block(ctx context.Context, addrs ...BlockedAddr) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("netstate: nftables block: %w", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return errors.New("netstate: nftables block: closed")
	}
	if err := n.connect(); err != nil {
		return fmt.Errorf("netstate: nftables block: %w", err)
	}
	type add struct {
		b BlockedAddr
		e nftElem
	}
	var adds []add
	seen := make(map[BlockedAddr]bool)
	for _, b := range addrs {
		nb, err := b.normalize()
		if err != nil {
			return fmt.Errorf("netstate: nftables block %s: %w", b.Addr, err)
		}
		if _, done := n.blocked[nb]; done || seen[nb] {
			continue
		}
		seen[nb] = true
		var ifindex uint32
		if nb.Iface != "" && !nb.ByName {
			l, err := linkByName(n.rt, nb.Iface)
			if err != nil {
				return fmt.Errorf("netstate: nftables block %s: interface %s: %w", nb, nb.Iface, err)
			}
			ifindex = uint32(l.Attrs().Index)
		}
		adds = append(adds, add{nb, elemFor(nb, ifindex)})
	}
	if len(adds) == 0 {
		return nil
	}

	var elems []nftElem
	for _, a := range adds {
		if n.refs[a.e] == 0 { // else the element is there for another BlockedAddr
			elems = append(elems, a.e)
		}
	}
	err := n.addElements(elems)
	if errors.Is(err, unix.ENOENT) {
		// A table of ours was deleted behind our back ("nft flush
		// ruleset", a firewall reload): recreate it, with everything that
		// was blocked in it.
		if lost := n.forgetLostTables(); len(lost) > 0 {
			n.log.Warn("nftables table was deleted by someone else; recreating it", "families", lost)
			elems = append(elems, n.lostElems()...)
			err = n.addElements(elems)
		}
	}
	if err != nil {
		return fmt.Errorf("netstate: nftables block %s: %w", blockedList(adds, func(a add) BlockedAddr { return a.b }), err)
	}
	for _, a := range adds {
		n.blocked[a.b] = a.e
		n.refs[a.e]++
		n.log.Info("blocking traffic to address (no_accept)", "address", a.b.String())
	}
	return nil
}

// addElements adds the elements in one transaction, with the tables,
// chains and sets that do not exist yet. The record of what exists is
// updated only once the kernel accepted it all.
func (n *NoAccept) addElements(elems []nftElem) error {
	if len(elems) == 0 {
		return nil
	}
	if err := n.connect(); err != nil {
		return err
	}
	pending := n.fam
	bySet := make(map[*nftables.Set][]nftables.SetElement)
	var order []*nftables.Set
	for _, e := range elems {
		s, err := n.ensureSet(&pending, e)
		if err != nil {
			n.dropConn()
			return err
		}
		if _, ok := bySet[s]; !ok {
			order = append(order, s)
		}
		el := nftables.SetElement{Key: []byte(e.key)}
		if e.val != "" {
			el.Val = []byte(e.val)
		}
		bySet[s] = append(bySet[s], el)
	}
	for _, s := range order {
		if err := n.conn.SetAddElements(s, bySet[s]); err != nil {
			n.dropConn()
			return err
		}
	}
	if err := n.flush(); err != nil {
		return err
	}
	n.fam = pending
	return nil
}

// forgetLostTables forgets the tables of ours that no longer exist in the
// kernel and returns their families.
func (n *NoAccept) forgetLostTables() []string {
	if err := n.connect(); err != nil {
		return nil
	}
	var lost []string
	for i := range n.fam {
		if n.fam[i].table == nil {
			continue
		}
		tables, err := n.conn.ListTablesOfFamily(familyOf(i == 1))
		if err != nil {
			n.log.Warn("cannot list nftables tables", "family", familyName(i == 1), "error", err)
			continue
		}
		if !slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == n.table }) {
			n.fam[i] = nftFamily{}
			lost = append(lost, familyName(i == 1))
		}
	}
	return lost
}

// Unblock stops dropping traffic of the addresses, in one transaction.
// Addresses that this value did not block are ignored.
func (n *NoAccept) Unblock(ctx context.Context, addrs ...BlockedAddr) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("netstate: nftables unblock: %w", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil // Close removed everything
	}
	if err := n.connect(); err != nil {
		return fmt.Errorf("netstate: nftables unblock: %w", err)
	}
	var gone []BlockedAddr
	dels := make(map[nftElem]bool)
	for _, b := range addrs {
		nb, err := b.normalize()
		if err != nil {
			return fmt.Errorf("netstate: nftables unblock %s: %w", b.Addr, err)
		}
		e, ok := n.blocked[nb]
		if !ok || slices.Contains(gone, nb) {
			continue
		}
		gone = append(gone, nb)
		dels[e] = true
	}
	if len(gone) == 0 {
		return nil
	}
	// An element stays while another BlockedAddr still needs it.
	left := make(map[nftElem]int)
	for _, b := range gone {
		left[n.blocked[b]]++
	}
	bySet := make(map[*nftables.Set][]nftables.SetElement)
	var order []*nftables.Set
	for e := range dels {
		if n.refs[e] > left[e] {
			continue
		}
		s := n.fam[famIndex(e.ipv6)].sets[e.set]
		if _, ok := bySet[s]; !ok {
			order = append(order, s)
		}
		bySet[s] = append(bySet[s], nftables.SetElement{Key: []byte(e.key)})
	}
	if err := n.deleteElements(order, bySet); err != nil {
		return fmt.Errorf("netstate: nftables unblock %s: %w", blockedList(gone, func(b BlockedAddr) BlockedAddr { return b }), err)
	}
	for _, b := range gone {
		e := n.blocked[b]
		delete(n.blocked, b)
		if n.refs[e]--; n.refs[e] <= 0 {
			delete(n.refs, e)
		}
		n.log.Info("no longer blocking traffic to address", "address", b.String())
	}
	return nil
}

// deleteElements deletes the elements in one transaction. If the kernel
// refuses it because an element is already gone (someone edited our
// table), each element is deleted on its own, and the missing ones are
// taken as deleted.
func (n *NoAccept) deleteElements(order []*nftables.Set, bySet map[*nftables.Set][]nftables.SetElement) error {
	if len(order) == 0 {
		return nil
	}
	for _, s := range order {
		if err := n.conn.SetDeleteElements(s, bySet[s]); err != nil {
			n.dropConn()
			return err
		}
	}
	err := n.flush()
	if err == nil || !errors.Is(err, unix.ENOENT) {
		return err
	}
	for _, s := range order {
		for _, el := range bySet[s] {
			if err := n.connect(); err != nil {
				return err
			}
			if err := n.conn.SetDeleteElements(s, []nftables.SetElement{el}); err != nil {
				n.dropConn()
				return err
			}
			if err := n.flush(); err != nil && !errors.Is(err, unix.ENOENT) {
				return err
			}
		}
	}
	return nil
}

// Blocked returns the addresses blocked now, sorted.
func (n *NoAccept) Blocked() []BlockedAddr {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]BlockedAddr, 0, len(n.blocked))
	for b := range n.blocked {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b BlockedAddr) int {
		if c := a.Addr.Compare(b.Addr); c != 0 {
			return c
		}
		if c := strings.Compare(a.Iface, b.Iface); c != 0 {
			return c
		}
		switch {
		case a.ByName == b.ByName:
			return 0
		case b.ByName:
			return -1
		}
		return 1
	})
	return out
}

// Close deletes the tables this value created, with everything in them,
// and releases its sockets. Calling it again does nothing.
func (n *NoAccept) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	var errs []error
	for i, f := range n.fam {
		if f.table == nil {
			continue
		}
		// One table per transaction: a table someone else already
		// deleted (ENOENT) must not keep the other one.
		err := n.connect()
		if err == nil {
			n.conn.DelTable(f.table)
			err = n.flush()
		}
		switch {
		case err == nil:
			n.log.Info("deleted nftables table", "family", familyName(i == 1))
		case errors.Is(err, unix.ENOENT):
			n.log.Debug("nftables table already gone", "family", familyName(i == 1))
		default:
			errs = append(errs, fmt.Errorf("netstate: nftables: delete table %s %s: %w", familyName(i == 1), n.table, err))
		}
	}
	n.fam = [2]nftFamily{}
	clear(n.blocked)
	clear(n.refs)
	clear(n.quiet)
	n.release()
	return errors.Join(errs...)
}

func (n *NoAccept) release() {
	n.dropConn()
	if n.rt != nil {
		n.rt.Close()
		n.rt = nil
	}
	if n.ns.IsOpen() {
		n.ns.Close()
		n.ns = netns.None()
	}
}

func famIndex(ipv6 bool) int {
	if ipv6 {
		return 1
	}
	return 0
}

func blockedList[T any](xs []T, f func(T) BlockedAddr) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = f(x).String()
	}
	return strings.Join(s, ", ")
}

// ensureSet queues what the set of e needs that pending says does not
// exist yet, updates pending, and returns the set.
func (n *NoAccept) ensureSet(pending *[2]nftFamily, e nftElem) (*nftables.Set, error) {
	f := &pending[famIndex(e.ipv6)]
	if f.table == nil {
		if err := n.queueFamily(f, e.ipv6); err != nil {
			return nil, err
		}
	}
	if s, ok := f.sets[e.set]; ok {
		return s, nil
	}
	if e.set == nftSetVMACMap || e.set == nftSetVMACSet {
		if err := n.queueVMAC(f, e.ipv6); err != nil {
			return nil, err
		}
		return f.sets[e.set], nil
	}
	// Only the link-local sets are created on demand, like keepalived's
	// setup_link_local_checks.
	return n.queueLinkLocal(f, e.set == nftSetLLName)
}

// queueFamily queues the table of one family with its base chains, its
// vips set and its rules: keepalived's nft_setup_ipv4/nft_setup_ipv4_vips
// and nft_setup_ipv6/nft_setup_ipv6_vips.
func (n *NoAccept) queueFamily(f *nftFamily, ipv6 bool) error {
	// f.sets may be shared with n.fam; copy before adding.
	f.sets = make(map[string]*nftables.Set)
	t := n.conn.AddTable(&nftables.Table{Name: n.table, Family: familyOf(ipv6)})
	f.table = t
	accept := nftables.ChainPolicyAccept
	prio := nftables.ChainPriority(n.priority)
	in := n.conn.AddChain(&nftables.Chain{
		Name: nftChainIn, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: &prio, Policy: &accept,
	})
	out := n.conn.AddChain(&nftables.Chain{
		Name: nftChainOut, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: &prio, Policy: &accept,
	})
	keyType := nftables.TypeIPAddr
	if ipv6 {
		keyType = nftables.TypeIP6Addr
	}
	vips := &nftables.Set{Table: t, Name: nftSetVIPs, KeyType: keyType}
	if err := n.conn.AddSet(vips, nil); err != nil {
		return fmt.Errorf("set %s: %w", vips.Name, err)
	}
	f.sets[nftSetVIPs] = vips

	if ipv6 {
		inLL := n.conn.AddChain(&nftables.Chain{Name: nftChainInLL, Table: t})
		outLL := n.conn.AddChain(&nftables.Chain{Name: nftChainOutLL, Table: t})
		nd := &nftables.Set{Table: t, Name: nftSetND, KeyType: nftables.TypeICMP6Type, Constant: true}
		if err := n.conn.AddSet(nd, []nftables.SetElement{{Key: []byte{icmpv6NeighSolic}}, {Key: []byte{icmpv6NeighAdv}}}); err != nil {
			return fmt.Errorf("set %s: %w", nd.Name, err)
		}
		f.sets[nftSetND] = nd
		// Neighbor discovery for a VIP uses the VIP as target and as the
		// source of the advertisement; dropping it would make the VIP
		// unreachable even through the master (vrrp_nftables.c
		// nft_setup_ipv6_vips: "icmpv6 type @neighbor-discovery accept").
		for _, c := range []*nftables.Chain{in, out} {
			n.conn.AddRule(&nftables.Rule{Table: t, Chain: c, Exprs: n.verdict(ndExprs(nd), expr.VerdictAccept, "")})
		}
		n.conn.AddRule(&nftables.Rule{Table: t, Chain: in, Exprs: n.verdict(linkLocalExprs(false), expr.VerdictGoto, inLL.Name)})
		n.conn.AddRule(&nftables.Rule{Table: t, Chain: out, Exprs: n.verdict(linkLocalExprs(true), expr.VerdictGoto, outLL.Name)})
	}
	n.conn.AddRule(&nftables.Rule{Table: t, Chain: in, Exprs: n.verdict(lookupAddrExprs(ipv6, false, vips), expr.VerdictDrop, ""),
		UserData: userdata.AppendString(nil, userdata.TypeComment, nftMarker)})
	n.conn.AddRule(&nftables.Rule{Table: t, Chain: out, Exprs: n.verdict(lookupAddrExprs(ipv6, true, vips), expr.VerdictDrop, "")})
	return nil
}

// queueLinkLocal queues one link-local set, keyed by address and interface
// index or name, and the rules of in_link_local and out_link_local that
// use it (keepalived's setup_link_local_checks).
func (n *NoAccept) queueLinkLocal(f *nftFamily, byName bool) (*nftables.Set, error) {
	name, ifType := nftSetLL, nftables.TypeIFIndex
	inKey, outKey := expr.MetaKeyIIF, expr.MetaKeyOIF
	if byName {
		name, ifType = nftSetLLName, nftables.TypeIFName
		inKey, outKey = expr.MetaKeyIIFNAME, expr.MetaKeyOIFNAME
	}
	keyType, err := nftables.ConcatSetType(nftables.TypeIP6Addr, ifType)
	if err != nil {
		return nil, fmt.Errorf("set %s: %w", name, err)
	}
	// f.sets may be shared with n.fam; copy before adding.
	f.sets = maps.Clone(f.sets)
	s := &nftables.Set{Table: f.table, Name: name, KeyType: keyType, Concatenation: true}
	if err := n.conn.AddSet(s, nil); err != nil {
		return nil, fmt.Errorf("set %s: %w", name, err)
	}
	f.sets[name] = s
	in := &nftables.Chain{Name: nftChainInLL, Table: f.table}
	out := &nftables.Chain{Name: nftChainOutLL, Table: f.table}
	n.conn.AddRule(&nftables.Rule{Table: f.table, Chain: in, Exprs: n.verdict(lookupAddrIfExprs(false, inKey, s), expr.VerdictDrop, "")})
	n.conn.AddRule(&nftables.Rule{Table: f.table, Chain: out, Exprs: n.verdict(lookupAddrIfExprs(true, outKey, s), expr.VerdictDrop, "")})
	return s, nil
}

// verdict appends the optional counter and the verdict to a match.
func (n *NoAccept) verdict(match []expr.Any, kind expr.VerdictKind, chain string) []expr.Any {
	if n.counters {
		match = append(match, &expr.Counter{})
	}
	return append(match, &expr.Verdict{Kind: kind, Chain: chain})
}

// addrPayload loads the source or destination address into register 1.
func addrPayload(ipv6, src bool) *expr.Payload {
	p := &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader}
	switch {
	case !ipv6 && src:
		p.Offset, p.Len = 12, 4 // struct iphdr saddr
	case !ipv6:
		p.Offset, p.Len = 16, 4 // daddr
	case src:
		p.Offset, p.Len = 8, 16 // struct ip6_hdr ip6_src
	default:
		p.Offset, p.Len = 24, 16 // ip6_dst
	}
	return p
}

// lookupAddrExprs is "ip[6] {s|d}addr @set".
func lookupAddrExprs(ipv6, src bool, s *nftables.Set) []expr.Any {
	return []expr.Any{addrPayload(ipv6, src), &expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID}}
}

// lookupAddrIfExprs is "ip6 {s|d}addr . {i|o}if[name] @set". The address
// fills register 1 (16 bytes), the interface part follows in register 2,
// which is how a concatenated key is read from consecutive registers.
func lookupAddrIfExprs(src bool, key expr.MetaKey, s *nftables.Set) []expr.Any {
	return []expr.Any{
		addrPayload(true, src),
		&expr.Meta{Key: key, Register: 2},
		&expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID},
	}
}

// linkLocalExprs is "ip6 {s|d}addr fe80::/10".
func linkLocalExprs(src bool) []expr.Any {
	mask := make([]byte, 16)
	mask[0], mask[1] = 0xff, 0xc0
	want := make([]byte, 16)
	want[0], want[1] = 0xfe, 0x80
	return []expr.Any{
		addrPayload(true, src),
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 16, Mask: mask, Xor: make([]byte, 16)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: want},
	}
}

// ndExprs is "icmpv6 type @neighbor-discovery". keepalived matches the
// IPv6 next header field; "meta l4proto" (what nft itself generates) also
// finds ICMPv6 behind extension headers.
func ndExprs(s *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_ICMPV6}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		&expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID},
	}
}

// lostElems returns every element recorded in a family whose table is not
// known to exist (forgetLostTables forgot it): what recreating it needs.
func (n *NoAccept) lostElems() []nftElem {
	var out []nftElem
	for e := range n.refs {
		if n.fam[famIndex(e.ipv6)].table == nil {
			out = append(out, e)
		}
	}
	for _, q := range n.quiet {
		for _, e := range q.elems {
			if n.fam[famIndex(e.ipv6)].table == nil {
				out = append(out, e)
			}
		}
	}
	return out
}

// QuietVMAC is a VMAC (a macvlan with the virtual MAC) whose multicast
// listener reports and router solicitations [NoAccept.QuietVMAC] keeps
// from leaving with the virtual MAC as source.
type QuietVMAC struct {
	// Index is the VMAC's interface index, BaseIndex its base's (the
	// interface the reports are sent from instead).
	Index, BaseIndex int
	// IPv4 quiets IGMP, IPv6 MLDv2 reports and router solicitations:
	// keepalived sets up the instance's family and, with virtual
	// addresses of the other family, that one too (vrrp_nftables.c
	// nft_update_vmac: other_family).
	IPv4, IPv6 bool
}

// quietRecord is a quieted VMAC with the elements added for it, so that
// they are deleted even once the VMAC is gone.
type quietRecord struct {
	v     QuietVMAC
	elems []nftElem
}

// quietElems are the set elements of v: per family an entry VMAC → base in
// vmac_map, and for IPv6 the VMAC in vmac_set. Interface indexes are in
// host byte order, as "meta oif" loads them.
func quietElems(v QuietVMAC) []nftElem {
	var idx, base [4]byte
	binary.NativeEndian.PutUint32(idx[:], uint32(v.Index))
	binary.NativeEndian.PutUint32(base[:], uint32(v.BaseIndex))
	var out []nftElem
	if v.IPv4 {
		out = append(out, nftElem{set: nftSetVMACMap, key: string(idx[:]), val: string(base[:])})
	}
	if v.IPv6 {
		out = append(out,
			nftElem{ipv6: true, set: nftSetVMACMap, key: string(idx[:]), val: string(base[:])},
			nftElem{ipv6: true, set: nftSetVMACSet, key: string(idx[:])})
	}
	return out
}

// QuietVMAC keeps a VMAC from sending frames with the virtual MAC as
// source that are not VRRP's: a switch would learn the virtual MAC on the
// port of whoever sent them, and a backup would pull the master's traffic
// to itself. It does what keepalived 2.2.7 does for every VMAC it creates,
// whatever the instance's state (vrrp_vmac.c netlink_link_add_vmac →
// vrrp_firewall.c firewall_add_vmac → vrrp_nftables.c nft_add_vmac), in the
// output chain "out" of the family's table:
//
//	ip protocol igmp meta oifkind "macvlan" dup to ip daddr device oif map @vmac_map drop
//	icmpv6 type mld2-listener-report meta oifkind "macvlan" dup to ip6 daddr device oif map @vmac_map drop
//	icmpv6 type nd-router-solicit meta oifkind "macvlan" oif @vmac_set drop
//
// (setup_rule_move_igmp, setup_rule_drop_router_solicit): IGMP and MLDv2
// reports are sent out of the base interface instead, with the base's MAC,
// so the group membership still reaches the segment's snooping switches
// and routers; router solicitations are dropped. Unlike keepalived the
// rules go first in the chain: after no_accept's "ip6 saddr fe80::/10
// goto out_link_local" a report from a link-local source would never
// reach them.
//
// Quieting a VMAC again with other values replaces the entries; the VMAC
// need not exist any more when it is unquieted.
func (n *NoAccept) QuietVMAC(ctx context.Context, v QuietVMAC) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("netstate: nftables quiet VMAC %d: %w", v.Index, err)
	}
	if v.Index <= 0 || v.BaseIndex <= 0 {
		return fmt.Errorf("netstate: nftables quiet VMAC %d on %d: invalid interface index", v.Index, v.BaseIndex)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return errors.New("netstate: nftables quiet VMAC: closed")
	}
	if old, ok := n.quiet[v.Index]; ok {
		if old.v == v {
			return nil
		}
		if err := n.unquietLocked(old); err != nil {
			return fmt.Errorf("netstate: nftables quiet VMAC %d: replace the old entries: %w", v.Index, err)
		}
	}
	elems := quietElems(v)
	if len(elems) == 0 {
		return nil
	}
	err := n.addElements(elems)
	if errors.Is(err, unix.ENOENT) {
		if lost := n.forgetLostTables(); len(lost) > 0 {
			n.log.Warn("nftables table was deleted by someone else; recreating it", "families", lost)
			err = n.addElements(append(elems, n.lostElems()...))
		}
	}
	if err != nil {
		return fmt.Errorf("netstate: nftables quiet VMAC %d on %d: %w", v.Index, v.BaseIndex, err)
	}
	n.quiet[v.Index] = quietRecord{v: v, elems: elems}
	n.log.Info("VMAC quieted: IGMP/MLD reports go out of the base, router solicitations are dropped",
		"ifindex", v.Index, "base_ifindex", v.BaseIndex, "ipv4", v.IPv4, "ipv6", v.IPv6)
	return nil
}

// UnquietVMAC deletes the entries QuietVMAC added for the VMAC of index;
// one it did not quiet is ignored. The rules and sets stay, empty, as
// keepalived's do (nft_remove_vmac), until [NoAccept.Close].
func (n *NoAccept) UnquietVMAC(ctx context.Context, index int) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("netstate: nftables unquiet VMAC %d: %w", index, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil // Close removed everything
	}
	rec, ok := n.quiet[index]
	if !ok {
		return nil
	}
	if err := n.unquietLocked(rec); err != nil {
		return fmt.Errorf("netstate: nftables unquiet VMAC %d: %w", index, err)
	}
	n.log.Info("VMAC no longer quieted", "ifindex", index)
	return nil
}

func (n *NoAccept) unquietLocked(rec quietRecord) error {
	if err := n.connect(); err != nil {
		return err
	}
	bySet := make(map[*nftables.Set][]nftables.SetElement)
	var order []*nftables.Set
	for _, e := range rec.elems {
		s := n.fam[famIndex(e.ipv6)].sets[e.set]
		if s == nil { // the table was lost and not recreated: nothing to delete
			continue
		}
		if _, ok := bySet[s]; !ok {
			order = append(order, s)
		}
		bySet[s] = append(bySet[s], nftables.SetElement{Key: []byte(e.key)})
	}
	if err := n.deleteElements(order, bySet); err != nil {
		return err
	}
	delete(n.quiet, rec.v.Index)
	return nil
}

// Quieted returns the VMACs quieted now, by index.
func (n *NoAccept) Quieted() []QuietVMAC {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]QuietVMAC, 0, len(n.quiet))
	for _, q := range n.quiet {
		out = append(out, q.v)
	}
	slices.SortFunc(out, func(a, b QuietVMAC) int { return cmp.Compare(a.Index, b.Index) })
	return out
}

// queueVMAC queues the sets of one family that QuietVMAC fills, and the
// rules that use them, at the head of the output chain (keepalived's
// nft_setup_igmp).
func (n *NoAccept) queueVMAC(f *nftFamily, ipv6 bool) error {
	// f.sets may be shared with n.fam; copy before adding.
	f.sets = maps.Clone(f.sets)
	// Host byte order, as "meta oif" loads an index; said so, or nft(8)
	// shows the elements as big-endian numbers.
	m := &nftables.Set{Table: f.table, Name: nftSetVMACMap, KeyType: nftables.TypeIFIndex, IsMap: true, DataType: nftables.TypeIFIndex,
		KeyByteOrder: binaryutil.NativeEndian}
	if err := n.conn.AddSet(m, nil); err != nil {
		return fmt.Errorf("set %s: %w", m.Name, err)
	}
	f.sets[nftSetVMACMap] = m
	out := &nftables.Chain{Name: nftChainOut, Table: f.table}
	// Each rule is inserted at the head: the last inserted comes first.
	if ipv6 {
		s := &nftables.Set{Table: f.table, Name: nftSetVMACSet, KeyType: nftables.TypeIFIndex, KeyByteOrder: binaryutil.NativeEndian}
		if err := n.conn.AddSet(s, nil); err != nil {
			return fmt.Errorf("set %s: %w", s.Name, err)
		}
		f.sets[nftSetVMACSet] = s
		rs := append(icmpv6TypeExprs(icmpv6RouterSol), macvlanOIFExprs()...)
		rs = append(rs, &expr.Meta{Key: expr.MetaKeyOIF, Register: 2},
			&expr.Lookup{SourceRegister: 2, SetName: s.Name, SetID: s.ID})
		n.conn.InsertRule(&nftables.Rule{Table: f.table, Chain: out, Exprs: n.verdict(rs, expr.VerdictDrop, "")})
	}
	var match []expr.Any
	if ipv6 {
		match = icmpv6TypeExprs(icmpv6MLD2Report)
	} else {
		match = []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 9, Len: 1}, // struct iphdr protocol
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_IGMP}},
		}
	}
	// "dup to ip daddr device oif map @vmac_map": the destination (the
	// report's group address, RFC 3376 §4.2.14 / RFC 3810 §5.2.14) in
	// register 1, the base's index looked up in register 2.
	match = append(match, addrPayload(ipv6, false))
	match = append(match, macvlanOIFExprs()...)
	match = append(match,
		&expr.Meta{Key: expr.MetaKeyOIF, Register: 2},
		&expr.Lookup{SourceRegister: 2, DestRegister: 2, IsDestRegSet: true, SetName: m.Name, SetID: m.ID},
		&expr.Dup{RegAddr: 1, RegDev: 2, IsRegDevSet: true})
	n.conn.InsertRule(&nftables.Rule{Table: f.table, Chain: out, Exprs: n.verdict(match, expr.VerdictDrop, "")})
	return nil
}

// icmpv6TypeExprs is "icmpv6 type T".
func icmpv6TypeExprs(t byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_ICMPV6}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{t}},
	}
}

// macvlanOIFExprs is "meta oifkind "macvlan"", in register 2: a cheap
// test before the set lookup, as keepalived makes it.
func macvlanOIFExprs() []expr.Any {
	kind := make([]byte, unix.IFNAMSIZ)
	copy(kind, "macvlan")
	return []expr.Any{
		&expr.Meta{Key: metaKeyOIFKIND, Register: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 2, Data: kind},
	}
}
