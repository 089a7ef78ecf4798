package procmem

import (
	"os"
	"runtime/debug"
	"strings"
	"testing"
)

// rollup is /proc/PID/smaps_rollup of a vrrpd with 200 instances (Linux 6.18).
const rollup = `00400000-7ffd3b5f1000 ---p 00000000 00:00 0                          [rollup]
Rss:               17612 kB
Pss:               17605 kB
Pss_Dirty:          6700 kB
Pss_Anon:           6700 kB
Pss_File:          10905 kB
Pss_Shmem:             0 kB
Shared_Clean:         12 kB
Shared_Dirty:          0 kB
Private_Clean:     10900 kB
Private_Dirty:      6700 kB
Referenced:        17612 kB
Anonymous:          6700 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
Swap:                  4 kB
SwapPss:               2 kB
Locked:                0 kB
`

func TestParse(t *testing.T) {
	u, err := Parse([]byte(rollup))
	if err != nil {
		t.Fatal(err)
	}
	want := Usage{RSS: 17612 << 10, PSS: 17605 << 10, PSSAnon: 6700 << 10, PSSFile: 10905 << 10,
		SharedClean: 12 << 10, PrivateClean: 10900 << 10, PrivateDirty: 6700 << 10, Anonymous: 6700 << 10,
		Swap: 4 << 10, SwapPSS: 2 << 10}
	if u != want {
		t.Errorf("Parse:\n got %+v\nwant %+v", u, want)
	}
}

func TestParseErrors(t *testing.T) {
	for in, want := range map[string]string{
		"":                                 "no Rss and Pss lines",
		"x [rollup]\nRss: 1 kB\n":          "no Rss and Pss lines",
		"Rss: 1 kB\nPss: x kB\n":           `line 2: "Pss: x kB" is not a size in kB`,
		"Rss: 1 MB\nPss: 1 kB\n":           `line 1: "Rss: 1 MB" is not a size in kB`,
		"Rss: 18014398509481984 kB\nPss:1": "overflows",
	} {
		if _, err := Parse([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q): %v, want %q", in, err, want)
		}
	}
}

func TestReadSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/smaps_rollup"); err != nil {
		t.Skipf("no smaps_rollup here: %v", err)
	}
	u, err := Read(0)
	if err != nil {
		t.Fatal(err)
	}
	if u.RSS == 0 || u.PSS == 0 || u.PSS > u.RSS+4096 {
		t.Errorf("implausible figures for this process: %+v", u)
	}
	mine, err := Read(os.Getpid())
	if err != nil || mine.RSS == 0 {
		t.Errorf("Read(own pid): %+v, %v", mine, err)
	}
	if _, err := Read(-1); err == nil || !strings.Contains(err.Error(), "procmem: open /proc/-1/smaps_rollup") {
		t.Errorf("Read(-1): %v", err)
	}
}

func TestApply(t *testing.T) {
	// Apply changes process-wide settings: restore them for other tests.
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	none := func(string) (string, bool) { return "", false }
	if got := Apply(GC{Percent: 50, Limit: 8 << 20}, none); got != (GC{Percent: 50, Limit: 8 << 20}) {
		t.Errorf("Apply: %v", got)
	}
	if p := debug.SetGCPercent(50); p != 50 {
		t.Errorf("GOGC is %d after Apply, want 50", p)
	}
	if l := debug.SetMemoryLimit(-1); l != 8<<20 {
		t.Errorf("memory limit is %d after Apply, want %d", l, 8<<20)
	}
	// What the environment set stays: here the values in effect now.
	debug.SetGCPercent(80)
	debug.SetMemoryLimit(64 << 20)
	env := func(k string) (string, bool) { return "set", k == "GOGC" || k == "GOMEMLIMIT" }
	if got := Apply(Daemon(), env); got != (GC{Percent: 80, Limit: 64 << 20}) {
		t.Errorf("Apply under GOGC and GOMEMLIMIT: %v, want the environment's", got)
	}
	if p := debug.SetGCPercent(80); p != 80 {
		t.Errorf("GOGC is %d, want the environment's 80", p)
	}
	// No limit reads back as 0.
	if got := Apply(GC{Percent: 100}, none); got.Limit != 0 || got.String() != "GOGC=100 GOMEMLIMIT=none" {
		t.Errorf("Apply without a limit: %v", got)
	}
	if s := (GC{Percent: -1, Limit: 8 << 20}).String(); s != "GOGC=off GOMEMLIMIT=8MiB" {
		t.Errorf("String: %q", s)
	}
}
