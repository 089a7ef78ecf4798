package vrrpd

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/netstate"
	"github.com/vrrpkit/vrrpkit/pkg/vrrp"
	"github.com/vrrpkit/vrrpkit/pkg/vrrpnet"
)

// The fakes of this file stand in for the kernel: a clock that moves only
// when told, a LAN that records what the engine sends and lets a test
// inject what it receives, an address table and links that are always up.

// fakeClock is a Clock whose time moves only in advance. Its sleeper lets a
// test wait until the loop has handled everything due and sleeps again.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
	sl  *fakeSleeper
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), sl: newFakeSleeper()}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewSleeper() (Sleeper, error) { return c.sl, nil }

// advanceTo moves the time to t, wakes the loop and waits until it sleeps
// again; it returns t.
func (c *fakeClock) advanceTo(tb testing.TB, t time.Time) time.Time {
	tb.Helper()
	c.mu.Lock()
	if t.Before(c.now) {
		c.mu.Unlock()
		tb.Fatalf("clock moved backwards from %v to %v", c.now, t)
	}
	c.now = t
	c.mu.Unlock()
	c.sl.Wake()
	c.sl.settle(tb)
	return t
}

func (c *fakeClock) advance(tb testing.TB, d time.Duration) time.Time {
	tb.Helper()
	return c.advanceTo(tb, c.Now().Add(d))
}

type fakeSleeper struct {
	mu       sync.Mutex
	cond     *sync.Cond
	asleep   bool
	woken    bool
	deadline time.Time
}

func newFakeSleeper() *fakeSleeper {
	s := &fakeSleeper{}
	s.cond = sync.NewCond(&s.mu)
	return s
}

func (s *fakeSleeper) Sleep(deadline time.Time, _ bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deadline, s.asleep = deadline, true
	s.cond.Broadcast()
	for !s.woken {
		s.cond.Wait()
	}
	s.woken, s.asleep = false, false
}

func (s *fakeSleeper) Wake() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.woken = true
	s.cond.Broadcast()
}

func (s *fakeSleeper) Close() error { return nil }

// settle waits until the loop sleeps with no wake-up pending.
func (s *fakeSleeper) settle(tb testing.TB) time.Time {
	tb.Helper()
	done := make(chan time.Time, 1)
	go func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for !s.asleep || s.woken {
			s.cond.Wait()
		}
		done <- s.deadline
	}()
	select {
	case d := <-done:
		return d
	case <-time.After(10 * time.Second):
		tb.Fatal("the engine's loop did not go back to sleep in 10s")
		return time.Time{}
	}
}

// sent is one advert the engine wrote.
type sent struct {
	iface    string
	src, dst netip.Addr
	pkt      vrrp.Packet
	at       time.Time
}

// fakeNet is a LAN of fake sockets.
type fakeNet struct {
	clock *fakeClock
	mu    sync.Mutex
	conns []*fakeConn
	sent  []sent
	// announced lists the addresses announced, in order.
	announced []netip.Addr
	primary   netip.Addr
	// announcedAt is when each announcement was made, by the wall clock
	// (the GARP pacer runs on real time).
	announcedAt []time.Time
}

func (n *fakeNet) Listen(_ context.Context, cfg vrrpnet.Config) (Conn, error) {
	c := &fakeConn{n: n, cfg: cfg, in: make(chan vrrpnet.Message, 64), closed: make(chan struct{})}
	n.mu.Lock()
	n.conns = append(n.conns, c)
	n.mu.Unlock()
	return c, nil
}

func (n *fakeNet) OpenAnnouncer(context.Context, vrrpnet.AnnouncerConfig) (Announcer, error) {
	return fakeAnnouncer{n}, nil
}

func (n *fakeNet) PrimaryAddr(string, int) (netip.Addr, error) { return n.primary, nil }

// inject delivers an advert from src to every open socket.
func (n *fakeNet) inject(tb testing.TB, p vrrp.Packet, src netip.Addr, ttl uint8) {
	tb.Helper()
	dst := vrrpnet.DefaultGroup(4)
	b, err := p.AppendBinary(nil, src, dst)
	if err != nil {
		tb.Fatal(err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range n.conns {
		select {
		case <-c.closed:
		default:
			c.in <- vrrpnet.Message{Payload: b, Src: src, Dst: dst, TTL: ttl, IfIndex: 1}
		}
	}
}

func (n *fakeNet) sentAdverts() []sent {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]sent(nil), n.sent...)
}

func (n *fakeNet) announcedCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.announced)
}

