package ctlview

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// Peers is `vrrpctl peers --json`: per instance, the other routers heard on
// its VRID.
type Peers struct {
	VRRPInstances []InstancePeers `json:"vrrp_instances"`
}

// InstancePeers is one instance's view of its segment.
type InstancePeers struct {
	Name            string `json:"name"`
	Interface       string `json:"interface"`
	VirtualRouterID uint32 `json:"virtual_router_id"`
	State           string `json:"state"`
	// Adverts from another master while this one was MASTER: the
	// split-brain counter.
	OtherMasterHeard uint64 `json:"other_master_heard"`
	Peers            []Peer `json:"peers"`
}

// Peer is another router heard on the VRID.
type Peer struct {
	Address  string `json:"address"`
	Priority uint32 `json:"priority"`
	// In its last advert, in seconds (JSON numbers, as advert_int in
	// keepalived.conf); nil when not known.
	AdvertInterval   *float64          `json:"advert_interval"`
	FirstHeard       *Time             `json:"first_heard"`
	LastHeard        *Time             `json:"last_heard"`
	Adverts          uint64            `json:"adverts"`
	HeardWhileMaster uint64            `json:"heard_while_master"`
	Drops            map[string]uint64 `json:"drops"`
}

// PeersFromProto picks the peers out of the supervisor's status.
func PeersFromProto(st *pb.SupervisorStatusResponse) *Peers {
	out := &Peers{VRRPInstances: []InstancePeers{}}
	for _, in := range st.GetInstances() {
		ip := InstancePeers{Name: in.GetName(), Interface: in.GetInterface(), VirtualRouterID: in.GetVrid(),
			State: State(in.GetState()), OtherMasterHeard: in.GetCounters().GetOtherMasterHeard()}
		ip.Peers = peers(in.GetPeers())
		out.VRRPInstances = append(out.VRRPInstances, ip)
	}
	return out
}

func peers(list []*pb.PeerStatus) []Peer {
	out := []Peer{}
	for _, p := range list {
		v := Peer{Address: p.GetAddress(), Priority: p.GetPriority(), FirstHeard: fromTimestamp(p.GetFirstHeard()),
			LastHeard: fromTimestamp(p.GetLastHeard()), Adverts: p.GetAdverts(), HeardWhileMaster: p.GetHeardWhileMaster(),
			Drops: map[string]uint64{}}
		if d := p.GetAdvertInterval(); d != nil {
			s := d.AsDuration().Seconds()
			v.AdvertInterval = &s
		}
		for _, d := range p.GetDrops() {
			v.Drops[d.GetReason()] = d.GetCount()
		}
		out = append(out, v)
	}
	return out
}

// WritePeersJSON writes p as indented JSON.
func WritePeersJSON(w io.Writer, p *Peers) error { return writeJSON(w, p, "the peers") }

// WritePeersText writes one line per peer heard, and for each instance that
// heard another master while MASTER a warning line first, since that is
// what someone running `vrrpctl peers` is looking for.
func WritePeersText(w io.Writer, p *Peers, now time.Time) error {
	var b strings.Builder
	for _, in := range p.VRRPInstances {
		if in.OtherMasterHeard > 0 {
			fmt.Fprintf(&b, "SPLIT BRAIN? %s heard another master %d times while MASTER\n", in.Name, in.OtherMasterHeard)
		}
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tINTERFACE\tVRID\tSTATE\tPEER\tPRIO\tINTERVAL\tLAST HEARD\tADVERTS\tAS MASTER\tDROPS")
	for _, in := range p.VRRPInstances {
		if len(in.Peers) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t(none heard)\n", in.Name, in.Interface, in.VirtualRouterID, in.State)
		}
		for _, pe := range in.Peers {
			interval, heard := "-", "-"
			if pe.AdvertInterval != nil {
				interval = (time.Duration(*pe.AdvertInterval * float64(time.Second))).String()
			}
			if pe.LastHeard != nil {
				heard = now.Sub(pe.LastHeard.Time).Round(100*time.Millisecond).String() + " ago"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%s\t%s\t%d\t%d\t%s\n", in.Name, in.Interface, in.VirtualRouterID, in.State,
				pe.Address, pe.Priority, interval, heard, pe.Adverts, pe.HeardWhileMaster, drops(pe.Drops))
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing the peers table: %w", err)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
