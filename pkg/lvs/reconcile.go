package lvs

import (
	"context"
	"errors"
	"fmt"
	"sort"
)

// Kernel is the IPVS table as vrrpd sees it. OpenKernel gives the real one.
type Kernel interface {
	Services() ([]Service, error)
	Destinations(ServiceKey) ([]Destination, error)
	NewService(Service) error
	UpdateService(Service) error
	RemoveService(ServiceKey) error
	NewDestination(ServiceKey, Destination) error
	UpdateDestination(ServiceKey, Destination) error
	RemoveDestination(ServiceKey, DestKey) error
}

// Ownership is the set of IPVS services vrrpkit created (or adopted). Only
// these are ever changed or removed; anything else in the kernel is left
// alone. It lives in vrrpd's memory.
//
// After a vrrpd restart the set is empty; Reconcile then adopts every
// kernel service whose key is in the desired table. Such a service is what
// the configuration asks for, whoever made it (keepalived likewise takes
// over an existing service of the same key: its IP_VS_SO_SET_ADD fails with
// EEXIST and it goes on adding destinations). A service that is in the
// kernel but not in the desired table is never adopted, so what a previous
// vrrpd left behind for a virtual server since removed from the config
// stays until removed by hand: vrrpkit prefers leaking to deleting what it
// cannot prove is its own. The alternative, recording ownership on disk,
// would survive a restart but not a hand edit, and adds a file to trust.
type Ownership struct {
	owned map[ServiceKey]bool
}

// NewOwnership returns an empty set.
func NewOwnership() *Ownership { return &Ownership{owned: map[ServiceKey]bool{}} }

// Owns reports whether k is vrrpkit's.
func (o *Ownership) Owns(k ServiceKey) bool { return o.owned[k] }

// Keys lists the owned services in a stable order (for removal at stop).
func (o *Ownership) Keys() []ServiceKey {
	ks := make([]ServiceKey, 0, len(o.owned))
	for k := range o.owned {
		ks = append(ks, k)
	}
	sortKeys(ks)
	return ks
}

// Op is one kind of change Reconcile made.
type Op string

const (
	AddService   Op = "add-service"
	EditService  Op = "edit-service"
	DelService   Op = "del-service"
	AdoptService Op = "adopt-service"
	AddDest      Op = "add-dest"
	EditDest     Op = "edit-dest"
	DelDest      Op = "del-dest"
)

// Change is one change made to the kernel (or to the ownership, for adopt).
type Change struct {
	Op      Op
	Service ServiceKey
	Dest    DestKey // zero for service changes
}

func (c Change) String() string {
	if c.Dest.Addr.IsValid() {
		return fmt.Sprintf("%s %s -> %s", c.Op, c.Service, c.Dest)
	}
	return fmt.Sprintf("%s %s", c.Op, c.Service)
}

// Changes are the changes of one Reconcile, in the order made.
type Changes []Change

