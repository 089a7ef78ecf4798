package vrrpd

import (
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// garpPacer spaces the gratuitous ARPs and unsolicited NAs sent through one
// announcer (one interface) by vrrp_garp_interval / vrrp_gna_interval, as
// keepalived does for switches that rate-limit or drop bursts (keepalived
// 2.2.7 vrrp/vrrp_arp.c and vrrp_ndisc.c queue each message until the
// interface's garp_next_time). Instances on one interface share the pacer,
// so their rounds interleave instead of bursting together.
type garpPacer struct {
	ann        Announcer
	log        *slog.Logger
	arp, na    time.Duration
	jobs       chan netip.Addr
	done       chan struct{}
	exited     chan struct{}
	stopOnce   sync.Once
	overflowed bool // read and written by enqueue's callers, under the engine's lock
}

// garpQueue bounds what may wait: 200 instances × garp_master_repeat 5 ×
// a few addresses fits; beyond that a message is dropped with a log line,
// as a full socket would drop it.
const garpQueue = 4096

func newGarpPacer(ann Announcer, arp, na time.Duration, log *slog.Logger, wg *sync.WaitGroup) *garpPacer {
	p := &garpPacer{ann: ann, log: log, arp: arp, na: na, jobs: make(chan netip.Addr, garpQueue), done: make(chan struct{}), exited: make(chan struct{})}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(p.exited)
		p.run()
	}()
	return p
}

// enqueue queues one message; it never blocks.
func (p *garpPacer) enqueue(ip netip.Addr) {
	select {
	case p.jobs <- ip:
		p.overflowed = false
	default:
		if !p.overflowed {
			p.log.Warn("gratuitous ARP/NA queue full; dropping messages", "addr", ip)
		}
		p.overflowed = true
	}
}

func (p *garpPacer) run() {
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for {
		var ip netip.Addr
		select {
		case ip = <-p.jobs:
		case <-p.done:
			return
		}
		var err error
		gap := p.arp
		if ip.Is4() {
			err = p.ann.GratuitousARP(ip)
		} else {
			err, gap = p.ann.UnsolicitedNA(ip), p.na
		}
		if err != nil {
			p.log.Warn("announcing address", "addr", ip, "err", err)
		}
		if gap <= 0 {
			continue
		}
		t.Reset(gap)
		select {
		case <-t.C:
		case <-p.done:
			return
		}
	}
}

// stop ends the pacer and waits for it, so that the announcer can be
// closed; queued messages are dropped (the addresses are being released
// anyway). The pacer never takes the engine's lock, so stop may be called
// with it held.
func (p *garpPacer) stop() {
	p.stopOnce.Do(func() { close(p.done) })
	<-p.exited
}

// stopPacerLocked ends ann's pacer, if it has one, before ann is closed.
// e.mu held.
func (e *Engine) stopPacerLocked(ann Announcer) {
	if p, ok := e.pacers[ann]; ok {
		p.stop()
		delete(e.pacers, ann)
	}
}

// pacerLocked returns the pacer of ann, creating it. e.mu held.
func (e *Engine) pacerLocked(ann Announcer, arp, na time.Duration) *garpPacer {
	if p, ok := e.pacers[ann]; ok {
		return p
	}
	if e.pacers == nil {
		e.pacers = map[Announcer]*garpPacer{}
	}
	p := newGarpPacer(ann, arp, na, e.log, &e.wg)
	e.pacers[ann] = p
	return p
}

// stopPacersLocked ends every pacer. e.mu held.
func (e *Engine) stopPacersLocked() {
	for ann, p := range e.pacers {
		p.stop()
		delete(e.pacers, ann)
	}
}
