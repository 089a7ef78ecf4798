package vmlab_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/vmlab"
)

// TestIPVS boots a VM with IPVS, drives it through the same netlink
// library vrrpd uses, and cross-checks the result with the host's ipvsadm
// (dynamically linked: vmlab brings its libraries along).
func TestIPVS(t *testing.T) {
	t.Parallel()
	begin := time.Now()
	probe := vmlab.BuildGo(t, "github.com/vrrpkit/vrrpkit/pkg/vmlab/internal/ipvsprobe")
	opts := vmlab.Options{
		Modules:  []string{"ip_vs_rr", "ip_vs_wrr"},
		Binaries: map[string]string{"/usr/local/bin/ipvsprobe": probe},
	}
	withIpvsadm := hasHostProgram("ipvsadm")
	if withIpvsadm {
		opts.HostPrograms = []string{"ipvsadm"}
	}
	vm := vmlab.Boot(t, opts)
	t.Logf("boot %v", vm.BootTime.Round(time.Millisecond))

	if out := vm.MustRun("cat", "/proc/net/ip_vs"); !strings.Contains(out, "IP Virtual Server version") {
		t.Fatalf("/proc/net/ip_vs = %q, want the IPVS header", out)
	}
	out := vm.MustRun("ipvsprobe")
	var got struct {
		Version  [3]int
		Services []struct {
			Address, Protocol, Scheduler string
			Port                         uint16
			Dests                        []struct {
				Address, Forward string
				Port             uint16
				Weight           uint32
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("ipvsprobe output %q: %v", out, err)
	}
	if len(got.Services) != 1 {
		t.Fatalf("services = %+v, want one", got.Services)
	}
	s := got.Services[0]
	if s.Address != "10.0.0.1" || s.Port != 80 || s.Protocol != "TCP" || s.Scheduler != "rr" {
		t.Errorf("service = %+v, want TCP 10.0.0.1:80 rr", s)
	}
	weights := map[string]uint32{}
	for _, d := range s.Dests {
		weights[d.Address] = d.Weight
		if d.Port != 80 || d.Forward != "Masquerade" {
			t.Errorf("dest %+v, want port 80, Masquerade", d)
		}
	}
	if want := map[string]uint32{"10.0.1.1": 1, "10.0.1.2": 2}; !reflect.DeepEqual(weights, want) {
		t.Errorf("weights = %v, want %v", weights, want)
	}
	if withIpvsadm {
		list := vm.MustRun("ipvsadm", "-Ln")
		for _, want := range []string{"TCP  10.0.0.1:80 rr", "-> 10.0.1.1:80", "-> 10.0.1.2:80"} {
			if !strings.Contains(list, want) {
				t.Errorf("ipvsadm -Ln lacks %q:\n%s", want, list)
			}
		}
		// The kernel's own view, once more, through a second client.
		vm.MustRun("ipvsadm", "-E", "-t", "10.0.0.1:80", "-s", "wrr")
		if list := vm.MustRun("ipvsadm", "-Ln"); !strings.Contains(list, "TCP  10.0.0.1:80 wrr") {
			t.Errorf("after ipvsadm -E -s wrr:\n%s", list)
		}
	}
	t.Logf("whole test %v", time.Since(begin).Round(time.Millisecond))
}

// TestRun covers the command channel: output, exit status, stdin,
// background processes, cancellation, and large output.
func TestRun(t *testing.T) {
	t.Parallel()
	vm := vmlab.Boot(t, vmlab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	r, err := vm.Run(ctx, "sh", "-c", "echo out; echo err >&2; exit 3")
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Stdout) != "out\n" || string(r.Stderr) != "err\n" || r.Exit != 3 {
		t.Errorf("run = %q %q %d, want out, err, 3", r.Stdout, r.Stderr, r.Exit)
	}
	if _, err := vm.Run(ctx, "/no/such/program"); err == nil {
		t.Error("running a missing program: no error")
	}

	payload := []byte("line1\nbinary\x00\xff\r\n")
	if err := vm.WriteFile(ctx, "/tmp/x/y", payload, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := vm.MustRun("cat", "/tmp/x/y"); got != string(payload) {
		t.Errorf("file round trip = %q, want %q", got, payload)
	}
	if got := vm.MustRun("stat", "-c", "%a", "/tmp/x/y"); got != "600\n" {
		t.Errorf("mode = %q, want 600", got)
	}

	// A daemon left behind must not hold the answer back.
	vm.Sh("sleep 300 >/dev/null 2>&1 & echo $! > /tmp/sleep.pid")

	// Cancellation kills the command's process group.
	short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err = vm.Run(short, "sh", "-c", "sleep 100 & sleep 100; wait")
	cancelShort()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled run: err = %v, want deadline exceeded", err)
	}
	waitFor(t, 10*time.Second, func() bool {
		return !strings.Contains(vm.MustRun("ps", "-o", "args"), "sleep 100")
	}, "the cancelled command's sleeps to die")

	p := vm.Start(vmlab.Cmd{Argv: []string{"sh", "-c", "echo started; exec sleep 100"}})
	if p.Exited() {
		t.Error("background sleep exited at once")
	}
	waitFor(t, 10*time.Second, func() bool {
		return strings.Contains(vm.MustRun("ps", "-o", "args"), "sleep 100")
	}, "the background sleep to run")
	res := p.Stop()
	if !p.Exited() {
		t.Error("stopped process has not exited")
	}
	if res == nil || string(res.Stdout) != "started\n" || res.Exit != -1 || res.Signal == "" {
		t.Errorf("stopped process result = %+v, want its output and a signal", res)
	}

	// Commands run side by side; answers find their callers.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := fmt.Sprintf("n%d", i)
			r, err := vm.Run(ctx, "sh", "-c", fmt.Sprintf("sleep 0.%d; echo %s", 8-i, want))
			if err != nil || strings.TrimSpace(string(r.Stdout)) != want {
				t.Errorf("concurrent run %d = %+v, %v; want %s", i, r, err, want)
			}
		}()
	}
	wg.Wait()

	// Orphans are reaped by PID 1: kill the daemon and it must vanish
	// from the process table, not linger as a zombie.
	pid := strings.TrimSpace(vm.MustRun("cat", "/tmp/sleep.pid"))
	vm.MustRun("kill", pid)
	waitFor(t, 10*time.Second, func() bool {
		r, err := vm.Run(ctx, "test", "-e", "/proc/"+pid)
		return err == nil && r.Exit != 0
	}, "the killed orphan to be reaped")

	start := time.Now()
	big := vm.MustRun("sh", "-c", "head -c 262144 /dev/zero | tr '\\0' a")
	if len(big) != 262144 {
		t.Errorf("big output is %d bytes, want 262144", len(big))
	}
	t.Logf("256 KiB of output in %v", time.Since(start).Round(time.Millisecond))
}

func waitFor(t *testing.T, d time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
