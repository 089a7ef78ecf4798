package ipc

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Access is who may call one RPC.
type Access int

const (
	// RootOnly: uid 0 alone. Everything that changes the daemon (reload,
	// and whatever comes next) is this, and so is every method a Policy
	// does not list.
	RootOnly Access = iota
	// GroupRead: uid 0 and members of the policy's group. For methods that
	// only read (design.md, "Processes": read-only status is open to the
	// configured group).
	GroupRead
)

// Group is a group by name (for messages) and gid (for the checks).
type Group struct {
	Name string
	GID  uint32
}

// Policy is a gRPC service's access rules, all in one table: the
// connection check (AllowConn, for ListenConfig.Allow) and the per-RPC
// check (ServerOptions, interceptors) read the same Methods.
//
// Two checks because they answer different peers: somebody allowed nothing
// at all is refused at accept and logged, without a word on the wire; a
// group member calling a root-only method gets PERMISSION_DENIED naming what
// it may call instead.
type Policy struct {
	// Service is the full name of the service the table is about
	// ("vrrpkit.v1.Supervisor"). Methods of any other service on the same
	// server are root only.
	Service string
	// Methods maps a method's name ("Status") to who may call it. A method
	// not listed is RootOnly, so that a new RPC is closed until somebody
	// decides it only reads.
	Methods map[string]Access
	// Group is the group GroupRead methods are open to; nil: none, and
	// every method is root only.
	Group *Group
}

// open returns the GroupRead methods, sorted.
func (p *Policy) open() []string {
	var names []string
	for m, a := range p.Methods {
		if a == GroupRead {
			names = append(names, m)
		}
	}
	slices.Sort(names)
	return names
}

func (p *Policy) member(peer Peer) bool {
	return p.Group != nil && peer.InGroup(p.Group.GID)
}

// AllowConn is a ListenConfig.Allow: root, and members of the group if
// any method is open to it.
func (p *Policy) AllowConn(peer Peer) error {
	if peer.UID == 0 {
		return nil
	}
	open := p.open()
	switch {
	case p.Group == nil:
		return fmt.Errorf("uid %d is not root, and no status group is configured", peer.UID)
	case len(open) == 0:
		return fmt.Errorf("uid %d is not root (no method is open to group %s)", peer.UID, p.Group.Name)
	case !p.member(peer):
		return fmt.Errorf("uid %d is neither root nor a member of group %s (gid %d), which may use %s",
			peer.UID, p.Group.Name, p.Group.GID, strings.Join(open, ", "))
	}
	return nil
}

// Check says whether peer may call fullMethod ("/pkg.Service/Method", as
// grpc.UnaryServerInfo.FullMethod has it): nil, or a PERMISSION_DENIED
// status error such as "Reload needs root; uid 1000 may use Ipvs, Status,
// Watch as a member of group vrrpkit".
func (p *Policy) Check(fullMethod string, peer Peer) error {
	if peer.UID == 0 {
		return nil
	}
	service, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	if service == p.Service && p.Methods[method] == GroupRead && p.member(peer) {
		return nil
	}
	name := method
	if service != p.Service {
		name = fullMethod
	}
	open := p.open()
	switch {
	case p.member(peer) && len(open) > 0:
		return status.Errorf(codes.PermissionDenied, "%s needs root; uid %d may use %s as a member of group %s",
			name, peer.UID, strings.Join(open, ", "), p.Group.Name)
	case p.Group != nil && len(open) > 0:
		return status.Errorf(codes.PermissionDenied, "%s needs root; uid %d is not a member of group %s, which may use %s",
			name, peer.UID, p.Group.Name, strings.Join(open, ", "))
	}
	return status.Errorf(codes.PermissionDenied, "%s needs root; uid %d is not root", name, peer.UID)
}

// ServerOptions returns the interceptors that apply Check to every unary
// and streaming RPC, for NewServer. An RPC whose peer is unknown (a server
// without ServerCredentials) is refused.
func (p *Policy) ServerOptions() []grpc.ServerOption {
	check := func(ctx context.Context, method string) error {
		peer, ok := PeerFromContext(ctx)
		if !ok {
			return status.Errorf(codes.PermissionDenied, "%s: the caller's credentials are unknown", method)
		}
		return p.Check(method, peer)
	}
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := check(ctx, info.FullMethod); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := check(ss.Context(), info.FullMethod); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	}
}
