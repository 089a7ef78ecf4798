package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestInteropWatch: `vrrpctl watch --json` prints each step of a failover
// and back, in order, as it happens: vrrpkit (150) loses its link (FAULT,
// VIP released; keepalived at 100 takes over), gets it back (BACKUP), and
// preempts keepalived (MASTER, VIP taken). Each line must arrive within a
// second of the event it reports.
func TestInteropWatch(t *testing.T) {
	t.Parallel()
	lab := newLab(t)
	vrrpctl := buildVrrpctl(t)
	lan := lab.Segment("lan")
	ha := lab.Host("ra", lan)
	hb := lab.Host("rb", lan)
	vip := lan.VIP4(1)
	c := inst{vrid: 51, version: 3, interval: time.Second, vips: []netip.Addr{vip}, prio: 150}
	vk := startVrrpkit(t, lab, ha, conf("ra", c))
	waitState(t, vk, "VI_1", "MASTER", masterDownInterval(150, time.Second)+10*time.Second)
	c.prio = 100
	ka := start(t, lab, keepalived, hb, conf("rb", c))
	waitState(t, ka, "VI_1", "BACKUP", 10*time.Second)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, vrrpctl, "watch", "--json", "--run-dir", vk.runDir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	type line struct {
		text string
		got  time.Time
	}
	lines := make(chan line, 64)
	go func() { // ends when vrrpctl's stdout closes (cancel kills it)
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- line{sc.Text(), time.Now()}
		}
	}()
	// The watch is subscribed once the supervisor has a watcher: a reload
	// is an event every watcher gets, so wait for ours to come through.
	if _, err := supervisorReload(vk, false); err != nil {
		t.Fatal(err)
	}
	type event struct {
		At       time.Time `json:"at"`
		Type     string    `json:"type"`
		Instance string    `json:"instance"`
		From, To string
		Address  string `json:"address"`
		Held     *bool  `json:"held"`
	}
	next := func(within time.Duration) (event, line) {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("vrrpctl watch ended: %s", stderr.String())
			}
			var ev event
			if err := json.Unmarshal([]byte(l.text), &ev); err != nil {
				t.Fatalf("vrrpctl watch printed %q: %v", l.text, err)
			}
			return ev, l
		case <-time.After(within):
			t.Fatalf("vrrpctl watch printed nothing within %v", within)
		}
		return event{}, line{}
	}
	if ev, l := next(20 * time.Second); ev.Type != "reload" {
		t.Fatalf("first line %s, want the reload", l.text)
	}

	setLink(t, ha, "down")
	// keepalived takes over meanwhile; vrrpkit hears it once back.
	waitState(t, ka, "VI_1", "MASTER", masterDownInterval(100, time.Second)+10*time.Second)
	setLink(t, ha, "up")
	want := []string{
		"transition VI_1 MASTER->FAULT",
		"address VI_1 " + vip.String() + "/24 dev eth0 released",
		"transition VI_1 FAULT->BACKUP",
		"transition VI_1 BACKUP->MASTER",
		"address VI_1 " + vip.String() + "/24 dev eth0 took",
	}
	var got []string
	for len(got) < len(want) {
		ev, l := next(30 * time.Second)
		var s string
		switch ev.Type {
		case "transition":
			s = fmt.Sprintf("transition %s %s->%s", ev.Instance, ev.From, ev.To)
		case "address":
			s = fmt.Sprintf("address %s %s %s", ev.Instance, ev.Address, map[bool]string{true: "took", false: "released"}[*ev.Held])
		default:
			continue // health and reloads are not part of this failover
		}
		if lag := l.got.Sub(ev.At); lag > time.Second || lag < -time.Second {
			t.Errorf("%q printed %v after it happened, want within 1s", l.text, lag)
		}
		got = append(got, s)
		t.Logf("%s (printed %v after)", l.text, l.got.Sub(ev.At).Round(time.Millisecond))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("vrrpctl watch printed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	waitState(t, ka, "VI_1", "BACKUP", 10*time.Second)
}
