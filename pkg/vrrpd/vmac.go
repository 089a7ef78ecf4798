package vrrpd

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/vrrpkit/vrrpkit/pkg/netstate"
	"github.com/vrrpkit/vrrpkit/pkg/vrrpnet"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// VMACs creates and removes use_vmac interfaces (netstate.VMACs).
type VMACs interface {
	Ensure(ctx context.Context, spec netstate.VMACSpec) (netstate.VMACInfo, error)
	// Remove removes a VMAC this process created or adopted, and no other.
	Remove(ctx context.Context, name string) error
}

// vmacState is a use_vmac instance's VMAC while the instance runs.
type vmacState struct {
	info netstate.VMACInfo
	// ann sends the instance's gratuitous ARP / NA: on the base interface
	// with the virtual MAC as source, as keepalived does
	// (vrrp/vrrp_arp.c send_gratuitous_arp: IF_BASE_IFP, the VIP
	// interface's hw_addr).
	ann Announcer
}

// vmacName is the instance's VMAC interface, "" without use_vmac.
func vmacName(cfg *pb.VrrpInstance) string {
	if !cfg.GetUseVmac() {
		return ""
	}
	return cfg.GetVmacInterface()
}

// addrDev is where the instance's addresses go when they name no device:
// the VMAC with use_vmac (keepalived puts VIPs on vrrp->ifp, the VMAC),
// else the instance's interface.
func addrDev(cfg *pb.VrrpInstance) string {
	if n := vmacName(cfg); n != "" {
		return n
	}
	return cfg.GetInterface()
}

// vmacMAC is the instance's virtual MAC: use_vmac_addr, or
// 00-00-5E-00-01-{VRID} (IPv6: 00-00-5E-00-02-{VRID}), RFC 5798 §7.3.
func vmacMAC(cfg *pb.VrrpInstance, vrid uint8) (net.HardwareAddr, error) {
	if s := cfg.GetVmacAddr(); s != "" {
		mac, err := net.ParseMAC(s)
		if err != nil || len(mac) != 6 {
			return nil, fmt.Errorf("use_vmac_addr %q is not an Ethernet MAC address", s)
		}
		return mac, nil
	}
	return netstate.VirtualMAC(vrid, cfg.GetIpv6()), nil
}

// checkVMAC validates the VMAC fields when an instance is built.
func checkVMAC(cfg *pb.VrrpInstance, vrid uint8) error {
	if !cfg.GetUseVmac() {
		return nil
	}
	if cfg.GetVmacInterface() == "" {
		return fmt.Errorf("use_vmac without an interface name")
	}
	if cfg.GetVmacInterface() == cfg.GetInterface() {
		return fmt.Errorf("use_vmac interface %s is the instance's interface", cfg.GetVmacInterface())
	}
	_, err := vmacMAC(cfg, vrid)
	return err
}

// sockIface is the interface the instance's VRRP socket is on: the VMAC,
// so adverts leave with the virtual MAC, unless vmac_xmit_base
// (vrrp/vrrp_scheduler.c: VRRP_VMAC_XMITBASE_BIT ? configured_ifp :
// vrrp->ifp).
func (in *instance) sockIface() string {
	if in.vmac != nil && !in.cfg.GetVmacXmitBase() {
		return in.vmac.info.Name
	}
	return in.cfg.GetInterface()
}

// linkIndex is the index of the instance's interface as the socket was
// opened for it: with a VMAC, the base's (the link watch follows the base).
func (in *instance) linkIndex() int {
	if in.vmac != nil {
		return in.vmac.info.BaseIndex
	}
	return in.sock.conn.IfIndex()
}

// announcer is what sends the instance's gratuitous ARP / NA.
func (in *instance) announcer() Announcer {
	if in.vmac != nil && in.vmac.ann != nil {
		return in.vmac.ann
	}
	if in.sock == nil {
		return nil
	}
	return in.sock.ann
}