type fakeConn struct {
	n      *fakeNet
	cfg    vrrpnet.Config
	in     chan vrrpnet.Message
	closed chan struct{}
	once   sync.Once
}

func (c *fakeConn) ReadFrom(buf []byte) (vrrpnet.Message, error) {
	select {
	case m := <-c.in:
		m.Payload = buf[:copy(buf, m.Payload)]
		return m, nil
	case <-c.closed:
		return vrrpnet.Message{}, net.ErrClosed
	}
}

func (c *fakeConn) WriteTo(payload []byte, src, dst netip.Addr) error {
	var p vrrp.Packet
	if err := vrrp.Parse(payload, src, dst, false, &p); err != nil {
		return err
	}
	p.Addrs = append([]netip.Addr(nil), p.Addrs...)
	c.n.mu.Lock()
	defer c.n.mu.Unlock()
	c.n.sent = append(c.n.sent, sent{iface: c.cfg.Interface, src: src, dst: dst, pkt: p, at: c.n.clock.Now()})
	return nil
}

func (c *fakeConn) Pending() bool { return len(c.in) > 0 }
func (c *fakeConn) IfIndex() int  { return 1 }
func (c *fakeConn) Group() netip.Addr {
	if c.cfg.Group.IsValid() {
		return c.cfg.Group
	}
	return vrrpnet.DefaultGroup(c.cfg.Family)
}
func (c *fakeConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

type fakeAnnouncer struct{ n *fakeNet }

func (a fakeAnnouncer) GratuitousARP(ip netip.Addr) error {
	a.n.mu.Lock()
	defer a.n.mu.Unlock()
	a.n.announced = append(a.n.announced, ip)
	a.n.announcedAt = append(a.n.announcedAt, time.Now())
	return nil
}
func (a fakeAnnouncer) UnsolicitedNA(ip netip.Addr) error { return a.GratuitousARP(ip) }
func (a fakeAnnouncer) Close() error                      { return nil }

// fakeAddrs is an address table.
type fakeAddrs struct {
	mu   sync.Mutex
	held map[netip.Prefix]bool
	ops  []string // "+10.0.0.1/32", "-10.0.0.1/32"
}

func newFakeAddrs() *fakeAddrs { return &fakeAddrs{held: map[netip.Prefix]bool{}} }

func (f *fakeAddrs) Add(_ context.Context, a netstate.Address) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.held[a.Prefix] = true
	f.ops = append(f.ops, "+"+a.Prefix.String())
	return nil
}

func (f *fakeAddrs) Remove(_ context.Context, a netstate.Address) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.held, a.Prefix)
	f.ops = append(f.ops, "-"+a.Prefix.String())
	return nil
}

func (f *fakeAddrs) Has(a netstate.Address) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held[a.Prefix], nil
}

func (f *fakeAddrs) Adopt(netstate.Address) {}

func (f *fakeAddrs) opsCopy() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ops...)
}

// fakeLinks: every interface exists and is up; WatchLinks reports them
// once and then whatever a test sends on changes.
type fakeLinks struct {
	changes chan netstate.LinkState
}

func (fakeLinks) LinkByName(name string) (netstate.LinkState, error) {
	return netstate.LinkState{Name: name, Index: 1, Up: true, Exists: true}, nil
}

func (l fakeLinks) WatchLinks(ctx context.Context, names []string, fn func(netstate.LinkState)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ls := <-l.changes:
			fn(ls)
		}
	}
}

// rig is one engine on the fake LAN, its loop running.
type rig struct {
	e      *Engine
	clock  *fakeClock
	net    *fakeNet
	addrs  *fakeAddrs
	links  fakeLinks
	cancel context.CancelFunc
	done   chan error
}

func newRig(t *testing.T) *rig {
	t.Helper()
	clk := newFakeClock()
	r := &rig{clock: clk, net: &fakeNet{clock: clk, primary: netip.MustParseAddr("192.0.2.1")},
		addrs: newFakeAddrs(), links: fakeLinks{changes: make(chan netstate.LinkState)}, done: make(chan error, 1)}
	r.e = New(Options{Clock: clk, Addresses: r.addrs, Links: r.links, Network: r.net})
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.e.Run(ctx) }()
	clk.sl.settle(t)
	t.Cleanup(r.stop)
	return r
}

// stop ends the engine's loop and waits for it.
func (r *rig) stop() {
	r.cancel()
	r.clock.sl.Wake()
	<-r.done
	r.done <- nil // a second stop returns at once
}

// eventually polls cond until it holds or 5 s pass.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
