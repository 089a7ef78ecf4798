package checkerd

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vrrpkit/vrrpkit/pkg/check"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// BenchmarkDetection is checkerd's own share of detection, as
// bench/lvs.sh configures it (TCP_CHECK, delay_loop 1, connect_timeout 1,
// retry 1, delay_before_retry 1) with 1,000 real servers on 127.0.0.1:
// 100 listeners close, spread over 2 s, and each detection time is from
// the close to realServers publishing the down result (what the Health
// stream then sends to vrrpd). keepalived's rule gives at most delay_loop
// + delay_before_retry (the next check fails, the retry fails), 1.5 s at
// the median. Run with -benchtime=1x (each op takes about 10 s).
func BenchmarkDetection(b *testing.B) {
	const servers, kill = 1000, 100
	for b.Loop() {
		lns := make([]*tcpServer, servers)
		rss := make([]*pb.LvsRealServer, servers)
		for i := range lns {
			lns[i] = benchListen(b)
			c := tcpChecker(lns[i].addr, fmt.Sprintf("k.conf:%d", i), time.Second)
			c.Retry = 1
			c.DelayBeforeRetry = durationpb.New(time.Second)
			rss[i] = &pb.LvsRealServer{HealthId: "vs " + lns[i].addr, Checkers: []*pb.LvsChecker{c}}
		}
		r := newRealServers(slog.New(slog.DiscardHandler), check.SnapshotOptions{}, 0)
		_, sub := r.subscribe()
		r.apply(1, &pb.ConfigSnapshot{Generation: 1, VirtualServers: []*pb.VirtualServer{{Name: "vs", RealServers: rss}}})
		ups := 0
		deadline := time.After(30 * time.Second)
		for ups < servers {
			select {
			case ev := <-sub.C:
				if ev.Result.GetUp() {
					ups++
				}
			case <-deadline:
				b.Fatalf("%d of %d up after 30s", ups, servers)
			}
		}
		closed := map[string]time.Time{}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range kill {
				time.Sleep(2 * time.Second / kill)
				s := lns[i*(servers/kill)]
				s.close()
				closed["vs "+s.addr] = time.Now()
			}
		}()
		<-done
		var lat []time.Duration
		deadline = time.After(10 * time.Second)
		for len(lat) < kill {
			select {
			case ev := <-sub.C:
				if at, ok := closed[ev.Result.GetName()]; ok && !ev.Result.GetUp() {
					lat = append(lat, ev.At.Sub(at))
				} else if ev.Result.GetUp() == false {
					b.Errorf("live server %s went down: %s", ev.Result.GetName(), ev.Result.GetDetail())
				}
			case <-deadline:
				b.Fatalf("%d of %d detected after 10s", len(lat), kill)
			}
		}
		sub.Close()
		start := time.Now()
		r.close()
		b.ReportMetric(time.Since(start).Seconds(), "stop-s")
		for _, s := range lns {
			s.close()
		}
		slices.Sort(lat)
		b.ReportMetric(lat[len(lat)/2].Seconds(), "p50-s")
		b.ReportMetric(lat[len(lat)*99/100].Seconds(), "p99-s")
		b.ReportMetric(lat[len(lat)-1].Seconds(), "max-s")
	}
}

// benchListen is listenTCP for a benchmark: a listener on 127.0.0.1 that
// accepts and closes; the caller closes it.
func benchListen(tb testing.TB) *tcpServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &tcpServer{addr: ln.Addr().String(), ln: ln, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepts.Add(1)
			c.Close()
		}
	}()
	return s
}

// BenchmarkMemory is checkerd's memory for 5,000 TCP_CHECKed real servers
// (delay_loop 1) once every one has been checked: the live heap and the
// goroutine stacks per real server after a collection. Run with
// -benchtime=1x.
func BenchmarkMemory(b *testing.B) {
	const servers = 5000
	ln := benchListen(b)
	defer ln.close()
	ap := netip.MustParseAddrPort(ln.addr)
	for b.Loop() {
		rss := make([]*pb.LvsRealServer, servers)
		for i := range rss {
			c := tcpChecker(ln.addr, fmt.Sprintf("k.conf:%d", i), time.Second)
			// One listener; the real servers differ by address (the checks connect_ip it).
			rss[i] = &pb.LvsRealServer{HealthId: fmt.Sprintf("vs 10.%d.%d.%d:%d", i>>16, i>>8&255, i&255, ap.Port()), Checkers: []*pb.LvsChecker{c}}
		}
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		g0 := runtime.NumGoroutine()
		r := newRealServers(slog.New(slog.DiscardHandler), check.SnapshotOptions{}, 0)
		r.apply(1, &pb.ConfigSnapshot{Generation: 1, VirtualServers: []*pb.VirtualServer{{Name: "vs", RealServers: rss}}})
		// Three rounds, a collection after each: a parked goroutine's
		// stack shrinks by half per collection while it uses a quarter.
		for range 3 {
			for start := ln.accepts.Load(); ln.accepts.Load()-start < servers; {
				time.Sleep(50 * time.Millisecond)
			}
			runtime.GC()
		}
		runtime.ReadMemStats(&m1)
		g1 := runtime.NumGoroutine()
		r.close()
		b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc)/servers, "heap-B/server")
		b.ReportMetric(float64(m1.StackInuse-m0.StackInuse)/servers, "stack-B/server")
		b.ReportMetric(float64(g1-g0)/servers, "goroutines/server")
	}
}
