package track

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// fakeProc is a ProcSource over a map: pid -> process.
type fakeProc map[int]fakeProcess

type fakeProcess struct {
	comm  string
	state byte
	argv  []string
}

func (f fakeProc) PIDs() ([]int, error) {
	var pids []int
	for pid := range f {
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	return pids, nil
}

func (f fakeProc) Stat(pid int) (string, byte, error) {
	p, ok := f[pid]
	if !ok {
		return "", 0, fmt.Errorf("no pid %d", pid)
	}
	st := p.state
	if st == 0 {
		st = 'S'
	}
	return p.comm, st, nil
}

func (f fakeProc) Cmdline(pid int, max int) ([]byte, error) {
	p, ok := f[pid]
	if !ok {
		return nil, fmt.Errorf("no pid %d", pid)
	}
	if len(p.argv) == 0 {
		return nil, nil
	}
	b := []byte(strings.Join(p.argv, "\x00") + "\x00")
	return b[:min(len(b), max)], nil
}

// mutableProc is a fakeProc the test changes while a Set scans it, and that
// counts the files it is asked for.
type mutableProc struct {
	mu              sync.Mutex
	procs           fakeProc
	stats, cmdlines int
}

func (m *mutableProc) set(p fakeProc) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.procs = p
}

func (m *mutableProc) PIDs() ([]int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.procs.PIDs()
}

func (m *mutableProc) Stat(pid int) (string, byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stats++
	return m.procs.Stat(pid)
}

func (m *mutableProc) Cmdline(pid int, max int) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cmdlines++
	return m.procs.Cmdline(pid, max)
}
