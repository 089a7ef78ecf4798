package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/vrrpkit/vrrpkit/pkg/check"
	"github.com/vrrpkit/vrrpkit/pkg/config"
	"github.com/vrrpkit/vrrpkit/pkg/ipc"
	"github.com/vrrpkit/vrrpkit/pkg/notify"
	"github.com/vrrpkit/vrrpkit/pkg/scriptrun"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// scripts is the supervisor as script runner (design.md, "Processes": the
// one process that can take another uid): it keeps the parsed
// configuration of the running generation and of the one before it (a
// child still runs that one until its push completes), and runs what they
// say, as their script_user.
type scripts struct {
	log *slog.Logger
	// runner runs every script; commands carry their user, resolved here
	// from the generation they belong to.
	runner *scriptrun.Runner

	mu   sync.Mutex
	gens []loadedConfig // newest last, at most two
}

type loadedConfig struct {
	gen uint64
	cfg *config.Config
	// snap is what the children run for gen: MISC_CHECK and quorum
	// scripts are named after it (check.MiscScriptNames, VirtualServer.name).
	snap        *pb.ConfigSnapshot
	user, group string // script_user / script_group, or keepalived's default
	// misc is every MISC_CHECK of snap by its check.MiscScriptNames name,
	// built once at load: a run looks its command up, not the whole
	// configuration.
	misc map[string]scriptrun.Command
}

// withUser gives cmd the generation's default user if it names none.
func (l loadedConfig) withUser(cmd scriptrun.Command) scriptrun.Command {
	if cmd.User == "" {
		cmd.User, cmd.Group = l.user, l.group
	}
	cmd.Security = cmd.Security || l.cfg.GlobalDefs.EnableScriptSecurity
	return cmd
}

// load makes cfg generation gen's, with a runner whose defaults are its
// global_defs script_user / script_group (keepalived's default user when
// unset).
func (s *scripts) load(cfg *config.Config, snap *pb.ConfigSnapshot, gen uint64) {
	s.commit(s.prepare(cfg, snap, gen))
}

// prepare resolves generation gen's script user and MISC_CHECK commands,
// and disables in snap the MISC_CHECKs that cannot run (disableMiscChecks).
// It is the slow part of a load (user lookups, a stat of every script):
// call it before anyone sees snap, and outside the daemon's lock.
func (s *scripts) prepare(cfg *config.Config, snap *pb.ConfigSnapshot, gen uint64) loadedConfig {
	g := &cfg.GlobalDefs
	user, group := g.ScriptUser, g.ScriptGroup
	if user == "" {
		u, err := scriptrun.ResolveDefaultUser(nil, g.EnableScriptSecurity, s.log)
		if err != nil {
			// Scripts naming no user will fail to start, each with this
			// reason (keepalived refuses to run them too).
			s.log.Error("scripts", "err", err)
			u = scriptrun.DefaultScriptUser
		}
		user = u
	}
	l := loadedConfig{gen: gen, cfg: cfg, snap: snap, user: user, group: group, misc: map[string]scriptrun.Command{}}
	s.disableMiscChecks(l)
	return l
}

// commit makes a prepared generation one the runner serves (the last two).
func (s *scripts) commit(l loadedConfig) {
	s.mu.Lock()
	s.gens = append(s.gens, l)
	if len(s.gens) > 2 {
		s.gens = s.gens[len(s.gens)-2:]
	}
	s.mu.Unlock()
}

func (s *scripts) at(gen uint64) (loadedConfig, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.gens {
		if l.gen == gen {
			return l, true
		}
	}
	return loadedConfig{}, false
}

func (s *scripts) newest() loadedConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gens[len(s.gens)-1]
}

