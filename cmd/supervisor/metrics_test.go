package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/fanout"
	"github.com/vrrpkit/vrrpkit/pkg/ipc"
	"github.com/vrrpkit/vrrpkit/pkg/rundir"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// statusVrrpd answers Status with one MASTER instance.
type statusVrrpd struct {
	pb.UnimplementedVrrpdServer
}

func (statusVrrpd) Status(context.Context, *pb.StatusRequest) (*pb.StatusResponse, error) {
	return &pb.StatusResponse{Generation: 1, Instances: []*pb.InstanceStatus{{
		Name: "VI_1", State: pb.VrrpState_VRRP_STATE_MASTER, Interface: "eth0", Vrid: 51, Priority: 150, EffectivePriority: 150,
		Counters: &pb.InstanceCounters{AdvertsSent: 42},
	}}}, nil
}

// TestMetricsServer: startMetrics serves the supervisor's status and the
// events of its watch hub on /metrics, a page on /, 404 elsewhere, and
// stops with its context.
func TestMetricsServer(t *testing.T) {
	dir := rundir.Dir(t.TempDir())
	ln, err := ipc.Listen(dir.Vrrpd(), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := ipc.NewServer()
	pb.RegisterVrrpdServer(srv, statusVrrpd{})
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-served
	})
	d := &daemon{
		log: slog.New(slog.NewTextHandler(testWriter{t}, nil)), opts: &options{metricsListen: "127.0.0.1:0"}, dir: dir,
		current: &pb.ConfigSnapshot{Generation: 1, Instances: []*pb.VrrpInstance{{Name: "VI_1", Interface: "eth0", Vrid: 51,
			VirtualIpaddress: []*pb.VirtualAddress{{Prefix: "192.0.2.1/24"}}}}},
		gen: 1, children: map[string]*childInfo{childVrrpd: {running: true, restarts: 2}},
		watch: fanout.New[*pb.WatchEvent](watchBuffer),
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	addr, err := d.startMetrics(ctx, &wg)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + addr.String()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}

	// The event counter subscribes on its own goroutine: publish accepted
	// reloads until one is counted.
	var body string
	waitFor(t, "a reload counted", func() bool {
		d.publishWatch(&pb.WatchEvent{Event: &pb.WatchEvent_Reload{Reload: &pb.ReloadResponse{Accepted: true}}})
		_, body = get("/metrics")
		return !strings.Contains(body, `vrrpkit_reloads_total{result="accepted"} 0`)
	})
	for _, want := range []string{
		"vrrpkit_vrrpd_up 1\n",
		"keepalived_up 1\n",
		`keepalived_vrrp_state{iname="VI_1",intf="eth0",ip_address="192.0.2.1/24",vrid="51"} 2` + "\n",
		`vrrpkit_vrrp_state{interface="eth0",state="MASTER",vrid="51",vrrp_instance="VI_1"} 1` + "\n",
		`vrrpkit_vrrp_adverts_sent_total{interface="eth0",vrid="51",vrrp_instance="VI_1"} 42` + "\n",
		`vrrpkit_child_restarts_total{child="vrrpd"} 2` + "\n",
		"vrrpkit_config_generation 1\n",
		`vrrpkit_reloads_total{result="refused"} 0` + "\n",
		"# TYPE go_goroutines gauge\n",
		"# TYPE process_resident_memory_bytes gauge\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics has no %q:\n%s", want, body)
		}
	}
	d.publishWatch(&pb.WatchEvent{Event: &pb.WatchEvent_Reload{Reload: &pb.ReloadResponse{Accepted: false}}})
	waitFor(t, "a refused reload counted", func() bool {
		_, body = get("/metrics")
		return strings.Contains(body, `vrrpkit_reloads_total{result="refused"} 1`+"\n")
	})
	if code, page := get("/"); code != http.StatusOK || !strings.Contains(page, `href="/metrics"`) {
		t.Errorf("GET / = %d %q, want 200 and a link to /metrics", code, page)
	}
	if code, _ := get("/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ = %d, want 404", code)
	}

	cancel()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("metrics goroutines still running 5s after their context ended")
	}
	if c, err := net.DialTimeout("tcp", addr.String(), time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after the context ended", addr)
	}
}

// TestMetricsListenOffAndRefused: no address starts nothing; an address
// that cannot be listened on is an error, not a silent daemon without
// metrics.
func TestMetricsListenOffAndRefused(t *testing.T) {
	var wg sync.WaitGroup
	d := &daemon{log: slog.New(slog.NewTextHandler(testWriter{t}, nil)), opts: &options{}, watch: fanout.New[*pb.WatchEvent](1)}
	if addr, err := d.startMetrics(context.Background(), &wg); addr != nil || err != nil {
		t.Errorf("startMetrics with no address = %v, %v; want nothing", addr, err)
	}
	// An IPv6 address in brackets, where the host has IPv6 loopback.
	if ln, err := net.Listen("tcp", "[::1]:0"); err == nil {
		ln.Close()
		ctx, cancel := context.WithCancel(context.Background())
		d.opts.metricsListen = "[::1]:0"
		addr, err := d.startMetrics(ctx, &wg)
		if err != nil || !strings.HasPrefix(addr.String(), "[::1]:") {
			t.Errorf("startMetrics([::1]:0) = %v, %v; want a [::1] address", addr, err)
		}
		cancel()
		wg.Wait()
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, bad := range []string{taken.Addr().String(), "192.0.2.300:9650", "localhost"} {
		d.opts.metricsListen = bad
		if _, err := d.startMetrics(context.Background(), &wg); err == nil {
			t.Errorf("startMetrics(%q) succeeded, want an error", bad)
		}
	}
}
