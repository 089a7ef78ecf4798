// Package ipc is gRPC on Unix sockets between the vrrpkit processes, with the
// peer's identity checked on every connection.
//
// The kernel records the pid, uid and gid of the process that called
// connect(2) on a Unix stream socket; the other end reads them with the
// SO_PEERCRED socket option (unix(7)). Unlike anything the peer sends, they
// cannot be forged. A Listener reads them for each accepted connection, asks
// an allow function whether to serve that peer and closes the connection if
// not; a server built with ServerCredentials passes them to gRPC handlers,
// which read them with PeerFromContext (e.g. "reload is root only").
//
// The credentials are those of the connecting process at connect time. A
// process that passes its connected socket to another (SCM_RIGHTS) or that
// changes uid afterwards still shows as the original; that is the usual
// SO_PEERCRED caveat and harmless here (root-only or same-uid peers). The
// supplementary groups come from SO_PEERGROUPS (Linux 4.13+, socket(7)),
// which the kernel takes from the same connect-time credentials: unlike
// /proc/PID/status's Groups: line, read later under a pid the peer may have
// left (and another process taken), it cannot be raced.
package ipc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/peer"
)

// Peer is the process at the other end of a Unix socket, as SO_PEERCRED
// reports it.
type Peer struct {
	PID      int32
	UID, GID uint32
	// Groups are the peer's supplementary groups (SO_PEERGROUPS); nil if
	// they cannot be read (a kernel before 4.13), where only GID counts.
	Groups []uint32
}

// InGroup reports whether gid is the peer's primary or one of its
// supplementary groups.
func (p Peer) InGroup(gid uint32) bool {
	return p.GID == gid || slices.Contains(p.Groups, gid)
}

func (p Peer) String() string {
	return fmt.Sprintf("pid %d uid %d gid %d", p.PID, p.UID, p.GID)
}

// PeerOf returns the SO_PEERCRED credentials of a Unix socket connection
// (unix(7)). c must be a *net.UnixConn or wrap one, like *Conn.
func PeerOf(c net.Conn) (Peer, error) {
	if pc, ok := c.(*Conn); ok {
		return pc.peer, nil
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return Peer{}, fmt.Errorf("ipc: SO_PEERCRED: %T is not a socket", c)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return Peer{}, fmt.Errorf("ipc: SO_PEERCRED: %w", err)
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Peer{}, fmt.Errorf("ipc: SO_PEERCRED: %w", err)
	}
	if credErr != nil {
		return Peer{}, fmt.Errorf("ipc: getsockopt(SO_PEERCRED): %w", credErr)
	}
	// Groups that cannot be read (ENOPROTOOPT before Linux 4.13) are nil:
	// a group check then fails closed on the primary gid, and a uid check,
	// which most listeners make, is not disturbed.
	var groups []uint32
	_ = raw.Control(func(fd uintptr) { groups, _ = peerGroups(int(fd)) })
	return Peer{PID: cred.Pid, UID: cred.Uid, GID: cred.Gid, Groups: groups}, nil
}

// peerGroups reads SO_PEERGROUPS: an array of gid_t. x/sys/unix has no
// wrapper, so getsockopt(2) is called directly; the kernel answers ERANGE
// with the length it needs when the buffer is short (net/core/sock.c,
// sk_getsockopt). ENOPROTOOPT: a kernel before 4.13.
func peerGroups(fd int) ([]uint32, error) {
	buf := make([]uint32, 16)
	for {
		n := uint32(len(buf) * 4)
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		switch {
		case e == 0:
			return buf[:n/4], nil
		case e == unix.ERANGE && int(n/4) > len(buf):
			buf = make([]uint32, n/4)
		default:
			return nil, e
		}
	}
}

// AllowUIDs returns an allow function for Listen that accepts peers running
// as one of uids.
func AllowUIDs(uids ...uint32) func(Peer) error {
	uids = slices.Clone(uids)
	return func(p Peer) error {
		if slices.Contains(uids, p.UID) {
			return nil
		}
		return fmt.Errorf("uid %d not allowed", p.UID)
	}
}

// Conn is an accepted connection and its peer.
type Conn struct {
	*net.UnixConn
	peer Peer
}