// Reconcile makes the kernel's owned services match desired: creates what
// is missing (including an owned service deleted by hand), edits a changed
// service or destination in place, removes destinations not desired from
// owned services and owned services not desired. It never flushes and never
// touches a service it does not own. It goes on past a failed step and
// returns every failure joined. At stop, Reconcile with an empty Table
// removes exactly what vrrpkit owns.
func Reconcile(ctx context.Context, k Kernel, owned *Ownership, desired Table) (Changes, error) {
	var ch Changes
	var errs []error
	kernelSvcs, err := k.Services()
	if err != nil {
		return nil, fmt.Errorf("lvs: listing IPVS services: %w", err)
	}
	inKernel := make(map[ServiceKey]Service, len(kernelSvcs))
	for _, s := range kernelSvcs {
		inKernel[s.ServiceKey] = s
	}

	// Owned services no longer desired go first (frees nothing the others
	// need, but keeps the table small while it is edited).
	for _, key := range owned.Keys() {
		if _, want := desired.Services[key]; want {
			continue
		}
		if _, ok := inKernel[key]; ok {
			if err := k.RemoveService(key); err != nil {
				errs = append(errs, fmt.Errorf("lvs: removing service %s: %w", key, err))
				continue
			}
			ch = append(ch, Change{Op: DelService, Service: key})
		}
		delete(owned.owned, key)
	}

	for _, key := range desired.Keys() {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		want := desired.Services[key]
		have, exists := inKernel[key]
		switch {
		case !exists:
			if err := k.NewService(want.Service); err != nil {
				errs = append(errs, fmt.Errorf("lvs: adding service %s: %w", key, err))
				continue
			}
			owned.owned[key] = true
			ch = append(ch, Change{Op: AddService, Service: key})
		case !owned.owned[key]:
			owned.owned[key] = true
			ch = append(ch, Change{Op: AdoptService, Service: key})
			fallthrough
		default:
			if !sameService(have, want.Service) {
				if err := k.UpdateService(want.Service); err != nil {
					errs = append(errs, fmt.Errorf("lvs: editing service %s: %w", key, err))
				} else {
					ch = append(ch, Change{Op: EditService, Service: key})
				}
			}
		}
		dch, err := reconcileDests(k, key, exists, want)
		ch = append(ch, dch...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return ch, errors.Join(errs...)
}

func reconcileDests(k Kernel, key ServiceKey, existed bool, want *Entry) (Changes, error) {
	var ch Changes
	var errs []error
	have := map[DestKey]Destination{}
	if existed {
		ds, err := k.Destinations(key)
		if err != nil {
			return nil, fmt.Errorf("lvs: listing destinations of %s: %w", key, err)
		}
		for _, d := range ds {
			have[d.DestKey] = d
		}
	}
	var gone []DestKey
	for dk := range have {
		if _, ok := want.Dests[dk]; !ok {
			gone = append(gone, dk)
		}
	}
	sortDests(gone)
	for _, dk := range gone {
		if err := k.RemoveDestination(key, dk); err != nil {
			errs = append(errs, fmt.Errorf("lvs: removing %s from %s: %w", dk, key, err))
			continue
		}
		ch = append(ch, Change{Op: DelDest, Service: key, Dest: dk})
	}
	wantKeys := make([]DestKey, 0, len(want.Dests))
	for dk := range want.Dests {
		wantKeys = append(wantKeys, dk)
	}
	sortDests(wantKeys)
	for _, dk := range wantKeys {
		d := want.Dests[dk]
		cur, ok := have[dk]
		switch {
		case !ok:
			if err := k.NewDestination(key, d); err != nil {
				errs = append(errs, fmt.Errorf("lvs: adding %s to %s: %w", dk, key, err))
				continue
			}
			ch = append(ch, Change{Op: AddDest, Service: key, Dest: dk})
		case cur != d:
			if err := k.UpdateDestination(key, d); err != nil {
				errs = append(errs, fmt.Errorf("lvs: editing %s of %s: %w", dk, key, err))
				continue
			}
			ch = append(ch, Change{Op: EditDest, Service: key, Dest: dk})
		}
	}
	return ch, errors.Join(errs...)
}

// flagHashed is IP_VS_SVC_F_HASHED: the kernel reports it on every service
// it has hashed; it is not a setting.
const flagHashed uint32 = 0x0002

// The persistence engine is not compared: cloudflare/ipvs v0.12.0 neither
// sets nor reads IPVS_SVC_ATTR_PE_NAME, so the kernel would always differ.
func sameService(have, want Service) bool {
	have.Flags &^= flagHashed
	want.Flags &^= flagHashed
	have.PEName, want.PEName = "", ""
	return have == want
}

func sortDests(ds []DestKey) {
	sort.Slice(ds, func(i, j int) bool {
		if c := ds[i].Addr.Compare(ds[j].Addr); c != 0 {
			return c < 0
		}
		return ds[i].Port < ds[j].Port
	})
}