// lookup is scriptrun.Lookup over the kept generations.
func (s *scripts) lookup(gen uint64, kind pb.ScriptKind, name string) (scriptrun.Command, error) {
	l, ok := s.at(gen)
	if !ok {
		return scriptrun.Command{}, scriptrun.ErrStaleGeneration
	}
	switch kind {
	case pb.ScriptKind_SCRIPT_KIND_VRRP_SCRIPT:
	case pb.ScriptKind_SCRIPT_KIND_MISC_CHECK:
		return l.miscCheck(name)
	case pb.ScriptKind_SCRIPT_KIND_QUORUM_UP, pb.ScriptKind_SCRIPT_KIND_QUORUM_DOWN:
		return l.quorum(kind, name)
	default:
		return scriptrun.Command{}, fmt.Errorf("%w: kind %v", scriptrun.ErrUnknownScript, kind)
	}
	for _, vs := range l.cfg.VRRPScripts {
		if vs.Name != name || vs.Script == nil {
			continue
		}
		// keepalived takes a vrrp_script's user from its `user` keyword
		// only; words after `script "..."` are ignored there (checked with
		// keepalived 2.2.7: `script "/x" nobody` runs as root).
		cmd := scriptrun.Command{
			Name:     "vrrp_script " + name,
			Args:     vs.Script.Args,
			User:     vs.User,
			Group:    vs.Group,
			Timeout:  vs.Timeout.Std(),
			Security: l.cfg.GlobalDefs.EnableScriptSecurity,
		}
		// keepalived: no timeout means the interval (snapshot.scriptOf).
		if cmd.Timeout == 0 {
			cmd.Timeout = vs.Interval.Std()
		}
		return l.withUser(cmd), nil
	}
	return scriptrun.Command{}, scriptrun.ErrUnknownScript
}

// miscCheck is the MISC_CHECK checkerd names: a checker of the
// generation's snapshot whose check.MiscScriptNames entry is name.
func (l loadedConfig) miscCheck(name string) (scriptrun.Command, error) {
	if cmd, ok := l.misc[name]; ok {
		return cmd, nil
	}
	return scriptrun.Command{}, scriptrun.ErrUnknownScript
}

// miscCommand is MISC_CHECK c's command: the snapshot's command line and
// timeout (misc_timeout, else the virtual server's delay_loop:
// pkg/snapshot), its user the checker block's `user` keyword (byPos: the
// configuration's checkers by position), else script_user (check_misc.c
// misc_user_handler, misc_end_handler).
func (l loadedConfig) miscCommand(rs *pb.LvsRealServer, c *pb.LvsChecker, byPos map[string]*config.Checker) (scriptrun.Command, error) {
	if len(c.GetMiscPath()) == 0 {
		return scriptrun.Command{}, fmt.Errorf("%w: MISC_CHECK at %s has no misc_path", scriptrun.ErrUnknownScript, c.GetDefinedAt())
	}
	cmd := scriptrun.Command{
		Name:      "MISC_CHECK " + rs.GetHealthId(),
		Args:      c.GetMiscPath(),
		Timeout:   c.GetMiscTimeout().AsDuration(),
		KillGrace: check.MiscKillGrace,
		Security:  l.cfg.GlobalDefs.EnableScriptSecurity,
	}
	if cc := byPos[c.GetDefinedAt()]; cc != nil {
		cmd.User, cmd.Group = cc.User, cc.Group
	}
	return l.withUser(cmd), nil
}

// disableMiscChecks removes from l's snapshot, before any child sees it,
// every MISC_CHECK whose script could not start (not found, not
// executable, unknown user, refused by enable_script_security), as
// keepalived 2.2.7 does when it loads a configuration
// (check_misc.c check_misc_script_security: "Disabling misc script ...",
// free_checker): such a checker then holds no real server down. A real
// server left with no checker is unchecked, and always up. The ones kept
// go into l.misc under the names checkerd will give them.
func (s *scripts) disableMiscChecks(l loadedConfig) {
	byPos := map[string]*config.Checker{}
	for _, vs := range l.cfg.VirtualServers {
		for _, rs := range vs.RealServers {
			for _, c := range rs.Checkers {
				byPos[c.Pos.String()] = c
			}
		}
	}
	for _, vs := range l.snap.GetVirtualServers() {
		for _, rs := range vs.GetRealServers() {
			var keep []*pb.LvsChecker
			for _, c := range rs.GetCheckers() {
				if c.GetType() == pb.LvsCheckerType_LVS_CHECKER_MISC {
					cmd, err := l.miscCommand(rs, c, byPos)
					if err == nil {
						err = s.runner.Check(cmd)
					}
					if err != nil {
						s.log.Warn("Disabling misc script", "real_server", rs.GetHealthId(), "at", c.GetDefinedAt(),
							"script", strings.Join(c.GetMiscPath(), " "), "err", err)
						continue
					}
				}
				keep = append(keep, c)
			}
			if len(keep) != len(rs.GetCheckers()) {
				rs.Checkers = keep
				rs.Unchecked = len(keep) == 0
				rs.StartsDown = false
				for _, c := range keep {
					rs.StartsDown = rs.StartsDown || c.GetAlpha()
				}
			}
			// Named after what is kept: the names checkerd computes.
			for i, n := range check.MiscScriptNames(rs) {
				if n != "" {
					l.misc[n], _ = l.miscCommand(rs, rs.GetCheckers()[i], byPos)
				}
			}
		}
	}
}

