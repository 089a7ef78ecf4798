package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/ipc"
	"github.com/vrrpkit/vrrpkit/pkg/rundir"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// TestMiscCheckAndQuorumScripts runs the real supervisor (vrrpd, and
// checkerd as nobody) with a virtual server whose one real server has a
// misc_dynamic MISC_CHECK, and quorum_up / quorum_down scripts; all run as
// script_user daemon, which is neither checkerd's user nor root: so they
// ran in the supervisor, named by the children. The MISC_CHECK's exit
// status comes from a file: 7 is up at weight 5 (keepalived: status - 2),
// 3 up at weight 1, which loses the quorum of 2 (quorum_down), 0 up at the
// configured weight 3 (quorum_up), 1 down. quorum_up also runs at start,
// the quorum being up then, as keepalived 2.2.7 runs it. With omega,
// stopping runs quorum_down again. IPVS is not in this kernel: the weight
// is read from checkerd's health stream and vrrpd's status (the table it
// would program), the quorum from vrrpd's status and log and the scripts'
// output.
func TestMiscCheckAndQuorumScripts(t *testing.T) {
	lab := newLab(t)
	h := lab.Host("ra", lab.Segment("lan"))
	dir, err := os.MkdirTemp("", "vkmisc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	out := filepath.Join(dir, "out")
	// Readable by checkerd and the scripts' user; out writable by them.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(out, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(out, 0o777); err != nil {
		t.Fatal(err)
	}
	status := filepath.Join(dir, "status")
	setStatus := func(s string) {
		t.Helper()
		if err := os.WriteFile(status+".tmp", []byte(s+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(status+".tmp", status); err != nil {
			t.Fatal(err)
		}
	}
	setStatus("7")
	text := strings.ReplaceAll(`global_defs {
  router_id misc
  script_user daemon
}
virtual_server 192.0.2.50 80 {
  delay_loop 1
  protocol TCP
  quorum 2
  omega
  quorum_up "/bin/sh -c 'id -u >> OUT/quorum_up'"
  quorum_down "/bin/sh -c 'id -u >> OUT/quorum_down'"
  real_server 10.0.0.1 80 {
    weight 3
    MISC_CHECK {
      misc_path "/bin/sh -c 'id -u > OUT/misc_uid; exit $(cat STATUS)'"
      misc_timeout 2
      misc_dynamic
    }
  }
}
`, "OUT", out)
	text = strings.ReplaceAll(text, "STATUS", status)
	begin := time.Now()
	vk := startVrrpkit(t, lab, h, text)
	t.Cleanup(func() {
		if t.Failed() {
			if s, err := vk.Proc().Output(); err == nil {
				t.Logf("supervisor log:\n%s", s)
			}
		}
	})

	// checkerd's health stream, as vrrpd follows it (root may call it).
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sock := rundir.Dir(vk.runDir).Checkerd()
	if err := eventually(15*time.Second, func() (bool, string) {
		_, err := os.Stat(sock)
		return err == nil, fmt.Sprint(err)
	}); err != nil {
		t.Fatal(err)
	}
	conn, err := ipc.Dial(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var stream pb.Checkerd_HealthClient
	if err := eventually(15*time.Second, func() (bool, string) {
		stream, err = pb.NewCheckerdClient(conn).Health(ctx, &pb.HealthRequest{})
		return err == nil, fmt.Sprint(err)
	}); err != nil {
		t.Fatal(err)
	}
	const id = "192.0.2.50:80/TCP 10.0.0.1:80"
	results := make(chan *pb.TrackerResult, 64)
	go func() { // ends when ctx ends or the stream breaks
		defer close(results)
		for {
			ev, err := stream.Recv()
			if err != nil {
				return
			}
			rs := append(ev.GetSnapshot().GetResults(), ev.GetResult())
			for _, r := range rs {
				if r.GetKind() == pb.TrackerKind_TRACKER_KIND_REAL_SERVER && r.GetName() == id {
					results <- r
				}
			}
		}
	}()
	waitResult := func(what string, within time.Duration, ok func(r *pb.TrackerResult) bool) *pb.TrackerResult {
		t.Helper()
		deadline := time.After(within)
		var last *pb.TrackerResult
		for {
			select {
			case r, open := <-results:
				if !open {
					t.Fatalf("%s: health stream ended (last %v)", what, last)
				}
				last = r
				if ok(r) {
					return r
				}
			case <-deadline:
				t.Fatalf("%s: not within %v; last result %v", what, within, last)
			}
		}
	}
	weightIs := func(up bool, w int) func(r *pb.TrackerResult) bool {
		return func(r *pb.TrackerResult) bool {
			if r.GetUp() != up || (w < 0) != (r.Weight == nil) {
				return false
			}
			return w < 0 || r.GetWeight() == uint32(w)
		}
	}
	readLines := func(name string) []string {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			return nil
		}
		return strings.Fields(string(b))
	}
	waitLines := func(name string, want ...string) {
		t.Helper()
		if err := eventually(15*time.Second, func() (bool, string) {
			got := readLines(name)
			return strings.Join(got, " ") == strings.Join(want, " "), fmt.Sprintf("%s holds %q, want %q", name, got, want)
		}); err != nil {
			t.Fatal(err)
		}
	}

	// vrrpd's status: the weight of the destination it programs (IPVS
	// itself is not in this kernel) and the quorum.
	statusIs := func(what string, weight uint32, quorumUp bool) {
		t.Helper()
		if err := eventually(10*time.Second, func() (bool, string) {
			st, err := vk.Status()
			if err != nil {
				return false, err.Error()
			}
			vss := st.GetVirtualServers()
			if len(vss) != 1 || len(vss[0].GetRealServers()) != 1 {
				return false, fmt.Sprintf("virtual servers %v", vss)
			}
			rs := vss[0].GetRealServers()[0]
			return rs.GetWeight() == weight && vss[0].GetQuorumUp() == quorumUp,
				fmt.Sprintf("weight %d quorum up %v, want %d %v", rs.GetWeight(), vss[0].GetQuorumUp(), weight, quorumUp)
		}); err != nil {
			t.Fatalf("vrrpd status, %s: %v", what, err)
		}
	}

	// Bootstrap 1 s + warmup up to delay_loop 1 s, then the script.
	r := waitResult("exit 7: up at weight 5", 20*time.Second, weightIs(true, 5))
	statusIs("exit 7", 5, true)
	t.Logf("exit 7: %q after %v", r.GetDetail(), time.Since(begin).Round(time.Millisecond))
	if got := readLines("misc_uid"); len(got) != 1 || got[0] != "1" {
		t.Fatalf("MISC_CHECK ran as uid %q, want 1 (script_user daemon; checkerd is nobody)", got)
	}
	// The quorum is up from the start (3 >= 2, then 5): quorum_up ran once,
	// at start, as keepalived runs it ("Gained quorum" at start).
	waitLines("quorum_up", "1")

	setStatus("3") // weight 1 < quorum 2
	waitResult("exit 3: up at weight 1", 10*time.Second, weightIs(true, 1))
	statusIs("exit 3", 1, false)
	if err := vk.Proc().WaitLog("Lost quorum", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	waitLines("quorum_down", "1")

	setStatus("0") // the configured weight 3 again
	waitResult("exit 0: up at the configured weight", 10*time.Second, weightIs(true, -1))
	statusIs("exit 0", 3, true)
	if err := vk.Proc().WaitLog("Gained quorum", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	waitLines("quorum_up", "1", "1")

	setStatus("1")
	r = waitResult("exit 1: down", 10*time.Second, weightIs(false, -1))
	if !strings.Contains(r.GetDetail(), "status 1") {
		t.Errorf("down detail %q, want the exit status", r.GetDetail())
	}
	waitLines("quorum_down", "1", "1")
	t.Logf("whole test %v", time.Since(begin).Round(time.Millisecond))
	// vrrpd's answers from the supervisor: four scripts ran, none refused.
	if err := vk.Proc().WaitLogN(`msg="script ran" virtual_server=192.0.2.50:80/TCP`, 4, 5*time.Second); err != nil {
		t.Error(err)
	}
	// omega: stopping runs quorum_down once more (ipwrapper.c
	// clear_services -> update_vs_notifies(vs, stopping)), while the
	// supervisor still serves its children.
	if err := vk.Proc().Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := vk.Proc().Wait(20 * time.Second); err != nil {
		t.Fatalf("supervisor after SIGTERM: %v", err)
	}
	if got := readLines("quorum_down"); strings.Join(got, " ") != "1 1 1" {
		t.Errorf("after the stop quorum_down ran as %q, want 3 runs as uid 1 (omega)", got)
	}
	if s, err := vk.Proc().Output(); err != nil || strings.Contains(s, "script not run") || strings.Contains(s, "could not run") {
		t.Errorf("a script was refused or failed to start (err %v)", err)
	}
}
