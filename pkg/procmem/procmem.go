// Package procmem reads what a process costs in memory and sets the Go
// collector's targets for vrrpkit's long-running daemons.
//
// The figures come from /proc/PID/smaps_rollup (Linux 4.14, proc(5)): the
// sums of /proc/PID/smaps over every mapping, read in one pass by the
// kernel. RSS counts every resident page the process maps; PSS (proportional
// set size) divides each page by the number of processes mapping it, so the
// PSS of all processes adds up to the memory they really use. The vrrpkit
// memory goal is set in PSS: it is what the processes cost the host, and it
// compares fairly with keepalived, whose processes share one binary and its
// libraries while vrrpkit's are separate static binaries.
package procmem

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

// Usage is a process's memory from smaps_rollup, in bytes. A field the
// running kernel does not report (Pss_Anon and friends came in Linux 5.8)
// is zero.
type Usage struct {
	RSS          uint64 // Rss: resident pages, shared ones counted whole
	PSS          uint64 // Pss: resident pages, shared ones divided among their users
	PSSAnon      uint64 // Pss_Anon: heap, stacks, runtime metadata
	PSSFile      uint64 // Pss_File: binary text and data read from the file
	PSSShmem     uint64 // Pss_Shmem
	SharedClean  uint64 // Shared_Clean
	SharedDirty  uint64 // Shared_Dirty
	PrivateClean uint64 // Private_Clean
	PrivateDirty uint64 // Private_Dirty
	Anonymous    uint64 // Anonymous
	Swap         uint64 // Swap
	SwapPSS      uint64 // SwapPss
}

// Read returns the memory of process pid; pid 0 means the calling process.
func Read(pid int) (Usage, error) {
	path := "/proc/self/smaps_rollup"
	if pid != 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/smaps_rollup"
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Usage{}, fmt.Errorf("procmem: %w", err)
	}
	u, err := Parse(data)
	if err != nil {
		return Usage{}, fmt.Errorf("procmem: %s: %w", path, err)
	}
	return u, nil
}

// Parse reads the text of an smaps_rollup file: a header line naming the
// range, then "Field:   N kB" lines. Unknown fields are skipped; Rss and
// Pss must be there.
func Parse(data []byte) (Usage, error) {
	var u Usage
	fields := map[string]*uint64{
		"Rss": &u.RSS, "Pss": &u.PSS, "Pss_Anon": &u.PSSAnon, "Pss_File": &u.PSSFile,
		"Pss_Shmem": &u.PSSShmem, "Shared_Clean": &u.SharedClean, "Shared_Dirty": &u.SharedDirty,
		"Private_Clean": &u.PrivateClean, "Private_Dirty": &u.PrivateDirty,
		"Anonymous": &u.Anonymous, "Swap": &u.Swap, "SwapPss": &u.SwapPSS,
	}
	seen := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		dst, known := fields[name]
		if !ok || !known {
			continue // the header line, or a field added after this was written
		}
		num, unit, _ := strings.Cut(strings.TrimSpace(rest), " ")
		v, err := strconv.ParseUint(num, 10, 64)
		if err != nil || unit != "kB" {
			return Usage{}, fmt.Errorf("line %d: %q is not a size in kB", n, sc.Text())
		}
		if v > math.MaxUint64/1024 {
			return Usage{}, fmt.Errorf("line %d: %d kB overflows", n, v)
		}
		*dst = v * 1024
		if name == "Rss" || name == "Pss" {
			seen++
		}
	}
	if err := sc.Err(); err != nil {
		return Usage{}, err
	}
	if seen < 2 {
		return Usage{}, fmt.Errorf("no Rss and Pss lines")
	}
	return u, nil
}
