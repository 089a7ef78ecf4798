package main

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/check"
	"github.com/vrrpkit/vrrpkit/pkg/config"
	"github.com/vrrpkit/vrrpkit/pkg/notify"
	"github.com/vrrpkit/vrrpkit/pkg/scriptrun"
	"github.com/vrrpkit/vrrpkit/pkg/snapshot"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// TestScriptsLookupMiscAndQuorum: the supervisor resolves the names its
// children send (check.MiscScriptNames for MISC_CHECK, VirtualServer.name
// for quorum_up / quorum_down) in its own copy of the generation.
func TestScriptsLookupMiscAndQuorum(t *testing.T) {
	const text = `global_defs {
  script_user nobody
}
virtual_server 192.0.2.1 80 {
  protocol TCP
  delay_loop 9
  quorum_up "/bin/qup a"
  quorum_down /bin/qdown daemon
  real_server 10.0.0.1 80 {
    TCP_CHECK {
    }
    MISC_CHECK {
      misc_path "DIR/m1 x"
    }
    MISC_CHECK {
      misc_path DIR/m2
      misc_timeout 3
      misc_dynamic
      user daemon
    }
  }
}
`
	dir := t.TempDir()
	for _, n := range []string{"m1", "m2"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg, diags := config.ParseBytes("k.conf", []byte(strings.ReplaceAll(text, "DIR", dir)), config.Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	snap := snapshot.Build(cfg, "k.conf", 4)
	s := &scripts{log: slog.New(slog.DiscardHandler), runner: &scriptrun.Runner{}}
	s.load(cfg, snap, 4)

	vs := snap.GetVirtualServers()[0]
	names := check.MiscScriptNames(vs.GetRealServers()[0])
	if len(names) != 3 || names[0] != "" || names[1] == "" || names[2] == "" {
		t.Fatalf("MISC_CHECK names %q", names)
	}
	for _, tc := range []struct {
		kind    pb.ScriptKind
		name    string
		args    []string
		user    string
		timeout time.Duration
	}{
		{pb.ScriptKind_SCRIPT_KIND_MISC_CHECK, names[1], []string{dir + "/m1", "x"}, "nobody", 9 * time.Second},
		{pb.ScriptKind_SCRIPT_KIND_MISC_CHECK, names[2], []string{dir + "/m2"}, "daemon", 3 * time.Second},
		{pb.ScriptKind_SCRIPT_KIND_QUORUM_UP, vs.GetName(), []string{"/bin/qup", "a"}, "nobody", notify.DefaultScriptTimeout},
		{pb.ScriptKind_SCRIPT_KIND_QUORUM_DOWN, vs.GetName(), []string{"/bin/qdown"}, "daemon", notify.DefaultScriptTimeout},
	} {
		cmd, err := s.lookup(4, tc.kind, tc.name)
		if err != nil {
			t.Errorf("%v %q: %v", tc.kind, tc.name, err)
			continue
		}
		if tc.kind == pb.ScriptKind_SCRIPT_KIND_MISC_CHECK && cmd.KillGrace != check.MiscKillGrace {
			t.Errorf("%q: kill grace %v, want keepalived's SIGTERM-to-SIGKILL %v", tc.name, cmd.KillGrace, check.MiscKillGrace)
		}
		if !slices.Equal(cmd.Args, tc.args) || cmd.User != tc.user || cmd.Timeout != tc.timeout {
			t.Errorf("%v %q: args %q user %q timeout %v; want %q %q %v", tc.kind, tc.name, cmd.Args, cmd.User, cmd.Timeout, tc.args, tc.user, tc.timeout)
		}
	}
	for _, tc := range []struct {
		gen  uint64
		kind pb.ScriptKind
		name string
		want error
	}{
		{3, pb.ScriptKind_SCRIPT_KIND_MISC_CHECK, names[1], scriptrun.ErrStaleGeneration},
		{4, pb.ScriptKind_SCRIPT_KIND_MISC_CHECK, "/bin/m1 x", scriptrun.ErrUnknownScript},
		{4, pb.ScriptKind_SCRIPT_KIND_QUORUM_UP, "192.0.2.9:80/TCP", scriptrun.ErrUnknownScript},
		{4, pb.ScriptKind_SCRIPT_KIND_VRRP_SCRIPT, names[1], scriptrun.ErrUnknownScript},
	} {
		if _, err := s.lookup(tc.gen, tc.kind, tc.name); !errors.Is(err, tc.want) {
			t.Errorf("generation %d %v %q: err %v, want %v", tc.gen, tc.kind, tc.name, err, tc.want)
		}
	}
}

// TestScriptsDisableMiscChecks: a MISC_CHECK whose script cannot start is
// removed from the snapshot the children get, as keepalived's
// check_misc_script_security removes it at load; a real server left
// without checkers is unchecked (always up), and the alpha of a removed
// checker no longer starts it down.
func TestScriptsDisableMiscChecks(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok")
	if err := os.WriteFile(ok, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "noexec"), []byte("#!/bin/sh\nexit 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(`virtual_server 192.0.2.1 80 {
  protocol TCP
  real_server 10.0.0.1 80 {
    MISC_CHECK {
      misc_path DIR/ok
    }
    MISC_CHECK {
      misc_path DIR/missing
    }
  }
  real_server 10.0.0.2 80 {
    MISC_CHECK {
      misc_path DIR/noexec
      alpha
    }
  }
  real_server 10.0.0.3 80 {
    MISC_CHECK {
      misc_path DIR/ok
      user no-such-user-here
    }
    MISC_CHECK {
      misc_path DIR/ok
      misc_timeout 3
      alpha
    }
  }
}
`, "DIR", dir)
	cfg, diags := config.ParseBytes("k.conf", []byte(text), config.Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	snap := snapshot.Build(cfg, "k.conf", 1)
	s := &scripts{log: slog.New(slog.DiscardHandler), runner: &scriptrun.Runner{}}
	s.load(cfg, snap, 1)
	rss := snap.GetVirtualServers()[0].GetRealServers()
	for i, tc := range []struct {
		paths      []string
		unchecked  bool
		startsDown bool
	}{
		{[]string{ok}, false, false},
		{nil, true, false},
		{[]string{ok}, false, true},
	} {
		var paths []string
		for _, c := range rss[i].GetCheckers() {
			paths = append(paths, c.GetMiscPath()...)
		}
		if !slices.Equal(paths, tc.paths) || rss[i].GetUnchecked() != tc.unchecked || rss[i].GetStartsDown() != tc.startsDown {
			t.Errorf("%s: checkers %q unchecked %v starts_down %v; want %q %v %v", rss[i].GetHealthId(), paths,
				rss[i].GetUnchecked(), rss[i].GetStartsDown(), tc.paths, tc.unchecked, tc.startsDown)
		}
	}
	// What is left still resolves.
	if _, err := s.lookup(1, pb.ScriptKind_SCRIPT_KIND_MISC_CHECK, check.MiscScriptNames(rss[0])[0]); err != nil {
		t.Error(err)
	}
}
