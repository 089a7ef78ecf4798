// Command ipvsprobe is vmlab's proof that vrrpd-side IPVS code runs against
// the VM's kernel: through github.com/cloudflare/ipvs (generic netlink,
// like vrrpd) it creates the TCP service 10.0.0.1:80 with scheduler rr and
// real servers 10.0.1.1:80 (weight 1) and 10.0.1.2:80 (weight 2), reads
// them back and prints what the kernel holds as JSON.
package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"sort"

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

func run() error {
	c, err := ipvs.New()
	if err != nil {
		return fmt.Errorf("ipvs client: %w", err)
	}
	info, err := c.Info()
	if err != nil {
		return fmt.Errorf("ipvs info: %w", err)
	}
	svc := ipvs.Service{
		Address: netip.MustParseAddr("10.0.0.1"), Port: 80, Family: ipvs.INET, Protocol: ipvs.TCP,
		Netmask: netmask.MaskFrom(32, 32), Scheduler: "rr",
	}
	if err := c.CreateService(svc); err != nil {
		return fmt.Errorf("create service: %w", err)
	}
	for i, w := range []uint32{1, 2} {
		d := ipvs.Destination{
			Address: netip.AddrFrom4([4]byte{10, 0, 1, byte(i + 1)}), Port: 80, Family: ipvs.INET,
			Weight: w, FwdMethod: ipvs.Masquerade,
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
