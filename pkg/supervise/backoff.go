package supervise

import (
	"fmt"
	"math"
	"time"
)

// Backoff is the restart policy: how long to wait before restarting a child
// that exited on its own.
//
// The first restart of a run of quick exits is immediate. The n-th (n >= 2)
// waits Initial * Multiplier^(n-2), at most Max, minus a random fraction of up
// to Jitter of that (so Max is never exceeded and children that crash
// together do not restart in lockstep). A child that stayed up for at least
// Stable ends the run: its next restart is immediate again.
type Backoff struct {
	Initial    time.Duration // wait before the second restart in a row
	Max        time.Duration // upper bound of any wait
	Multiplier float64       // growth per restart, >= 1
	Jitter     float64       // fraction in [0, 1) taken off at random
	Stable     time.Duration // uptime after which a child counts as healthy
}

// DefaultBackoff is the policy of the vrrpkit supervisor: 100 ms doubling up
// to 30 s, 20 % jitter, reset after a minute of uptime.
func DefaultBackoff() Backoff {
	return Backoff{
		Initial:    100 * time.Millisecond,
		Max:        30 * time.Second,
		Multiplier: 2,
		Jitter:     0.2,
		Stable:     time.Minute,
	}
}

// Validate reports whether b is usable.
func (b Backoff) Validate() error {
	switch {
	case b.Initial <= 0:
		return fmt.Errorf("backoff: Initial %v must be positive", b.Initial)
	case b.Max < b.Initial:
		return fmt.Errorf("backoff: Max %v is less than Initial %v", b.Max, b.Initial)
	case !(b.Multiplier >= 1) || math.IsInf(b.Multiplier, 0):
		return fmt.Errorf("backoff: Multiplier %v must be a finite number >= 1", b.Multiplier)
	case !(b.Jitter >= 0 && b.Jitter < 1):
		return fmt.Errorf("backoff: Jitter %v must be in [0, 1)", b.Jitter)
	case b.Stable <= 0:
		return fmt.Errorf("backoff: Stable %v must be positive", b.Stable)
	}
	return nil
}

// Delay returns the wait before restart n (1-based) of a run of quick exits,
// given r, a random number in [0, 1). It is a pure function of its inputs.
func (b Backoff) Delay(n int, r float64) time.Duration {
	if n <= 1 {
		return 0
	}
	base := float64(b.Initial) * math.Pow(b.Multiplier, float64(n-2))
	if !(base < float64(b.Max)) { // also catches +Inf
		base = float64(b.Max)
	}
	r = min(max(r, 0), 1)
	return time.Duration(base - base*b.Jitter*r)
}

// restarts counts a run of quick exits and turns it into delays.
type restarts struct {
	policy Backoff
	rand   func() float64
	n      int // restarts in the current run
}

func newRestarts(policy Backoff, rand func() float64) *restarts {
	return &restarts{policy: policy, rand: rand}
}

// next records an exit after uptime and returns the wait before the restart.
func (r *restarts) next(uptime time.Duration) time.Duration {
	if uptime >= r.policy.Stable {
		r.n = 0
	}
	if r.n < math.MaxInt32 {
		r.n++
	}
	if r.n == 1 {
		return 0
	}
	return r.policy.Delay(r.n, r.rand())
}
