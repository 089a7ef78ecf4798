package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc/status"

	"github.com/vrrpkit/vrrpkit/pkg/config"
	"github.com/vrrpkit/vrrpkit/pkg/ipc"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// childCheckerd is checkerd's name in daemon.children.
const childCheckerd = "checkerd"

// checkerIdentity is the unprivileged account checkerd runs as.
type checkerIdentity struct {
	name     string
	uid, gid uint32
}

// defaultCheckerUser is --checker-user's default: keepalived's own script
// account if the system has one (keepalived's default script_user, so
// files a keepalived user made readable for scripts are readable to
// checkerd too), else nobody.
func defaultCheckerUser(lookup func(string) (*user.User, error)) string {
	if _, err := lookup("keepalived_script"); err == nil {
		return "keepalived_script"
	}
	return "nobody"
}

// resolveChecker looks the account up; root is refused, since checkerd's
// whole point is to run without privilege.
func resolveChecker(name string) (checkerIdentity, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return checkerIdentity{}, fmt.Errorf("--checker-user %s: %w", name, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return checkerIdentity{}, fmt.Errorf("--checker-user %s: %w", name, err)
	}
	if uid == 0 {
		return checkerIdentity{}, fmt.Errorf("--checker-user %s is root: checkerd must run unprivileged", name)
	}
	id := checkerIdentity{name: name, uid: uint32(uid), gid: uint32(gid)}
	// Only the account's primary group: supplementary groups could carry
	// access the checker has no business with.
	return id, nil
}

func (c checkerIdentity) credential() *syscall.Credential {
	return &syscall.Credential{Uid: c.uid, Gid: c.gid, Groups: []uint32{}}
}

// listenChecker creates checkerd's socket for it: checkerd cannot write to
// the run directory, so the supervisor binds <run-dir>/checkerd.sock (0600,
// root's: only vrrpd and the supervisor connect) and passes the listener as
// fd 3 to every checkerd it starts (LISTEN_FDS=1, systemd's
// socket-activation convention). The same listener outlives checkerd
// restarts, so a client's connect waits in the backlog instead of failing.
func listenChecker(path string) (*os.File, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing stale %s: %w", path, err)
	}
	old := syscall.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false)
	f, err := ln.File() // a dup: closing ln leaves f open
	ln.Close()
	if err != nil {
		return nil, fmt.Errorf("listener fd of %s: %w", path, err)
	}
	return f, nil
}

// pushChecker applies the current snapshot to checkerd, retrying while
// checkerd starts; like push for vrrpd, a refusal is not retried.
func (d *daemon) pushChecker(ctx context.Context) {
	d.mu.Lock()
	snap := d.current
	d.mu.Unlock()
	var resp *pb.ApplyConfigResponse
	err := retryPush(ctx, func() error {
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		conn, err := ipc.Dial(dctx, d.dir.Checkerd(), fastRedial)
		if err != nil {
			return err
		}
		defer conn.Close()
		resp, err = pb.NewCheckerdClient(conn).ApplyConfig(dctx, snap)
		return err
	})
	switch {
	case err == nil:
		d.log.Info("checkerd applied the configuration", "generation", resp.GetGeneration())
		d.mu.Lock()
		d.children[childCheckerd].generation = resp.GetGeneration()
		d.mu.Unlock()
	case ctx.Err() != nil:
	default:
		d.log.Error("pushing the configuration to checkerd", "generation", snap.GetGeneration(), "err", status.Convert(err).Message())
	}
}

// allowCheckerPing widens net.ipv4.ping_group_range to take in checkerd's
// group when the configuration has a PING_CHECK: checkerd pings with an
// unprivileged ICMP socket, having no CAP_NET_RAW. keepalived, running its
// checkers as root, widens the range for the same reason. A range that
// already covers the group is left alone; the change is logged.
func allowCheckerPing(cfg *config.Config, gid uint32, log *slog.Logger, path string) {
	need := false
	for _, vs := range cfg.VirtualServers {
		for _, rs := range vs.RealServers {
			for _, c := range rs.Checkers {
				need = need || c.Type == "PING_CHECK"
			}
		}
	}
	if !need {
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		log.Warn("PING_CHECK: cannot read net.ipv4.ping_group_range; checkerd may not be able to ping", "err", err)
		return
	}
	var lo, hi uint64
	if _, err := fmt.Sscan(string(data), &lo, &hi); err == nil && lo <= uint64(gid) && uint64(gid) <= hi {
		return
	}
	if lo > hi { // closed, as Debian's default "1 0": open it to the group alone
		lo, hi = uint64(gid), uint64(gid)
	} else {
		lo, hi = min(lo, uint64(gid)), max(hi, uint64(gid))
	}
	value := fmt.Sprintf("%d %d", lo, hi)
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		log.Warn("PING_CHECK: cannot widen net.ipv4.ping_group_range for checkerd's group; set it yourself", "gid", gid, "err", err)
		return
	}
	log.Info("net.ipv4.ping_group_range widened for checkerd's PING_CHECK", "was", strings.TrimSpace(string(data)), "now", value)
}
