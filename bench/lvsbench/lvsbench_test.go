package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/vmlab"
)

// TestLVSBench is the host side of bench/lvs.sh, not a test: it runs only
// with LVSBENCH=1. It builds the supervisor (static, as make build ships
// it) and this package's program, boots a VM with real IPVS, keepalived
// and iproute2 copied in with their libraries, runs the program there and
// writes its report to $LVSBENCH_OUT (else logs it). LVSBENCH_ARGS adds
// flags to the program (see main.go); LVSBENCH_CPUS and LVSBENCH_MEMORY
// size the VM (default 2 vCPUs, 1024M).
func TestLVSBench(t *testing.T) {
	if os.Getenv("LVSBENCH") != "1" {
		t.Skip("a benchmark: run by bench/lvs.sh (LVSBENCH=1)")
	}
	for _, p := range []string{"ip", "keepalived"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s is not installed on the host", p)
		}
	}
	ipPath, _ := exec.LookPath("ip")
	kaPath, _ := exec.LookPath("keepalived")
	ipPath, _ = filepath.Abs(ipPath)
	kaPath, _ = filepath.Abs(kaPath)

	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go tool is not on PATH")
	}
	dir := t.TempDir()
	build := exec.Command(goBin, "build", "-trimpath", "-tags", "grpcnotrace", "-o", dir+"/", "github.com/vrrpkit/vrrpkit/cmd/supervisor")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build supervisor: %v\n%s", err, out)
	}
	guest := vmlab.BuildGo(t, "github.com/vrrpkit/vrrpkit/bench/lvsbench")

	cpus := 2
	if v := os.Getenv("LVSBENCH_CPUS"); v != "" {
		if cpus, err = strconv.Atoi(v); err != nil {
			t.Fatalf("LVSBENCH_CPUS=%q: %v", v, err)
		}
	}
	memory := "1024M"
	if v := os.Getenv("LVSBENCH_MEMORY"); v != "" {
		memory = v
	}
	hostLoad := loadavg()
	steal0 := stealTicks()
	vm := vmlab.Boot(t, vmlab.Options{
		Modules:      []string{"ip_vs", "ip_vs_rr", "veth"},
		HostPrograms: []string{ipPath, kaPath},
		Binaries: map[string]string{
			"/usr/local/sbin/supervisor": filepath.Join(dir, "supervisor"),
			"/usr/local/bin/lvsbench":    guest,
		},
		Memory: memory,
		CPUs:   cpus,
	})
	argv := []string{"/usr/local/bin/lvsbench", "-supervisor", "/usr/local/sbin/supervisor",
		"-keepalived", kaPath, "-ip", ipPath}
	argv = append(argv, strings.Fields(os.Getenv("LVSBENCH_ARGS"))...)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	began := time.Now()
	r, err := vm.Exec(ctx, vmlab.Cmd{Argv: argv})
	if err != nil {
		t.Fatalf("lvsbench in the VM: %v", err)
	}
	if r.Exit != 0 {
		t.Fatalf("lvsbench in the VM exited %d %s\nstdout:\n%s\nstderr:\n%s", r.Exit, r.Signal, r.Stdout, r.Stderr)
	}
	steal1 := stealTicks()
	var out strings.Builder
	out.Write(r.Stdout)
	fmt.Fprintf(&out, "conditions: qemu %s (%s) with %d vCPU(s) and %s on a host of %d CPUs; host load average %s at the start, %s at the end;\n",
		accel(), vm.Hello.Kernel, cpus, memory, runtime.NumCPU(), hostLoad, loadavg())
	fmt.Fprintf(&out, "  host CPU stolen by its hypervisor during the run %s; the run in the VM took %v (boot %v).\n",
		stealPct(steal0, steal1), time.Since(began).Round(time.Second), vm.BootTime.Round(100*time.Millisecond))
	fmt.Fprintf(&out, "  Under TCG every guest instruction is emulated: absolute CPU %% is inflated and detection times include\n")
	fmt.Fprintf(&out, "  emulation delays; the ratios are the figures to read. The host is shared, so figures vary run to run.\n")
	if len(r.Stderr) > 0 {
		t.Logf("lvsbench stderr:\n%s", r.Stderr)
	}
	if p := os.Getenv("LVSBENCH_OUT"); p != "" {
		if err := os.WriteFile(p, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	} else {
		t.Logf("\n%s", out.String())
	}
}

func accel() string {
	if a := os.Getenv("VMLAB_ACCEL"); a != "" {
		return a
	}
	return "tcg"
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// stealTicks is "steal total" of the host's /proc/stat cpu line.
func stealTicks() [2]int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return [2]int64{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var s [2]int64
	for i := 1; i < len(f) && i <= 8; i++ {
		v, _ := strconv.ParseInt(f[i], 10, 64)
		s[1] += v
		if i == 8 {
			s[0] = v
		}
	}
	return s
}

func stealPct(a, b [2]int64) string {
	if b[1] <= a[1] {
		return "?"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(b[0]-a[0])/float64(b[1]-a[1]))
}
