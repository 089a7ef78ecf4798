package vrrpd

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vrrpkit/vrrpkit/pkg/netstate"
	"github.com/vrrpkit/vrrpkit/pkg/vrrp"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// subscriptionBuffer is how many events a subscriber may fall behind
// before it is cut off. A cut-off subscriber resubscribes and starts from a
// fresh snapshot, so nothing is lost but the history in between; the engine
// never waits for a slow reader.
const subscriptionBuffer = 4096

// Subscription receives the engine's events: first an EventSnapshot, then
// transitions and address changes in the order they happened. C is closed
// when the subscription ends (Close, the engine stopping, or the reader
// falling subscriptionBuffer events behind: see Overflowed).
type Subscription struct {
	C <-chan *pb.VrrpEvent

	e          *Engine
	c          chan *pb.VrrpEvent
	closed     bool // guarded by e.mu
	overflowed bool // guarded by e.mu
}

// Subscribe starts a subscription. The snapshot and the events after it
// are taken under one lock, so the subscriber's view is never torn.
func (e *Engine) Subscribe() *Subscription {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := make(chan *pb.VrrpEvent, subscriptionBuffer)
	sub := &Subscription{C: c, e: e, c: c}
	snap := &pb.EventSnapshot{}
	for _, in := range e.order {
		st := &pb.InstanceState{Name: in.name(), State: stateToPB(in.m.State()), EffectivePriority: uint32(in.m.Priority())}
		if in.m.State() == vrrp.StateMaster {
			for _, a := range in.addrs {
				st.Addresses = append(st.Addresses, a.Prefix.String())
			}
		}
		snap.Instances = append(snap.Instances, st)
	}
	e.seq++
	c <- &pb.VrrpEvent{Seq: e.seq, At: timestamppb.New(e.clock.Now()), Generation: e.generation,
		Event: &pb.VrrpEvent_Snapshot{Snapshot: snap}}
	if e.stopped {
		close(c)
		sub.closed = true
		return sub
	}
	e.subs[sub] = struct{}{}
	return sub
}

// Close ends the subscription.
func (s *Subscription) Close() {
	s.e.mu.Lock()
	defer s.e.mu.Unlock()
	s.closeLocked()
}

// Overflowed reports whether the subscription was cut off for falling
// behind.
func (s *Subscription) Overflowed() bool {
	s.e.mu.Lock()
	defer s.e.mu.Unlock()
	return s.overflowed
}

func (s *Subscription) closeLocked() {
	if s.closed {
		return
	}
	s.closed = true
	close(s.c)
	delete(s.e.subs, s)
}

// publishLocked sends ev to every subscriber.
func (e *Engine) publishLocked(at time.Time, ev *pb.VrrpEvent) {
	if len(e.subs) == 0 {
		return
	}
	e.seq++
	ev.Seq, ev.At, ev.Generation = e.seq, timestamppb.New(at), e.generation
	for sub := range e.subs {
		select {
		case sub.c <- ev:
		default:
			e.log.Warn("event subscriber fell behind; cutting it off (it resubscribes from a snapshot)")
			sub.overflowed = true
			sub.closeLocked()
		}
	}
}

func (e *Engine) publishAddressLocked(in *instance, a netstate.Address, held bool) {
	e.publishLocked(e.clock.Now(), &pb.VrrpEvent{Event: &pb.VrrpEvent_Address{Address: &pb.AddressChange{
		Instance: in.name(), Prefix: a.Prefix.String(), Dev: a.Dev, Held: held,
	}}})
}
