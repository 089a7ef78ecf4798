// Package fanout hands each published value to every current subscriber
// without ever blocking the publisher: a subscriber that falls behind by
// more than its buffer is cut off (its channel closed, Lagged set) rather
// than slowing the daemon or making it hold memory for it. A watcher
// reconnects and starts from a fresh view, as Vrrpd.Events and
// Checkerd.Health clients do.
package fanout

import "sync"

// Hub is a set of subscribers. The zero value is not usable; use New.
type Hub[T any] struct {
	mu     sync.Mutex
	subs   map[*Sub[T]]struct{}
	buffer int
	closed bool
}

// New returns a hub whose subscribers each buffer up to buffer values.
func New[T any](buffer int) *Hub[T] {
	return &Hub[T]{subs: map[*Sub[T]]struct{}{}, buffer: max(buffer, 1)}
}

// Sub is one subscription. C is closed when the subscription ends: by
// Close, by the hub's Close, or for lagging.
type Sub[T any] struct {
	C      <-chan T
	c      chan T
	h      *Hub[T]
	lagged bool // guarded by h.mu
	done   bool // guarded by h.mu
}

// Subscribe starts a subscription to the values published from now on.
func (h *Hub[T]) Subscribe() *Sub[T] {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := make(chan T, h.buffer)
	s := &Sub[T]{C: c, c: c, h: h}
	if h.closed {
		close(c)
		s.done = true
		return s
	}
	h.subs[s] = struct{}{}
	return s
}

// Publish gives v to every subscriber that has room for it and cuts off
// those that have not.
func (h *Hub[T]) Publish(v T) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		select {
		case s.c <- v:
		default:
			s.lagged = true
			s.endLocked()
		}
	}
}

// Close ends every subscription; later ones end at once.
func (h *Hub[T]) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		s.endLocked()
	}
}

// Close ends the subscription.
func (s *Sub[T]) Close() {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	s.endLocked()
}

// Lagged reports whether the subscription was cut off for falling behind.
func (s *Sub[T]) Lagged() bool {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	return s.lagged
}

func (s *Sub[T]) endLocked() {
	if s.done {
		return
	}
	s.done = true
	delete(s.h.subs, s)
	close(s.c)
}