// quorum is a virtual server's quorum_up or quorum_down, which vrrpd asks
// for when the quorum state changes (it decides quorum: pkg/lvs); name is
// the snapshot's VirtualServer.name. keepalived runs them as notify
// scripts (ipwrapper.c do_vs_notifies -> notify_exec), with the script's
// own user words, else script_user, and no timeout; here the notify
// scripts' DefaultScriptTimeout bounds them.
func (l loadedConfig) quorum(kind pb.ScriptKind, name string) (scriptrun.Command, error) {
	for _, pvs := range l.snap.GetVirtualServers() {
		if pvs.GetName() != name {
			continue
		}
		for _, vs := range l.cfg.VirtualServers {
			if vs.Pos.String() != pvs.GetDefinedAt() {
				continue
			}
			sc, keyword := vs.QuorumUp, "quorum_up"
			if kind == pb.ScriptKind_SCRIPT_KIND_QUORUM_DOWN {
				sc, keyword = vs.QuorumDown, "quorum_down"
			}
			if sc == nil || len(sc.Args) == 0 {
				return scriptrun.Command{}, fmt.Errorf("%w: virtual_server %s has no %s", scriptrun.ErrUnknownScript, name, keyword)
			}
			return l.withUser(scriptrun.Command{Name: keyword + " " + name, Args: sc.Args, User: sc.User, Group: sc.Group,
				Timeout: notify.DefaultScriptTimeout}), nil
		}
	}
	return scriptrun.Command{}, scriptrun.ErrUnknownScript
}

// Run is notify.Runner: a notify script runs with the newest generation's
// defaults.
func (s *scripts) Run(ctx context.Context, cmd scriptrun.Command) scriptrun.Result {
	return s.runner.Run(ctx, s.newest().withUser(cmd))
}

var _ notify.Runner = (*scripts)(nil)

// serveScripts serves ScriptRunner on <run-dir>/scripts.sock to checkerd
// (vrrp_script, MISC_CHECK) and root, which vrrpd is (quorum_up /
// quorum_down), until ctx ends. The socket is 0660 root:<checker group>,
// and every connection's peer is checked.
func (d *daemon) serveScripts(ctx context.Context, checker checkerIdentity) error {
	path := d.dir.Scripts()
	ln, err := ipc.ListenConfig{Mode: 0o660, Allow: ipc.AllowUIDs(0, checker.uid), Logger: d.log}.Listen(path)
	if err != nil {
		return err
	}
	if err := os.Chown(path, 0, int(checker.gid)); err != nil {
		ln.Close()
		return fmt.Errorf("handing %s to checkerd's group: %w", path, err)
	}
	srv := ipc.NewServer()
	pb.RegisterScriptRunnerServer(srv, scriptrun.NewServer(d.scripts.runner, d.scripts.lookup))
	stopped := make(chan struct{})
	defer close(stopped)
	go func() { // owned by serveScripts: ends when Serve has returned
		select {
		case <-ctx.Done():
			srv.Stop()
		case <-stopped:
		}
	}()
	return srv.Serve(ln)
}
