// Command ipvsprobe is vmlab's proof that vrrpd-side IPVS code runs against
// the VM's kernel: through github.com/cloudflare/ipvs (generic netlink,
// like vrrpd) it creates a TCP service with masquerading real servers,
// by default 10.0.0.1:80, scheduler rr, real servers 10.0.1.1:80 (weight 1)
// and 10.0.1.2:80 (weight 2), reads everything back and prints what the
// kernel holds as JSON.
//
//	ipvsprobe [-vip 10.0.0.1:80] [-sched rr] [-rs 10.0.1.1:80:1 -rs ...]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"
)

type dest struct {
	Address string `json:"address"`
	Port    uint16 `json:"port"`
	Weight  uint32 `json:"weight"`
	Forward string `json:"forward"`
}

type service struct {
	Address   string `json:"address"`
	Port      uint16 `json:"port"`
	Protocol  string `json:"protocol"`
	Scheduler string `json:"scheduler"`
	Dests     []dest `json:"dests"`
}

type report struct {
	Version  [3]int    `json:"version"`
	Services []service `json:"services"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ipvsprobe:", err)
		os.Exit(1)
	}
}

type realServer struct {
	addr   netip.AddrPort
	weight uint32
}

type rsFlag []realServer

func (f *rsFlag) String() string { return fmt.Sprint(*f) }

// Set takes addr:port:weight.
func (f *rsFlag) Set(v string) error {
	i := strings.LastIndexByte(v, ':')
	if i < 0 {
		return fmt.Errorf("real server %q: want addr:port:weight", v)
	}
	ap, err := netip.ParseAddrPort(v[:i])
	if err != nil {
		return fmt.Errorf("real server %q: %w", v, err)
	}
	w, err := strconv.ParseUint(v[i+1:], 10, 32)
	if err != nil {
		return fmt.Errorf("real server %q weight: %w", v, err)
	}
	*f = append(*f, realServer{ap, uint32(w)})
	return nil
}

func run() error {
	vipFlag := flag.String("vip", "10.0.0.1:80", "virtual service `addr:port` (TCP, IPv4)")
	sched := flag.String("sched", "rr", "IPVS scheduler")
	var rss rsFlag
	flag.Var(&rss, "rs", "real server `addr:port:weight`, repeatable (default 10.0.1.1:80:1 10.0.1.2:80:2)")
	flag.Parse()
	vip, err := netip.ParseAddrPort(*vipFlag)
	if err != nil || !vip.Addr().Is4() {
		return fmt.Errorf("-vip %q: want an IPv4 addr:port", *vipFlag)
	}
	if len(rss) == 0 {
		rss = rsFlag{{netip.MustParseAddrPort("10.0.1.1:80"), 1}, {netip.MustParseAddrPort("10.0.1.2:80"), 2}}
	}
	c, err := ipvs.New()
	if err != nil {
		return fmt.Errorf("ipvs client: %w", err)
	}
	info, err := c.Info()
	if err != nil {
		return fmt.Errorf("ipvs info: %w", err)
	}
	svc := ipvs.Service{
		Address: vip.Addr(), Port: vip.Port(), Family: ipvs.INET, Protocol: ipvs.TCP,
		Netmask: netmask.MaskFrom(32, 32), Scheduler: *sched,
	}
	if err := c.CreateService(svc); err != nil {
		return fmt.Errorf("create service: %w", err)
	}
	for _, rs := range rss {
		d := ipvs.Destination{
			Address: rs.addr.Addr(), Port: rs.addr.Port(), Family: ipvs.INET,
			Weight: rs.weight, FwdMethod: ipvs.Masquerade,
		}
		if err := c.CreateDestination(svc, d); err != nil {
			return fmt.Errorf("create destination %s: %w", d.Address, err)
		}
	}
	svcs, err := c.Services()
	if err != nil {
		return fmt.Errorf("list services: %w", err)
	}
	r := report{Version: info.Version}
	for _, s := range svcs {
		ds, err := c.Destinations(s.Service)
		if err != nil {
			return fmt.Errorf("list destinations of %s:%d: %w", s.Address, s.Port, err)
		}
		out := service{Address: s.Address.String(), Port: s.Port, Protocol: s.Protocol.String(), Scheduler: s.Scheduler}
		for _, d := range ds {
			out.Dests = append(out.Dests, dest{Address: d.Address.String(), Port: d.Port, Weight: d.Weight, Forward: d.FwdMethod.String()})
		}
		sort.Slice(out.Dests, func(i, j int) bool { return out.Dests[i].Address < out.Dests[j].Address })
		r.Services = append(r.Services, out)
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}
