package netstate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ErrVMACConflict is wrapped by errors about an interface that has the name
// a VMAC should have but is not a VMAC vrrpkit can use: a physical
// interface, another kind of link, or a macvlan on another base or with
// another MAC address that vrrpkit did not create. Such an interface is
// never touched (keepalived, vrrp/vrrp_vmac.c netlink_link_add_vmac: "VMAC
// %s conflicts with existing interface").
var ErrVMACConflict = errors.New("interface exists and is not a VMAC of vrrpkit")

// VirtualMAC is the VRRP virtual router MAC address for vrid: 00-00-5E-00-01-{VRID}
// for IPv4 and 00-00-5E-00-02-{VRID} for IPv6 (RFC 5798 §7.3).
func VirtualMAC(vrid uint8, ipv6 bool) net.HardwareAddr {
	if ipv6 {
		return net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x02, vrid}
	}
	return net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, vrid}
}

// LinkLocalFromMAC is the modified EUI-64 IPv6 link-local address of an
// Ethernet MAC address (RFC 4291 §2.5.1, appendix A): the address the
// kernel itself would generate for an interface with that MAC. keepalived
// gives a VMAC of an IPv6 instance the link-local address of its base
// interface (vrrp_vmac.c make_link_local_address), so that adverts keep a
// stable source that is not a VIP while they carry the virtual MAC.
func LinkLocalFromMAC(mac net.HardwareAddr) (netip.Addr, error) {
	if len(mac) != 6 {
		return netip.Addr{}, fmt.Errorf("netstate: %q is not a 6-byte Ethernet address", mac)
	}
	var b [16]byte
	b[0], b[1] = 0xfe, 0x80
	b[8], b[9], b[10] = mac[0]^0x02, mac[1], mac[2]
	b[11], b[12] = 0xff, 0xfe
	b[13], b[14], b[15] = mac[3], mac[4], mac[5]
	return netip.AddrFrom16(b), nil
}

// VMACSpec describes one VMAC interface the way keepalived 2.2.7 makes it
// for use_vmac (vrrp/vrrp_vmac.c netlink_link_add_vmac, keepalived.conf(5)):
// a macvlan in private mode on the base interface, with the virtual MAC,
// IFLA_INET6_ADDR_GEN_MODE none (RFC 5798 §7.4: no link-local derived from
// the virtual MAC), set up whatever the instance's state.
type VMACSpec struct {
	// Name of the macvlan, e.g. "vrrp.51".
	Name string
	// Base is the interface the macvlan sits on (the instance's interface).
	Base string
	// HardwareAddr is the macvlan's MAC address, normally [VirtualMAC].
	HardwareAddr net.HardwareAddr
	// IPv4Sysctls applies keepalived's settings for IPv4 instances
	// (vrrp/vrrp_if_config.c set_interface_parameters): on the VMAC
	// arp_ignore=1, accept_local=1, rp_filter=0, promote_secondaries=1; on
	// the base arp_ignore=1 and arp_filter=1, so that ARP for a VIP is
	// answered by the VMAC with the virtual MAC and not by the base with
	// its own. The base's previous values are restored when the last VMAC
	// on it that this manager created is removed.
	IPv4Sysctls bool
	// DisableIPv6 sets net.ipv6.conf.<vmac>.disable_ipv6=1: keepalived does
	// so for IPv4 instances without IPv6 excluded addresses.
	DisableIPv6 bool
	// LinkLocal, if valid, is added to the VMAC as LinkLocal/64 with
	// IFA_F_NODAD (the base holds the same address, so duplicate address
	// detection would fail it).
	LinkLocal netip.Addr
}

func (s VMACSpec) check() error {
	switch {
	case s.Name == "":
		return errors.New("no VMAC interface name")
	case len(s.Name) > maxLabelLen:
		return fmt.Errorf("interface name %q longer than %d bytes", s.Name, maxLabelLen)
	case s.Base == "":
		return errors.New("no base interface")
	case s.Base == s.Name:
		return errors.New("VMAC and base interface have the same name")
	case len(s.HardwareAddr) != 6:
		return fmt.Errorf("hardware address %q is not a 6-byte Ethernet address", s.HardwareAddr)
	case s.LinkLocal.IsValid() && !(s.LinkLocal.Is6() && s.LinkLocal.IsLinkLocalUnicast()):
		return fmt.Errorf("%s is not an IPv6 link-local address", s.LinkLocal)
	}
	return nil
}

// VMACInfo is a VMAC as it is once ensured.
type VMACInfo struct {
	Name         string
	Index        int
	BaseIndex    int
	HardwareAddr net.HardwareAddr
}

