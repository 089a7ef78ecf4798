package lvs

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"
)

// ipvsKernel is Kernel over the kernel's IPVS generic netlink family.
type ipvsKernel struct {
	c ipvs.Client
}

// OpenKernel connects to the kernel's IPVS (needs CAP_NET_ADMIN and the
// ip_vs module).
func OpenKernel() (Kernel, error) {
	c, err := ipvs.New()
	if err != nil {
		return nil, fmt.Errorf("lvs: opening IPVS netlink: %w", err)
	}
	return ipvsKernel{c: c}, nil
}

func (k ipvsKernel) Services() ([]Service, error) {
	ss, err := k.c.Services()
	if errors.Is(err, os.ErrNotExist) {
		// cloudflare/ipvs reports an empty dump as ErrNotExist.
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]Service, 0, len(ss))
	for _, s := range ss {
		out = append(out, fromIPVSService(s.Service))
	}
	return out, nil
}

func (k ipvsKernel) Destinations(sk ServiceKey) ([]Destination, error) {
	ds, err := k.c.Destinations(toIPVSService(Service{ServiceKey: sk}))
	if errors.Is(err, os.ErrNotExist) {
		// An empty dump, as for Services: a service without destinations
		// (the kernel's ip_vs_genl_dump_dests also dumps nothing, without
		// an error, for a service that does not exist).
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]Destination, 0, len(ds))
	for _, d := range ds {
		out = append(out, fromIPVSDest(d.Destination))
	}
	return out, nil
}

func (k ipvsKernel) NewService(s Service) error    { return k.c.CreateService(toIPVSService(s)) }
func (k ipvsKernel) UpdateService(s Service) error { return k.c.UpdateService(toIPVSService(s)) }
func (k ipvsKernel) RemoveService(sk ServiceKey) error {
	return k.c.RemoveService(toIPVSService(Service{ServiceKey: sk}))
}

func (k ipvsKernel) NewDestination(sk ServiceKey, d Destination) error {
	return k.c.CreateDestination(toIPVSService(Service{ServiceKey: sk}), toIPVSDest(d))
}

func (k ipvsKernel) UpdateDestination(sk ServiceKey, d Destination) error {
	return k.c.UpdateDestination(toIPVSService(Service{ServiceKey: sk}), toIPVSDest(d))
}

func (k ipvsKernel) RemoveDestination(sk ServiceKey, dk DestKey) error {
	return k.c.RemoveDestination(toIPVSService(Service{ServiceKey: sk}), toIPVSDest(Destination{DestKey: dk}))
}

// toIPVSService: a fwmark service carries no address, port or protocol; the
// netmask is the host mask unless persistence_granularity set one
// (ipvswrapper.c ipvs_set_srule).
func toIPVSService(s Service) ipvs.Service {
	out := ipvs.Service{
		Family:    ipvs.AddressFamily(s.Family),
		Scheduler: s.Scheduler,
		Flags:     ipvs.Flags(s.Flags),
		Timeout:   uint32(s.Timeout / time.Second),
		FWMark:    s.Fwmark,
	}
	if s.Fwmark == 0 {
		out.Address, out.Port, out.Protocol = s.Addr, s.Port, ipvs.Protocol(s.Protocol)
	}
	switch {
	case s.Family == INET && s.Netmask.IsValid() && s.Netmask.Addr().Is4():
		out.Netmask = netmask.MaskFrom4(s.Netmask.Addr().As4())
	case s.Family == INET6 && s.Netmask.IsValid():
		out.Netmask = netmask.MaskFrom(s.Netmask.Bits(), 128)
	case s.Family == INET6:
		out.Netmask = netmask.MaskFrom(128, 128)
	default:
		out.Netmask = netmask.MaskFrom(32, 32)
	}
	return out
}

