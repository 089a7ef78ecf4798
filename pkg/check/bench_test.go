package check

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// rawListener is a TCP listener on 127.0.0.1 that accepts and closes with
// raw system calls on a thread of its own, so that a benchmark counts the
// checker's allocations and not the server's. It stops at cleanup.
func rawListener(tb testing.TB) uint16 {
	tb.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		tb.Fatal(err)
	}
	if err := unix.Listen(fd, 4096); err != nil {
		tb.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			// accept4(fd, NULL, NULL, 0): no address, no allocation.
			c, _, e := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(fd), 0, 0, unix.SOCK_CLOEXEC, 0, 0)
			if e == syscall.EINTR || e == syscall.ECONNABORTED {
				continue
			}
			if e != 0 {
				return // EINVAL after shutdown: stop
			}
			unix.Close(int(c))
		}
	}()
	tb.Cleanup(func() {
		unix.Shutdown(fd, unix.SHUT_RDWR) // wakes the blocked accept
		wg.Wait()
		unix.Close(fd)
	})
	return uint16(sa.(*unix.SockaddrInet4).Port)
}

// BenchmarkTCPCheck is one TCP_CHECK attempt against a local listener:
// allocations and time per attempt.
// Sub-benchmarks: through net.Dialer, and through a Connector.
func BenchmarkTCPCheck(b *testing.B) {
	bench := func(b *testing.B, conn *Connector) {
		port := rawListener(b)
		c := TCP{Conn: Conn{Target: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port), Timeout: time.Second}, Connector: conn}
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if r := c.Check(ctx); !r.Up {
				b.Fatal(r.Reason)
			}
		}
	}
	b.Run("dialer", func(b *testing.B) { bench(b, nil) })
	b.Run("connector", func(b *testing.B) { bench(b, newConnector(b)) })
}

func newConnector(tb testing.TB) *Connector {
	c, err := NewConnector()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c
}

// counting counts a checker's attempts.
type counting struct {
	inner Checker
	n     *atomic.Int64
}

func (c counting) Check(ctx context.Context) Result {
	r := c.inner.Check(ctx)
	c.n.Add(1)
	return r
}

// BenchmarkSchedulerTCP runs 1,000 TCP_CHECKs against a local listener
// through the Scheduler at delay_loop 100ms (10,000 checks/s) until b.N
// attempts ended: allocations per check, and the process's CPU time per
// check (cpu-µs/check, getrusage: the scheduler, its timers and the
// checks, plus the listener's accepts). Run it with a fixed count, e.g.
// -benchtime=20000x: each run waits the 1 s BootstrapDelay first.
func BenchmarkSchedulerTCP(b *testing.B) {
	b.Run("dialer", func(b *testing.B) { benchScheduler(b, nil, false) })
	b.Run("connector", func(b *testing.B) { benchScheduler(b, newConnector(b), false) })
	b.Run("pool", func(b *testing.B) { benchScheduler(b, newConnector(b), true) })
}

// benchScheduler: with pool, the jobs run on a Pool rather than a Scheduler.
func benchScheduler(b *testing.B, conn *Connector, pool bool) {
	const jobs = 1000
	port := rawListener(b)
	var n atomic.Int64
	p := Params{DelayLoop: 100 * time.Millisecond, Retry: 1, DelayBeforeRetry: 100 * time.Millisecond,
		Warmup: 100 * time.Millisecond, Timeout: time.Second}
	var js []Job
	for i := range jobs {
		c := TCP{Conn: Conn{Target: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port), Timeout: time.Second}, Connector: conn}
		js = append(js, Job{ID: "j" + string(rune('a'+i%26)) + string(rune('0'+i/26%10)) + string(rune('0'+i/260)), Checker: counting{c, &n}, Params: p})
	}
	var downs atomic.Int64
	onT := func(t Transition) {
		if !t.Up {
			downs.Add(1)
		}
	}
	var stop func()
	if pool {
		// The Pool's Hooks count, not a wrapper: a wrapper would hide the TCP.
		for i := range js {
			js[i].Checker = js[i].Checker.(counting).inner
		}
		p := &Pool{}
		var tasks []*Task
		for _, j := range js {
			tasks = append(tasks, p.Start(j, Hooks{OnTransition: onT, OnAttempt: func(Result) { n.Add(1) }}))
		}
		stop = func() {
			for _, t := range tasks {
				t.Cancel()
			}
			for _, t := range tasks {
				t.Wait()
			}
			p.Close()
		}
	} else {
		s := &Scheduler{OnTransition: onT}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); s.Run(ctx, js) }()
		stop = func() { cancel(); <-done }
	}
	// Wait for the first round so that start-up is not measured.
	for n.Load() < jobs {
		time.Sleep(10 * time.Millisecond)
	}
	var ru0, ru1 unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru0)
	start := n.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for n.Load()-start < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	unix.Getrusage(unix.RUSAGE_SELF, &ru1)
	got := n.Load() - start
	stop()
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
	b.ReportMetric(float64(cpu.Microseconds())/float64(got), "cpu-µs/check")
	if d := downs.Load(); d > 0 {
		b.Errorf("%d checks went down against a live listener", d)
	}
}