// VMACs creates and removes VMAC interfaces in one network namespace and
// remembers which ones it created (or adopted): only those are ever
// removed. It is safe for concurrent use; operations are serialized.
type VMACs struct {
	ns   netns.NsHandle // owned; netns.None() for the caller's namespace
	h    *netlink.Handle
	ownH bool
	log  *slog.Logger

	mu    sync.Mutex
	owned map[string]vmacRecord
	// base sysctls saved before the first VMAC on a base changed them,
	// and how many of our VMACs on that base need them.
	bases map[string]*baseARP

	closeOnce sync.Once
}

type vmacRecord struct {
	spec  VMACSpec
	index int
}

type baseARP struct {
	refs                 int
	arpIgnore, arpFilter string // as read from /proc/sys, "" if unknown
	changed              bool
}

// NewVMACs returns a VMAC manager for the calling goroutine's network
// namespace. A nil log discards messages.
func NewVMACs(log *slog.Logger) *VMACs {
	return &VMACs{ns: netns.None(), h: &netlink.Handle{}, log: orDiscard(log),
		owned: map[string]vmacRecord{}, bases: map[string]*baseARP{}}
}

// NewVMACsAt returns a VMAC manager for the network namespace ns. It keeps
// its own descriptor for ns. Call Close when done.
func NewVMACsAt(ns netns.NsHandle, log *slog.Logger) (*VMACs, error) {
	if !ns.IsOpen() {
		return nil, errors.New("netstate: network namespace handle is not open")
	}
	own, err := dupNetns(ns)
	if err != nil {
		return nil, fmt.Errorf("netstate: %w", err)
	}
	h, err := newHandleAt(own)
	if err != nil {
		own.Close()
		return nil, fmt.Errorf("netstate: open rtnetlink socket: %w", err)
	}
	return &VMACs{ns: own, h: h, ownH: true, log: orDiscard(log),
		owned: map[string]vmacRecord{}, bases: map[string]*baseARP{}}, nil
}

// Close releases the manager's socket and namespace descriptor; it does
// not remove any VMAC. Close is idempotent.
func (m *VMACs) Close() error {
	var err error
	m.closeOnce.Do(func() {
		if m.ownH {
			m.h.Close()
		}
		if m.ns.IsOpen() {
			err = m.ns.Close()
		}
	})
	return err
}

