package vmlab_test

import (
	"net/netip"
	"testing"

	"github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"

	"github.com/vrrpkit/vrrpkit/pkg/vmlab"
)

// TestInVM runs this package's TestGuest* tests inside a VM with IPVS: the
// pattern for a package whose own tests need the kernel's IPVS.
func TestInVM(t *testing.T) {
	t.Parallel()
	vmlab.RunTestsInVM(t, vmlab.Options{Modules: []string{"ip_vs_wrr"}}, "^TestGuest")
}

// TestGuestIPVS programs IPVS from an ordinary Go test, as root in the VM.
func TestGuestIPVS(t *testing.T) {
	vmlab.RequireVM(t)
	c, err := ipvs.New()
	if err != nil {
		t.Fatal(err)
	}
	svc := ipvs.Service{
		Address: netip.MustParseAddr("192.0.2.10"), Port: 443, Family: ipvs.INET, Protocol: ipvs.TCP,
		Netmask: netmask.MaskFrom(32, 32), Scheduler: "wrr",
	}
	if err := c.CreateService(svc); err != nil {
		t.Fatal(err)
	}
	d := ipvs.Destination{Address: netip.MustParseAddr("192.0.2.20"), Port: 443, Family: ipvs.INET, Weight: 7, FwdMethod: ipvs.DirectRoute}
	if err := c.CreateDestination(svc, d); err != nil {
		t.Fatal(err)
	}
	got, err := c.Service(svc)
	if err != nil || got.Scheduler != "wrr" {
		t.Fatalf("service back = %+v, %v; want scheduler wrr", got, err)
	}
	ds, err := c.Destinations(svc)
	if err != nil || len(ds) != 1 || ds[0].Weight != 7 || ds[0].FwdMethod != ipvs.DirectRoute {
		t.Fatalf("destinations back = %+v, %v; want one, weight 7, direct routing", ds, err)
	}
}