// ensureVMACLocked creates (or re-checks) the instance's VMAC before its
// socket is opened. keepalived creates it when the instance is set up,
// whatever the state, and sets it up at once (vrrp/vrrp_vmac.c
// netlink_link_add_vmac, netlink_link_up): a BACKUP has its VMAC up too.
func (e *Engine) ensureVMACLocked(ctx context.Context, in *instance) error {
	name := vmacName(in.cfg)
	if name == "" {
		return nil
	}
	base := in.cfg.GetInterface()
	mac, err := vmacMAC(in.cfg, in.vrid)
	if err != nil {
		return err
	}
	spec := netstate.VMACSpec{Name: name, Base: base, HardwareAddr: mac}
	if in.family == 4 {
		spec.IPv4Sysctls = true
		spec.DisableIPv6 = !in.hasAddrOfFamily(6)
	} else if !in.cfg.GetVmacXmitBase() {
		// Adverts go from the VMAC with a source that is not a VIP:
		// unicast_src_ip, else the base's link-local, else one made from
		// the base's MAC (vrrp_vmac.c set_link_local_address).
		if spec.LinkLocal, err = e.vmacLinkLocal(in, base); err != nil {
			return err
		}
	}
	// The VMAC is quieted before it has a link-local address: adding
	// one joins its solicited-node group, and the kernel reports that
	// (and, with no DAD, solicits routers) within a few milliseconds.
	// keepalived adds the link-local first and has that window.
	ll := spec.LinkLocal
	spec.LinkLocal = netip.Addr{}
	info, err := e.vmacs.Ensure(ctx, spec)
	if err != nil {
		return err
	}
	e.quietVMACLocked(ctx, in, netstate.QuietVMAC{Index: info.Index, BaseIndex: info.BaseIndex,
		IPv4: in.family == 4 || in.hasAddrOfFamily(4), IPv6: in.family == 6 || in.hasAddrOfFamily(6)}) // noaccept.go
	if ll.IsValid() {
		spec.LinkLocal = ll
		if info, err = e.vmacs.Ensure(ctx, spec); err != nil {
			return err
		}
	}
	if in.vmac != nil && in.vmac.ann != nil {
		e.stopPacerLocked(in.vmac.ann) // garp_pacer.go
		in.vmac.ann.Close()
	}
	in.vmac = &vmacState{info: info}
	ann, err := e.net.OpenAnnouncer(ctx, vrrpnet.AnnouncerConfig{Interface: base, HardwareAddr: mac})
	if err != nil {
		e.log.Warn("no gratuitous ARP/NA for the VMAC", "instance", in.name(), "interface", base, "err", err)
	} else {
		in.vmac.ann = ann
	}
	return nil
}

func (e *Engine) vmacLinkLocal(in *instance, base string) (netip.Addr, error) {
	if s := in.cfg.GetUnicastSrcIp(); s != "" {
		a, err := netip.ParseAddr(s)
		if err == nil && a.Is6() && a.IsLinkLocalUnicast() {
			return a, nil
		}
	}
	if a, err := e.net.PrimaryAddr(base, 6); err == nil && a.IsLinkLocalUnicast() {
		return a.WithZone(""), nil
	}
	ls, err := e.links.LinkByName(base)
	if err != nil {
		return netip.Addr{}, err
	}
	return netstate.LinkLocalFromMAC(ls.HardwareAddr)
}

// releaseVMACLocked removes the instance's VMAC when the instance stops
// (keepalived: netlink_link_del_vmac, only for an interface it created),
// then its firewall entries (firewall_remove_vmac, after the link is gone:
// a VMAC going down could still report).
func (e *Engine) releaseVMACLocked(in *instance) {
	if in.vmac == nil {
		return
	}
	if in.vmac.ann != nil {
		e.stopPacerLocked(in.vmac.ann) // garp_pacer.go
		in.vmac.ann.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), addressTimeout)
	defer cancel()
	if err := e.vmacs.Remove(ctx, in.vmac.info.Name); err != nil {
		e.log.Error("removing VMAC", "instance", in.name(), "vmac", in.vmac.info.Name, "err", err)
	}
	e.unquietVMACLocked(ctx, in) // noaccept.go
	in.vmac = nil
}

func (in *instance) hasAddrOfFamily(f int) bool {
	for _, a := range in.addrs {
		if a.Prefix.Addr().Is4() == (f == 4) {
			return true
		}
	}
	return false
}
