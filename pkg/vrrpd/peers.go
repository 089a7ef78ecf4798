package vrrpd

// Peers: every other router heard on an instance's VRID, for `vrrpctl
// peers` and status. keepalived shows none of this; its users learn of a
// misconfigured peer (another password, another interval, a unicast peer
// list that leaves one out) or of two masters at once only when traffic is
// lost. Each advert updates its sender's record in place: no allocation on
// the packet path once a peer is known.

import (
	"net/netip"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vrrpkit/vrrpkit/pkg/vrrp"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// maxPeers bounds an instance's peer list: a segment has a handful of
// routers, and spoofed sources must not grow vrrpd's memory. Beyond it the
// least recently heard peer is forgotten.
const maxPeers = 32

type peerRecord struct {
	addr             netip.Addr
	priority         uint8
	interval         time.Duration
	first, last      time.Time
	adverts          uint64
	heardWhileMaster uint64
	drops            [vrrp.NumDropReasons]uint64
}

// peerLocked returns src's record, creating it (and forgetting the least
// recently heard peer when full). The caller holds the engine's mu.
func (in *instance) peerLocked(src netip.Addr, now time.Time) *peerRecord {
	for _, p := range in.peers {
		if p.addr == src {
			return p
		}
	}
	if len(in.peers) < maxPeers {
		p := &peerRecord{addr: src, first: now}
		in.peers = append(in.peers, p)
		return p
	}
	// Full: reuse the least recently heard record, so that a flood of
	// spoofed sources allocates nothing.
	oldest := in.peers[0]
	for _, q := range in.peers {
		if q.last.Before(oldest.last) {
			oldest = q
		}
	}
	*oldest = peerRecord{addr: src, first: now}
	return oldest
}

// heardLocked records an accepted advert from src (mismatch: a reason it
// was flagged but accepted, or 0).
func (in *instance) heardLocked(rx *vrrp.Received, interval time.Duration, mismatch vrrp.DropReason, now time.Time) {
	p := in.peerLocked(rx.Src, now)
	p.priority, p.interval, p.last = rx.Priority, interval, now
	p.adverts++
	if mismatch != 0 {
		p.drops[mismatch]++
	}
	if rx.Priority != 0 && in.m.State() == vrrp.StateMaster {
		p.heardWhileMaster++
		in.counters.otherMaster++
	}
}

// droppedLocked records an advert from src that was dropped for r.
func (in *instance) droppedLocked(src netip.Addr, r vrrp.DropReason, now time.Time) {
	if !src.IsValid() {
		return
	}
	p := in.peerLocked(src, now)
	p.last = now
	p.drops[r]++
}

func (in *instance) peersPB() []*pb.PeerStatus {
	out := make([]*pb.PeerStatus, 0, len(in.peers))
	for _, p := range in.peers {
		ps := &pb.PeerStatus{
			Address: p.addr.String(), Priority: uint32(p.priority), Adverts: p.adverts,
			FirstHeard: timestamppb.New(p.first), LastHeard: timestamppb.New(p.last),
			HeardWhileMaster: p.heardWhileMaster,
		}
		if p.interval > 0 {
			ps.AdvertInterval = durationpb.New(p.interval)
		}
		for r, n := range p.drops {
			if n > 0 {
				ps.Drops = append(ps.Drops, &pb.DropCount{Reason: vrrp.DropReason(r).String(), Count: n})
			}
		}
		out = append(out, ps)
	}
	return out
}
