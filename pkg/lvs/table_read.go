package lvs

import (
	"cmp"
	"fmt"
	"slices"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// KernelTable is the kernel's IPVS table as ipvsadm -Ln lists it: every
// service (vrrpkit's or not) with its destinations and their connection
// counts.
type KernelTable struct {
	// Version is IPVS's (major, minor, patch); ConnTableSize the size of its
	// connection hash table.
	Version       [3]int
	ConnTableSize uint32
	Services      []KernelService
}

// KernelService is one service and its destinations.
type KernelService struct {
	Service
	Dests []KernelDest
}

// KernelDest is a destination with its connection counters. Its Method
// is the kernel's IP_VS_CONN_F_* value (1, LOCALNODE, included).
type KernelDest struct {
	Destination
	ActiveConns, InactiveConns uint32
}

// TableReader is a Kernel that can list its table with counters (the
// netlink one; OpenKernel's result implements it).
type TableReader interface {
	ReadTable() (KernelTable, error)
}

// ReadTable reads k's table: with its counters if k is a TableReader,
// else from Services and Destinations (counters 0, version unknown).
func ReadTable(k Kernel) (KernelTable, error) {
	if r, ok := k.(TableReader); ok {
		return r.ReadTable()
	}
	var t KernelTable
	ss, err := k.Services()
	if err != nil {
		return t, fmt.Errorf("lvs: listing IPVS services: %w", err)
	}
	for _, s := range ss {
		ks := KernelService{Service: s}
		ds, err := k.Destinations(s.ServiceKey)
		if err != nil {
			return t, fmt.Errorf("lvs: listing the destinations of %s: %w", s.ServiceKey, err)
		}
		for _, d := range ds {
			ks.Dests = append(ks.Dests, KernelDest{Destination: d})
		}
		t.Services = append(t.Services, ks)
	}
	t.Sort()
	return t, nil
}

// Sort puts services and destinations in ipvsadm's order (libipvs
// ipvs_cmp_services / ipvs_cmp_dests): fwmark, family, protocol, address,
// port; destinations by address, port.
func (t *KernelTable) Sort() {
	slices.SortFunc(t.Services, func(a, b KernelService) int {
		return cmp.Or(cmp.Compare(a.Fwmark, b.Fwmark), cmp.Compare(a.Family, b.Family), cmp.Compare(a.Protocol, b.Protocol),
			a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
	})
	for _, s := range t.Services {
		slices.SortFunc(s.Dests, func(a, b KernelDest) int {
			return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
		})
	}
}

// Placement is where a configured real or sorry server sits in the
// table: a service of its virtual server and its destination key there.
type Placement struct {
	Service ServiceKey
	Dest    DestKey
}

// ServiceKeys are the IPVS services of vs (Desired's keys for it).
func ServiceKeys(vs *pb.VirtualServer) []ServiceKey {
	var out []ServiceKey
	for _, ps := range vs.GetServices() {
		if s, ok := serviceOf(vs, ps); ok {
			out = append(out, s.ServiceKey)
		}
	}
	return out
}

// Places returns where rs (a real or the sorry server of vs) is a
// destination: one Placement per service of vs, with the port rule of
// Desired (a non-NAT destination takes the service's port).
func Places(vs *pb.VirtualServer, rs *pb.LvsRealServer) []Placement {
	var out []Placement
	for _, sk := range ServiceKeys(vs) {
		if d, ok := destOf(sk, rs); ok {
			out = append(out, Placement{Service: sk, Dest: d.DestKey})
		}
	}
	return out
}
