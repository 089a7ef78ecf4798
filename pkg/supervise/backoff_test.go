package supervise

import (
	"math"
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Initial: 100 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2, Jitter: 0.2, Stable: time.Minute}
	ms := time.Millisecond
	for _, tc := range []struct {
		n    int
		r    float64
		want time.Duration
	}{
		{0, 0.5, 0},
		{1, 0.9, 0}, // first restart: at once, no jitter
		{2, 0, 100 * ms},
		{3, 0, 200 * ms},
		{4, 0, 400 * ms},
		{10, 0, 25600 * ms},
		{11, 0, 30 * time.Second}, // 51.2 s capped
		{1000, 0, 30 * time.Second},
		{1 << 30, 0, 30 * time.Second}, // Pow overflows to +Inf
		{2, 0.5, 90 * ms},              // 10 % off
		{2, 0.999999, 80*ms + 20},      // just under 20 % off
		{11, 0.5, 27 * time.Second},
		{2, -1, 100 * ms}, // r clamped to [0, 1]
		{2, 7, 80 * ms},
	} {
		if got := b.Delay(tc.n, tc.r); got != tc.want {
			t.Errorf("Delay(%d, %v) = %v, want %v", tc.n, tc.r, got, tc.want)
		}
	}
}

func TestBackoffValidate(t *testing.T) {
	if err := DefaultBackoff().Validate(); err != nil {
		t.Fatalf("DefaultBackoff: %v", err)
	}
	for name, mut := range map[string]func(*Backoff){
		"zero initial":    func(b *Backoff) { b.Initial = 0 },
		"max below":       func(b *Backoff) { b.Max = b.Initial / 2 },
		"multiplier < 1":  func(b *Backoff) { b.Multiplier = 0.5 },
		"multiplier NaN":  func(b *Backoff) { b.Multiplier = math.NaN() },
		"jitter 1":        func(b *Backoff) { b.Jitter = 1 },
		"jitter negative": func(b *Backoff) { b.Jitter = -0.1 },
		"stable zero":     func(b *Backoff) { b.Stable = 0 },
	} {
		b := DefaultBackoff()
		mut(&b)
		if err := b.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, b)
		}
	}
}

// TestRestarts drives the restart counter with a sequence of exits (uptime
// as measured with the injected clock) and an injected random source.
func TestRestarts(t *testing.T) {
	ms := time.Millisecond
	b := Backoff{Initial: 100 * ms, Max: time.Second, Multiplier: 2, Jitter: 0.5, Stable: time.Minute}
	type exit struct {
		uptime time.Duration
		rand   float64 // what Rand returns if it is called
		want   time.Duration
	}
	for _, tc := range []struct {
		name  string
		exits []exit
	}{
		{"crash loop grows to Max", []exit{
			{0, 0, 0}, {10 * ms, 0, 100 * ms}, {0, 0, 200 * ms}, {0, 0, 400 * ms},
			{0, 0, 800 * ms}, {0, 0, time.Second}, {0, 0, time.Second},
		}},
		{"jitter takes off up to half", []exit{
			{0, 0.99, 0}, {0, 1, 50 * ms}, {0, 0.5, 150 * ms}, {0, 0.25, 350 * ms},
		}},
		{"stable uptime resets", []exit{
			{0, 0, 0}, {0, 0, 100 * ms}, {0, 0, 200 * ms},
			{time.Minute, 0, 0}, // up a whole minute: at once again
			{59 * time.Second, 0, 100 * ms},
			{2 * time.Hour, 0, 0},
			{0, 0, 100 * ms},
		}},
		{"just under stable does not reset", []exit{
			{0, 0, 0}, {time.Minute - 1, 0, 100 * ms}, {time.Minute - 1, 0, 200 * ms},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var next float64
			calls := 0
			r := newRestarts(b, func() float64 { calls++; return next })
			for i, e := range tc.exits {
				next = e.rand
				if got := r.next(e.uptime); got != e.want {
					t.Errorf("exit %d (uptime %v): delay %v, want %v", i, e.uptime, got, e.want)
				}
			}
			if calls == 0 && len(tc.exits) > 1 {
				t.Errorf("Rand never called")
			}
		})
	}
}