// Peer returns the credentials read when the connection was accepted.
func (c *Conn) Peer() Peer { return c.peer }

// ListenConfig configures a Listener.
type ListenConfig struct {
	// Mode holds the permission bits of the socket file (connect(2) needs
	// write permission on it).
	Mode os.FileMode
	// GID, if not 0, is the group the socket file is given (chown(2)) before
	// it becomes reachable, so that Mode's group bits apply to that group.
	GID uint32
	// Allow decides whether to serve a peer; a non-nil error refuses it: the
	// connection is closed and the refusal logged. Nil allows everyone who
	// can reach the socket.
	Allow func(Peer) error
	// Logger receives refusals. Nil: slog.Default().
	Logger *slog.Logger
}

// Listen listens on the Unix socket path with ListenConfig{Mode: mode, Allow:
// allow}; see ListenConfig.Listen.
func Listen(path string, mode os.FileMode, allow func(Peer) error) (net.Listener, error) {
	l, err := ListenConfig{Mode: mode, Allow: allow}.Listen(path)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// Listen creates the Unix stream socket path with the configured mode and
// listens on it.
//
// A socket file left at path by a process that is gone (connecting to it is
// refused) is removed first. A socket somebody still listens on is not
// touched (the error wraps syscall.EADDRINUSE), nor is anything that is not a
// socket.
//
// The socket is bound under a temporary name in the same directory, given its
// mode, then renamed to path, so it is never reachable with the permissions
// the umask would give it.
func (lc ListenConfig) Listen(path string) (*Listener, error) {
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ul, err := bindWithMode(path, lc.Mode.Perm(), lc.GID)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		ul.Close()
		return nil, fmt.Errorf("ipc: stat %s: %w", path, err)
	}
	log := lc.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Listener{ul: ul, path: path, dev: st.Dev, ino: st.Ino, allow: lc.Allow, log: log}, nil
}

// maxSunPath is the longest path bind(2) takes (sun_path, unix(7)).
const maxSunPath = len(unix.RawSockaddrUnix{}.Path) - 1

func bindWithMode(path string, mode os.FileMode, gid uint32) (*net.UnixListener, error) {
	listen := func(p string) (*net.UnixListener, error) {
		ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
		if err != nil {
			return nil, fmt.Errorf("ipc: %w", err)
		}
		// Listener.Close removes path itself, and only if it is still ours.
		ul.SetUnlinkOnClose(false)
		if gid != 0 {
			if err := os.Lchown(p, -1, int(gid)); err != nil {
				ul.Close()
				os.Remove(p)
				return nil, fmt.Errorf("ipc: %w", err)
			}
		}
		if err := os.Chmod(p, mode); err != nil {
			ul.Close()
			os.Remove(p)
			return nil, fmt.Errorf("ipc: %w", err)
		}
		return ul, nil
	}
	tmp := filepath.Join(filepath.Dir(path), fmt.Sprintf(".ipc-%d-%08x", os.Getpid(), rand.Uint32()))
	if len(tmp) > maxSunPath && len(path) <= maxSunPath {
		// No room for a temporary name: bind in place. The socket is then
		// briefly reachable with the umask's mode; the run directory's own
		// mode (0700/0750) is what protects it meanwhile.
		return listen(path)
	}
	ul, err := listen(tmp)
	if err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		ul.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("ipc: %w", err)
	}
	return ul, nil
}

// removeStale removes a socket file at path that nobody listens on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ipc: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("ipc: %s exists and is not a socket (%v)", path, fi.Mode().Type())
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("ipc: listen %s: a process is listening on it: %w", path, syscall.EADDRINUSE)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("ipc: probing existing socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("ipc: removing stale socket: %w", err)
	}
	return nil
}

// Listener is a Unix socket listener that checks every peer. Accept returns
// *Conn values.
type Listener struct {
	ul       *net.UnixListener
	path     string
	dev, ino uint64 // of the socket file we created, for Close
	allow    func(Peer) error
	log      *slog.Logger
}