// Ensure makes the VMAC of spec exist, configured and up, and returns it.
// It is idempotent: on an existing VMAC of this manager it only re-applies
// the settings. An existing private macvlan of that name on the same base
// with the same MAC (left by a previous vrrpd, as keepalived finds "a
// matching interface" in vrrp.c vrrp_complete_instance) is adopted, and so
// removed later. Any other interface of that name is an error wrapping
// [ErrVMACConflict] and is left alone; a VMAC of ours whose base or MAC
// changed is re-created. A missing base is an error wrapping
// [ErrLinkNotFound].
func (m *VMACs) Ensure(ctx context.Context, spec VMACSpec) (VMACInfo, error) {
	fail := func(err error) (VMACInfo, error) {
		return VMACInfo{}, fmt.Errorf("netstate: VMAC %s on %s: %w", spec.Name, spec.Base, err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if err := spec.check(); err != nil {
		return fail(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()

	base, err := linkByName(m.h, spec.Base)
	if err != nil {
		return fail(fmt.Errorf("base interface: %w", err))
	}
	link, err := linkByName(m.h, spec.Name)
	switch {
	case errors.Is(err, ErrLinkNotFound):
		link = nil
	case err != nil:
		return fail(err)
	}
	rec, ours := m.owned[spec.Name]
	if link != nil {
		match := isVMACOf(link, base.Attrs().Index, spec.HardwareAddr)
		switch {
		case match && !ours:
			m.log.Info("adopting existing VMAC", "vmac", spec.Name, "base", spec.Base, "mac", spec.HardwareAddr.String())
		case match:
		case ours && rec.index == link.Attrs().Index && link.Type() == "macvlan":
			// Ours, but the base or MAC changed (a reload): re-create,
			// as keepalived updates a VMAC with the wrong MAC or mode.
			m.log.Info("re-creating VMAC: base or MAC changed", "vmac", spec.Name)
			if err := m.h.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
				return fail(fmt.Errorf("delete outdated VMAC: %w", err))
			}
			m.releaseBaseLocked(rec.spec)
			delete(m.owned, spec.Name)
			ours = false
			link = nil
		default:
			return fail(fmt.Errorf("%w (%s %s, index %d)", ErrVMACConflict, link.Type(), link.Attrs().HardwareAddr, link.Attrs().Index))
		}
	}
	if link == nil {
		// From NewLinkAttrs: a zero LinkAttrs has TxQLen 0, which netlink
		// sends as IFLA_TXQLEN 0; keepalived sends none, so the VMAC gets
		// the kernel's default (1000), as any qdisc put on it expects.
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.ParentIndex, attrs.HardwareAddr = spec.Name, base.Attrs().Index, spec.HardwareAddr
		mv := &netlink.Macvlan{
			LinkAttrs: attrs,
			// Private mode: the macvlan gets only frames for its own MAC
			// (vrrp_vmac.c: MACVLAN_MODE_PRIVATE).
			Mode: netlink.MACVLAN_MODE_PRIVATE,
		}
		if err := m.h.LinkAdd(mv); err != nil {
			if errors.Is(err, unix.EEXIST) {
				return fail(fmt.Errorf("%w (created meanwhile by someone else)", ErrVMACConflict))
			}
			return fail(fmt.Errorf("create macvlan: %w", err))
		}
		if link, err = linkByName(m.h, spec.Name); err != nil {
			return fail(fmt.Errorf("look up the new macvlan: %w", err))
		}
		m.log.Info("created VMAC", "vmac", spec.Name, "base", spec.Base, "mac", spec.HardwareAddr.String(), "index", link.Attrs().Index)
	}
	if !ours || rec.spec.IPv4Sysctls != spec.IPv4Sysctls || rec.spec.Base != spec.Base {
		if ours {
			m.releaseBaseLocked(rec.spec)
		}
		if spec.IPv4Sysctls {
			m.holdBaseLocked(spec.Base)
		}
	}
	m.owned[spec.Name] = vmacRecord{spec: spec, index: link.Attrs().Index}

	if err := m.configureLocked(link, spec); err != nil {
		return fail(err)
	}
	return VMACInfo{Name: spec.Name, Index: link.Attrs().Index, BaseIndex: base.Attrs().Index,
		HardwareAddr: slices.Clone(spec.HardwareAddr)}, nil
}

// configureLocked applies the settings of spec to the VMAC link, in
// keepalived's order: sysctls, address generation mode (before the link
// goes up, or the kernel adds a link-local from the virtual MAC), up, the
// link-local address.
func (m *VMACs) configureLocked(link netlink.Link, spec VMACSpec) error {
	if spec.IPv4Sysctls {
		for _, kv := range [][2]string{{"arp_ignore", "1"}, {"accept_local", "1"}, {"rp_filter", "0"}, {"promote_secondaries", "1"}} {
			if err := m.writeSysctl("ipv4", spec.Name, kv[0], kv[1]); err != nil {
				return err
			}
		}
	}
	if err := m.h.LinkSetIP6AddrGenMode(link, in6AddrGenModeNone); err != nil {
		return fmt.Errorf("set addrgenmode none: %w", err)
	}
	if spec.DisableIPv6 {
		if err := m.writeSysctl("ipv6", spec.Name, "disable_ipv6", "1"); err != nil {
			return err
		}
	}
	if err := m.h.LinkSetUp(link); err != nil {
		return fmt.Errorf("set up: %w", err)
	}
	if spec.LinkLocal.IsValid() {
		a := &netlink.Addr{
			IPNet: &net.IPNet{IP: spec.LinkLocal.AsSlice(), Mask: net.CIDRMask(64, 128)},
			Flags: unix.IFA_F_NODAD,
		}
		if err := m.h.AddrAdd(link, a); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add link-local %s: %w", spec.LinkLocal, err)
		}
	}
	return nil
}

// isVMACOf reports whether link is a private-mode macvlan on baseIndex with
// MAC mac.
func isVMACOf(link netlink.Link, baseIndex int, mac net.HardwareAddr) bool {
	mv, ok := link.(*netlink.Macvlan)
	return ok && mv.Mode == netlink.MACVLAN_MODE_PRIVATE && mv.ParentIndex == baseIndex &&
		bytes.Equal(mv.HardwareAddr, mac)
}

// Remove deletes the VMAC called name if this manager created or adopted
// it, and forgets it; otherwise it does nothing. A VMAC already gone (the
// kernel deletes a macvlan with its base) is forgotten without error. An
// interface of that name that is no longer the one recorded is forgotten
// and left alone.
func (m *VMACs) Remove(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("netstate: remove VMAC %s: %w", name, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ours := m.owned[name]
	if !ours {
		m.log.Debug("not removing VMAC that vrrpkit did not create", "vmac", name)
		return nil
	}
	defer func() {
		delete(m.owned, name)
		m.releaseBaseLocked(rec.spec)
	}()
	link, err := linkByName(m.h, name)
	if errors.Is(err, ErrLinkNotFound) {
		m.log.Debug("VMAC already gone", "vmac", name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("netstate: remove VMAC %s: %w", name, err)
	}
	if link.Attrs().Index != rec.index || link.Type() != "macvlan" || !bytes.Equal(link.Attrs().HardwareAddr, rec.spec.HardwareAddr) {
		m.log.Warn("not removing VMAC: the interface of that name is no longer ours", "vmac", name,
			"index", link.Attrs().Index, "recorded", rec.index)
		return nil
	}
	if err := m.h.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("netstate: remove VMAC %s: %w", name, err)
	}
	m.log.Info("removed VMAC", "vmac", name)
	return nil
}

// Owned returns the names of the VMACs this manager created or adopted,
// sorted.
func (m *VMACs) Owned() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.owned))
	for n := range m.owned {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// holdBaseLocked sets arp_ignore=1 and arp_filter=1 on base for one more
// VMAC, saving the previous values the first time (vrrp_if_config.c
// netlink_set_interface_parameters, reset_arp_config).
func (m *VMACs) holdBaseLocked(base string) {
	b := m.bases[base]
	if b == nil {
		b = &baseARP{}
		m.bases[base] = b
	}
	b.refs++
	if b.refs > 1 {
		return
	}
	b.arpIgnore, _ = m.readSysctl("ipv4", base, "arp_ignore")
	b.arpFilter, _ = m.readSysctl("ipv4", base, "arp_filter")
	if b.arpIgnore == "1" && b.arpFilter == "1" {
		return
	}
	b.changed = true
	for _, kv := range [][2]string{{"arp_ignore", "1"}, {"arp_filter", "1"}} {
		if err := m.writeSysctl("ipv4", base, kv[0], kv[1]); err != nil {
			m.log.Warn("cannot set base interface sysctl for VMAC", "base", base, "err", err)
		}
	}
}

// releaseBaseLocked undoes holdBaseLocked for one VMAC of spec; the last
// one restores the saved values.
func (m *VMACs) releaseBaseLocked(spec VMACSpec) {
	if !spec.IPv4Sysctls {
		return
	}
	b := m.bases[spec.Base]
	if b == nil {
		return
	}
	if b.refs--; b.refs > 0 {
		return
	}
	delete(m.bases, spec.Base)
	if !b.changed {
		return
	}
	for _, kv := range [][2]string{{"arp_ignore", b.arpIgnore}, {"arp_filter", b.arpFilter}} {
		if kv[1] == "" {
			continue
		}
		if err := m.writeSysctl("ipv4", spec.Base, kv[0], kv[1]); err != nil && !errors.Is(err, os.ErrNotExist) {
			m.log.Warn("cannot restore base interface sysctl", "base", spec.Base, "err", err)
		}
	}
}

// sysctlPath is /proc/sys/net/<family>/conf/<iface>/<key>. /proc/sys/net
// shows the network namespace of the thread that opens it, so the file is
// opened inside inNetns.
func sysctlPath(family, iface, key string) (string, error) {
	if iface == "" || strings.ContainsAny(iface, "/") || iface == "." || iface == ".." {
		return "", fmt.Errorf("bad interface name %q", iface)
	}
	return filepath.Join("/proc/sys/net", family, "conf", iface, key), nil
}

func (m *VMACs) writeSysctl(family, iface, key, value string) error {
	p, err := sysctlPath(family, iface, key)
	if err != nil {
		return err
	}
	err = inNetns(m.ns, func() error { return os.WriteFile(p, []byte(value+"\n"), 0) })
	if err != nil {
		return fmt.Errorf("set %s=%s: %w", p, value, err)
	}
	return nil
}

func (m *VMACs) readSysctl(family, iface, key string) (string, error) {
	p, err := sysctlPath(family, iface, key)
	if err != nil {
		return "", err
	}
	var b []byte
	err = inNetns(m.ns, func() error {
		var err error
		b, err = os.ReadFile(p)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	v := strings.TrimSpace(string(b))
	if _, err := strconv.Atoi(v); err != nil {
		return "", fmt.Errorf("read %s: %q is not a number", p, v)
	}
	return v, nil
}

// in6AddrGenModeNone is IN6_ADDR_GEN_MODE_NONE of linux/if_link.h.
const in6AddrGenModeNone = 1
