package snapshot

import (
	"github.com/vrrpkit/vrrpkit/pkg/config"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// defaultInterface is keepalived's compiled-in default_interface
// (keepalived/include/vrrp_ipaddress.h: DFLT_INT).
const defaultInterface = "eth0"

// statics fills the snapshot's static_ipaddress, static_routes and
// static_rules, which vrrpd holds whatever the VRRP state.
//
// A static address without "dev" goes on default_interface, else on eth0
// (vrrp/vrrp_ipaddress.c alloc_ipaddress: get_default_if, with
// vrrp/vrrp_if.c falling back on DFLT_INT); a route or rule gets no device
// it was not given, as for virtual_routes.
func statics(cfg *config.Config, s *pb.ConfigSnapshot) {
	dev := cfg.GlobalDefs.DefaultInterface
	if dev == "" {
		dev = defaultInterface
	}
	for _, a := range cfg.StaticIPAddresses {
		out := address(a)
		if out.Dev == "" {
			out.Dev = dev
		}
		s.StaticIpaddress = append(s.StaticIpaddress, out)
	}
	for _, r := range cfg.StaticRoutes {
		s.StaticRoutes = append(s.StaticRoutes, routeOf(r))
	}
	for _, r := range cfg.StaticRules {
		s.StaticRules = append(s.StaticRules, ruleOf(r))
	}
}
