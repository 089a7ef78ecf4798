package netlab

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// PingMonitor is a client that pings one address at a fixed rate, as a
// user's traffic would, and measures the outages a fault causes: the
// longest run of unanswered requests.
type PingMonitor struct {
	every  time.Duration
	conn   *net.IPConn
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sender chan struct{} // closed when the sender has stopped
	stop   sync.Once

	mu       sync.Mutex
	sent     []time.Time // by seq-1
	answered []bool
}

// PingMonitor starts pinging addr (IPv4) from the host every interval
// until Stop.
func (h *Host) PingMonitor(addr netip.Addr, every time.Duration) (*PingMonitor, error) {
	if !addr.Is4() {
		return nil, fmt.Errorf("netlab: host %s: ping monitor: %v is not IPv4", h.name, addr)
	}
	var conn *net.IPConn
	if err := h.InNetns(func() error {
		pc, err := net.ListenPacket("ip4:icmp", "0.0.0.0")
		if err != nil {
			return err
		}
		conn = pc.(*net.IPConn)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("netlab: host %s: ping monitor: %w", h.name, err)
	}
	var idb [2]byte
	if _, err := rand.Read(idb[:]); err != nil {
		conn.Close()
		return nil, err
	}
	id := binary.BigEndian.Uint16(idb[:])
	ctx, cancel := context.WithCancel(context.Background())
	m := &PingMonitor{every: every, conn: conn, cancel: cancel, sender: make(chan struct{})}
	dst := &net.IPAddr{IP: addr.AsSlice()}
	m.wg.Add(2)
	go func() { // sender
		defer m.wg.Done()
		defer close(m.sender)
		t := time.NewTicker(every)
		defer t.Stop()
		for seq := 1; ; seq++ {
			m.mu.Lock()
			m.sent = append(m.sent, time.Now())
			m.answered = append(m.answered, false)
			m.mu.Unlock()
			_, _ = conn.WriteTo(echoRequest(8, id, uint16(seq)), dst)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	go func() { // receiver
		defer m.wg.Done()
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			src, ok := netip.AddrFromSlice(from.(*net.IPAddr).IP)
			b := buf[:n]
			if !ok || src.Unmap() != addr || len(b) < 8 || b[0] != 0 || binary.BigEndian.Uint16(b[4:]) != id {
				continue
			}
			seq := int(binary.BigEndian.Uint16(b[6:]))
			m.mu.Lock()
			// seq wraps at 65536 requests (22 min at 20 ms): map it to the
			// latest request with that number.
			for i := len(m.sent) - 1; i >= 0; i-- {
				if (i+1)&0xffff == seq {
					m.answered[i] = true
					break
				}
			}
			m.mu.Unlock()
		}
	}()
	return m, nil
}

// Answered is how many requests have been answered so far.
func (m *PingMonitor) Answered() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, a := range m.answered {
		if a {
			n++
		}
	}
	return n
}

// AnsweredSince reports whether every request sent in the last d (and at
// least one) has been answered, leaving grace for the last reply.
func (m *PingMonitor) AnsweredSince(d time.Duration) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	from := time.Now().Add(-d)
	grace := time.Now().Add(-2 * m.every)
	n := 0
	for i, at := range m.sent {
		if at.Before(from) || at.After(grace) {
			continue
		}
		if !m.answered[i] {
			return false
		}
		n++
	}
	return n > 0
}

func (m *PingMonitor) lastAnswered() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.answered) > 0 && m.answered[len(m.answered)-1]
}

// PingOutage is one run of unanswered requests.
type PingOutage struct {
	// From is when the first unanswered request was sent; Length is from
	// then to the first answered request after the run.
	From   time.Time
	Length time.Duration
	Lost   int
}

// Stop ends the monitor and returns the longest outage, the number of
// requests sent and answered. It waits up to pingTimeout for the reply to
// the last request; a run still unanswered at the end counts up to the
// last request. Calling it again (a test's cleanup) returns the same
// figures.
func (m *PingMonitor) Stop() (worst PingOutage, sent, answered int) {
	m.stop.Do(func() {
		m.cancel()
		<-m.sender
		for deadline := time.Now().Add(pingTimeout); time.Now().Before(deadline) && !m.lastAnswered(); {
			time.Sleep(m.every / 4)
		}
		m.conn.Close()
		m.wg.Wait()
	})
	m.mu.Lock()
	defer m.mu.Unlock()
	start := -1
	for i := range m.sent {
		if m.answered[i] {
			answered++
			if start >= 0 {
				if o := (PingOutage{From: m.sent[start], Length: m.sent[i].Sub(m.sent[start]), Lost: i - start}); o.Length > worst.Length {
					worst = o
				}
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		last := len(m.sent) - 1
		if o := (PingOutage{From: m.sent[start], Length: m.sent[last].Sub(m.sent[start]) + m.every, Lost: last - start + 1}); o.Length > worst.Length {
			worst = o
		}
	}
	return worst, len(m.sent), answered
}
