package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vrrpkit/vrrpkit/pkg/config"
	"github.com/vrrpkit/vrrpkit/pkg/ipc"
	"github.com/vrrpkit/vrrpkit/pkg/rundir"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// messages returns what the notify socket has received so far, in order.
func (ns *notifySocket) messages() []string {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	return append([]string(nil), ns.msgs...)
}

// reloadCycle finds, from message from on, a RELOADING=1 message and the
// first READY=1 after it; it returns their indexes (-1 if not yet there).
func reloadCycle(msgs []string, from int) (reloading, ready int) {
	reloading, ready = -1, -1
	for i := from; i < len(msgs); i++ {
		lines := strings.Split(msgs[i], "\n")
		switch {
		case reloading < 0 && lines[0] == "RELOADING=1":
			reloading = i
		case reloading >= 0 && lines[0] == "READY=1":
			return reloading, i
		}
	}
	return reloading, ready
}

// TestDaemonReloadNotify: a SIGHUP-style reload is RELOADING=1 with
// MONOTONIC_USEC= (the monotonic clock, now), then READY=1 with the new
// generation's STATUS=; a refused file is the same cycle with a STATUS=
// saying it was refused; a dry run sends neither.
func TestDaemonReloadNotify(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the supervisor hands vrrpd ambient capabilities: needs root")
	}
	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	vrrpd := filepath.Join(dir, "vrrpd")
	if err := os.Symlink(self, vrrpd); err != nil {
		t.Fatal(err)
	}
	ns := listenNotify(t, filepath.Join(dir, "notify.sock"))
	t.Setenv("NOTIFY_SOCKET", filepath.Join(dir, "notify.sock"))
	conf := filepath.Join(dir, "keepalived.conf")
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	one := "vrrp_instance VI_1 {\n    interface lo\n    virtual_router_id 1\n    virtual_ipaddress { 192.0.2.1/32 }\n}\n"
	write(one)
	cfg, diags := config.Parse(conf, config.Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	runDir := filepath.Join(dir, "run")
	o := &options{file: conf, runDir: runDir, vrrpdPath: vrrpd, logLevel: "info", checkerdPath: "none"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hup := make(chan struct{}, 1)
	rc := make(chan int, 1)
	served := make(chan struct{})
	go func() {
		defer close(served)
		rc <- serve(ctx, o, cfg, slog.New(slog.NewTextHandler(testWriter{t}, nil)), hup)
	}()
	// A failure midway must still stop serve (and its vrrpd) before the
	// test's directory goes and its logger is gone.
	t.Cleanup(func() { cancel(); <-served })
	waitFor(t, "READY=1", func() bool { _, ok := ns.find("READY=1"); return ok })

	// cycle sends SIGHUP's reload and returns the RELOADING=1 and READY=1
	// messages it caused.
	cycle := func() (string, string) {
		t.Helper()
		from := len(ns.messages())
		var before unix.Timespec
		_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &before)
		hup <- struct{}{}
		var reloading, ready int
		waitFor(t, "RELOADING=1 then READY=1", func() bool {
			reloading, ready = reloadCycle(ns.messages(), from)
			return ready >= 0
		})
		msgs := ns.messages()
		var after unix.Timespec
		_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &after)
		var usec int64 = -1
		for _, line := range strings.Split(msgs[reloading], "\n") {
			if v, ok := strings.CutPrefix(line, "MONOTONIC_USEC="); ok {
				usec, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		if usec < before.Nano()/1000 || usec > after.Nano()/1000 {
			t.Errorf("RELOADING=1 message %q: MONOTONIC_USEC %d not within this reload's [%d, %d]", msgs[reloading], usec, before.Nano()/1000, after.Nano()/1000)
		}
		return msgs[reloading], msgs[ready]
	}

	write(one + strings.ReplaceAll(strings.ReplaceAll(one, "VI_1", "VI_2"), "router_id 1", "router_id 2"))
	reloading, ready := cycle()
	t.Logf("accepted reload: %q then %q", reloading, ready)
	if !strings.Contains(ready, "\nSTATUS=generation 2 applied; vrrpd pid ") {
		t.Errorf("READY=1 after an accepted reload: %q, want the status of generation 2", ready)
	}

	write("vrrp_instance VI_1 {\n    interface lo\n    no_such_keyword\n")
	reloading, ready = cycle()
	t.Logf("refused reload: %q then %q", reloading, ready)
	if !strings.Contains(ready, "\nSTATUS=generation 2 applied; ") || !strings.Contains(ready, "; last reload refused: "+conf+":") {
		t.Errorf("READY=1 after a refused reload: %q, want generation 2 and the refusal", ready)
	}

	// A dry run (vrrpctl reload --dry-run) is no reload.
	cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
	defer ccancel()
	conn, err := ipc.Dial(cctx, rundir.Dir(runDir).Control())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := pb.NewSupervisorClient(conn).Reload(cctx, &pb.ReloadRequest{DryRun: true}); err != nil {
		t.Fatal(err)
	}
	// Datagrams arrive in order: after the next real cycle, any message of
	// the dry run's would be there too.
	write(one)
	cycle()
	reloads := 0
	for _, m := range ns.messages() {
		if strings.HasPrefix(m, "RELOADING=1") {
			reloads++
			if !strings.Contains(m, "\nMONOTONIC_USEC=") {
				t.Errorf("RELOADING=1 without MONOTONIC_USEC=: %q", m)
			}
		}
	}
	if reloads != 3 {
		t.Errorf("%d RELOADING=1 for 3 reloads and a dry run", reloads)
	}
	cancel()
	if code := <-rc; code != 0 {
		t.Errorf("serve returned %d, want 0", code)
	}
}

// answeringVrrpd answers Status while up is set, and counts the calls.
type answeringVrrpd struct {
	pb.UnimplementedVrrpdServer
	up    atomic.Bool
	calls atomic.Int64
}

func (a *answeringVrrpd) Status(context.Context, *pb.StatusRequest) (*pb.StatusResponse, error) {
	a.calls.Add(1)
	if !a.up.Load() {
		return nil, status.Error(codes.Unavailable, "the test says no")
	}
	return &pb.StatusResponse{}, nil
}

// TestWatchdogNeedsVrrpd: once ready, WATCHDOG=1 goes only while vrrpd
// answers Status: none after it stopped answering for longer than the
// interval, and again once it answers.
func TestWatchdogNeedsVrrpd(t *testing.T) {
	dir := rundir.Dir(t.TempDir())
	ln, err := ipc.Listen(dir.Vrrpd(), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	fake := &answeringVrrpd{}
	fake.up.Store(true)
	srv := ipc.NewServer()
	pb.RegisterVrrpdServer(srv, fake)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-served
	})
	t.Setenv("WATCHDOG_USEC", "200000") // 200 ms: a tick every 100 ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	var mu sync.Mutex
	pings := 0
	d := &daemon{
		log: slog.New(slog.NewTextHandler(testWriter{t}, nil)), opts: &options{}, dir: dir, ready: true,
		notify: func(s string) {
			if s == "WATCHDOG=1" {
				mu.Lock()
				pings++
				mu.Unlock()
			}
		},
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return pings }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.watchdog(ctx)
	}()
	defer func() { cancel(); <-done }()

	waitFor(t, "two pings while vrrpd answers", func() bool { return count() >= 2 })
	fake.up.Store(false)
	// Pings may go on until the last answer is an interval old (2 ticks);
	// from the 4th failed probe on there must be none.
	start := fake.calls.Load()
	waitFor(t, "4 failed probes", func() bool { return fake.calls.Load() >= start+4 })
	silent := count()
	waitFor(t, "4 more failed probes", func() bool { return fake.calls.Load() >= start+8 })
	if n := count(); n != silent {
		t.Errorf("%d pings while vrrpd did not answer for over the interval", n-silent)
	}
	fake.up.Store(true)
	waitFor(t, "pings again once vrrpd answers", func() bool { return count() > silent })
}