// Accept waits for a connection from a peer that Allow accepts. Refused
// peers, and connections whose credentials cannot be read, are closed and
// logged; Accept then waits for the next one, so a refused client never
// disturbs the server.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.ul.AcceptUnix()
		if err != nil {
			return nil, err
		}
		p, err := PeerOf(c)
		if err != nil {
			l.log.Warn("ipc: connection closed: cannot read its credentials", "socket", l.path, "err", err)
			c.Close()
			continue
		}
		if l.allow != nil {
			if err := l.allow(p); err != nil {
				l.log.Warn("ipc: connection refused", "socket", l.path,
					"pid", p.PID, "uid", p.UID, "gid", p.GID, "reason", err, "groups", p.Groups)
				c.Close()
				continue
			}
		}
		return &Conn{UnixConn: c, peer: p}, nil
	}
}

// Close stops listening and removes the socket file, unless it has been
// replaced by another one meanwhile.
func (l *Listener) Close() error {
	err := l.ul.Close()
	var st unix.Stat_t
	if unix.Stat(l.path, &st) == nil && st.Dev == l.dev && st.Ino == l.ino {
		os.Remove(l.path)
	}
	return err
}

// Addr returns the listener's address.
func (l *Listener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

// Path returns the socket's path.
func (l *Listener) Path() string { return l.path }

// AuthInfo is the credentials.AuthInfo of a connection accepted by a server
// using ServerCredentials.
type AuthInfo struct {
	credentials.CommonAuthInfo
	Peer Peer
}

// AuthType implements credentials.AuthInfo.
func (AuthInfo) AuthType() string { return authType }

const authType = "unix-peercred"

// ServerCredentials returns gRPC transport credentials that record each
// connection's SO_PEERCRED credentials for PeerFromContext. They do no
// handshake on the wire, so clients may use insecure credentials (as Dial
// does) or these. Connections must come from a Listener or otherwise be Unix
// sockets.
func ServerCredentials() credentials.TransportCredentials { return peerCreds{} }

type peerCreds struct{}

// ClientHandshake records the server's credentials (a client using these
// credentials can check who serves the socket with grpc.Peer).
func (peerCreds) ClientHandshake(_ context.Context, _ string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return handshake(conn)
}

// ServerHandshake records the client's credentials.
func (peerCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return handshake(conn)
}

func handshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	p, err := PeerOf(conn)
	if err != nil {
		return nil, nil, err
	}
	// Unix sockets never leave the host: as private as it gets (grpc's own
	// local credentials say the same).
	return conn, AuthInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}, Peer: p}, nil
}

func (peerCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: authType}
}

func (peerCreds) Clone() credentials.TransportCredentials { return peerCreds{} }

func (peerCreds) OverrideServerName(string) error { return nil }

// NewServer returns a gRPC server using ServerCredentials, plus opts.
func NewServer(opts ...grpc.ServerOption) *grpc.Server {
	return grpc.NewServer(append([]grpc.ServerOption{grpc.Creds(ServerCredentials())}, opts...)...)
}

// PeerFromContext returns the peer of the RPC whose context ctx is, on a
// server that uses ServerCredentials (NewServer).
func PeerFromContext(ctx context.Context) (Peer, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return Peer{}, false
	}
	ai, ok := p.AuthInfo.(AuthInfo)
	if !ok {
		return Peer{}, false
	}
	return ai.Peer, true
}

// Dial connects to the gRPC server on the Unix socket path, with insecure
// credentials (the server checks who we are with SO_PEERCRED), and waits
// until the connection is ready or ctx is done. A server that refuses us
// closes the connection, which shows here as ctx's error with the
// connection in TRANSIENT_FAILURE.
func Dial(ctx context.Context, path string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("ipc: dial %s: %w", path, err)
	}
	opts = append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)
	cc, err := grpc.NewClient("unix://"+abs, opts...)
	if err != nil {
		return nil, fmt.Errorf("ipc: dial %s: %w", path, err)
	}
	cc.Connect()
	for {
		s := cc.GetState()
		if s == connectivity.Ready {
			return cc, nil
		}
		if !cc.WaitForStateChange(ctx, s) {
			cc.Close()
			return nil, fmt.Errorf("ipc: dial %s: %w (connection %v)", path, ctx.Err(), s)
		}
	}
}