// fromIPVSService is the inverse; the kernel's host mask becomes "no
// granularity" so that it compares equal to what Desired builds.
func fromIPVSService(s ipvs.Service) Service {
	out := Service{
		ServiceKey: ServiceKey{Family: Family(s.Family), Fwmark: s.FWMark},
		Scheduler:  s.Scheduler,
		Flags:      uint32(s.Flags),
		Timeout:    time.Duration(s.Timeout) * time.Second,
	}
	if s.FWMark == 0 {
		out.Addr, out.Port, out.Protocol = s.Address.Unmap(), s.Port, Protocol(s.Protocol)
	}
	if out.Flags&FlagPersistent == 0 {
		out.Timeout = 0
	}
	switch {
	case s.Netmask.Is4():
		b := s.Netmask.AsSlice()
		if a, ok := netip.AddrFromSlice(b); ok && a != netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			out.Netmask = netip.PrefixFrom(a, 32)
		}
	case s.Netmask.Is6():
		if n := s.Netmask.Bits(); n > 0 && n < 128 {
			out.Netmask = netip.PrefixFrom(netip.IPv6Unspecified(), n)
		}
	}
	return out
}

func toIPVSDest(d Destination) ipvs.Destination {
	f := ipvs.INET
	if d.Addr.Is6() {
		f = ipvs.INET6
	}
	return ipvs.Destination{
		Address:        d.Addr,
		Port:           d.Port,
		Family:         f,
		FwdMethod:      toFwd(d.Method),
		Weight:         d.Weight,
		UpperThreshold: d.UThreshold,
		LowerThreshold: d.LThreshold,
		TunnelType:     ipvs.TunnelType(d.TunnelType),
		TunnelPort:     d.TunnelPort,
		TunnelFlags:    ipvs.TunnelFlags(d.TunnelFlags),
	}
}

func fromIPVSDest(d ipvs.Destination) Destination {
	out := Destination{
		DestKey:    DestKey{Addr: d.Address.Unmap(), Port: d.Port},
		Method:     fromFwd(d.FwdMethod),
		Weight:     d.Weight,
		UThreshold: d.UpperThreshold,
		LThreshold: d.LowerThreshold,
	}
	if out.Method == Tunnel {
		out.TunnelType, out.TunnelPort, out.TunnelFlags = uint8(d.TunnelType), d.TunnelPort, uint16(d.TunnelFlags)
	}
	return out
}

// The kernel's IP_VS_CONN_F_* values and cloudflare/ipvs's ForwardType
// enumerate the same methods in the same order (MASQ 0, LOCALNODE 1, TUNNEL
// 2, DROUTE 3).
func toFwd(m Method) ipvs.ForwardType {
	switch m {
	case DR:
		return ipvs.DirectRoute
	case Tunnel:
		return ipvs.Tunnel
	}
	return ipvs.Masquerade
}

func fromFwd(f ipvs.ForwardType) Method {
	switch f {
	case ipvs.DirectRoute:
		return DR
	case ipvs.Tunnel:
		return Tunnel
	case ipvs.Masquerade:
		return NAT
	}
	return Method(f)
}

// Close closes the netlink connection (cloudflare/ipvs's client has Close,
// its Client interface does not list it).
func (k ipvsKernel) Close() error {
	if c, ok := k.c.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// ReadTable implements TableReader: the kernel's whole table with its
// version and connection counters (what ipvsadm -Ln lists).
func (k ipvsKernel) ReadTable() (KernelTable, error) {
	info, err := k.c.Info()
	if err != nil {
		return KernelTable{}, fmt.Errorf("lvs: IPVS info: %w", err)
	}
	t := KernelTable{Version: info.Version, ConnTableSize: info.ConnectionTableSize}
	ss, err := k.c.Services()
	if errors.Is(err, os.ErrNotExist) {
		return t, nil // an empty dump (see Services)
	}
	if err != nil {
		return t, fmt.Errorf("lvs: listing IPVS services: %w", err)
	}
	for _, s := range ss {
		ks := KernelService{Service: fromIPVSService(s.Service)}
		ds, err := k.c.Destinations(s.Service)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return t, fmt.Errorf("lvs: listing the destinations of %s: %w", ks.ServiceKey, err)
		}
		for _, d := range ds {
			ks.Dests = append(ks.Dests, KernelDest{Destination: fromIPVSDest(d.Destination),
				ActiveConns: d.ActiveConnections, InactiveConns: d.InactiveConnections})
		}
		t.Services = append(t.Services, ks)
	}
	t.Sort()
	return t, nil
}
