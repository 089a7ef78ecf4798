package main

// --metrics-listen: Prometheus metrics over HTTP. pkg/metrics builds them at
// scrape time from what Supervisor.Status answers and the running
// configuration; what exists only as events (transitions, reloads, health
// changes) it counts from the watch hub (watch.go), which never blocks the
// supervisor.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vrrpkit/vrrpkit/pkg/metrics"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// startMetrics listens on --metrics-listen (nothing to do when it is
// empty) and serves /metrics until ctx ends, on goroutines added to wg; it
// returns the address it listens on. A failure to listen is returned, so
// that a daemon asked for metrics does not run without them unnoticed.
func (d *daemon) startMetrics(ctx context.Context, wg *sync.WaitGroup) (net.Addr, error) {
	addr := d.opts.metricsListen
	if addr == "" {
		return nil, nil
	}
	events := metrics.NewEvents()
	reg := prometheus.NewRegistry() // no global state: only what is registered here
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		metrics.New(func() metrics.Snapshot { return d.metricsSnapshot(ctx) }, events),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering metrics: %w", err)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slogPrinter{d.log},
		ErrorHandling: promhttp.ContinueOnError, // serve what could be collected
		Registry:      reg,                      // promhttp_metric_handler_* for this handler
		Timeout:       10 * time.Second,
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<html><head><title>vrrpkit</title></head><body><h1>vrrpkit supervisor</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>\n")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	d.log.Info("serving metrics", "addr", ln.Addr().String())
	wg.Add(3)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("metrics server", "addr", addr, "err", err)
		}
	}()
	go func() { // owns srv's shutdown
		defer wg.Done()
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
	}()
	go func() {
		defer wg.Done()
		d.countEvents(ctx, events)
	}()
	return ln.Addr(), nil
}

// countEvents feeds events with the watch hub until ctx ends. A
// subscription cut off for lagging (a burst beyond watchBuffer while this
// goroutine was not scheduled) is taken again: the counts miss that burst
// but go on.
func (d *daemon) countEvents(ctx context.Context, events *metrics.Events) {
	for ctx.Err() == nil {
		sub := d.watch.Subscribe()
		for open := true; open; {
			select {
			case <-ctx.Done():
				sub.Close()
				return
			case ev, ok := <-sub.C:
				if !ok {
					open = false
					break
				}
				events.Observe(ev)
			}
		}
		if !sub.Lagged() {
			return // the hub is closed: the supervisor is stopping
		}
		d.log.Warn("metrics fell behind the event stream; transition and reload counts miss some events")
	}
}

// metricsSnapshot is what one scrape reads: Supervisor.Status's answer and
// the running configuration.
func (d *daemon) metricsSnapshot(ctx context.Context) metrics.Snapshot {
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := (&control{d: d}).Status(sctx, &pb.SupervisorStatusRequest{})
	if err != nil {
		return metrics.Snapshot{}
	}
	d.mu.Lock()
	cfg := d.current // replaced on reload, never modified
	d.mu.Unlock()
	up := false
	for _, c := range st.GetChildren() {
		// Status sets vrrpd's generation from vrrpd's own answer only.
		if c.GetName() == childVrrpd && c.GetRunning() && c.GetGeneration() > 0 {
			up = true
		}
	}
	return metrics.Snapshot{Status: st, Config: cfg, VrrpdUp: up}
}

// slogPrinter is promhttp's error log on the daemon's logger.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Warn("metrics", "err", fmt.Sprint(v...)) }
