package lvs

import (
	"os"
	"testing"

	"github.com/cloudflare/ipvs"
)

// emptyClient answers as cloudflare/ipvs v0.12.0 does for an empty IPVS
// table: a dump without messages is os.ErrNotExist.
type emptyClient struct{ ipvs.Client }

func (emptyClient) Services() ([]ipvs.ServiceExtended, error) { return nil, os.ErrNotExist }
func (emptyClient) Destinations(ipvs.Service) ([]ipvs.DestinationExtended, error) {
	return nil, os.ErrNotExist
}

// The real kernel showed it (TestGuest*): an empty table or a service
// without destinations must read as empty, not fail every Reconcile.
func TestKernelEmptyDump(t *testing.T) {
	k := ipvsKernel{c: emptyClient{}}
	if ss, err := k.Services(); err != nil || len(ss) != 0 {
		t.Errorf("Services() = %v, %v; want none, no error", ss, err)
	}
	if ds, err := k.Destinations(web); err != nil || len(ds) != 0 {
		t.Errorf("Destinations() = %v, %v; want none, no error", ds, err)
	}
}
