package ipc

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func testPolicy(group *Group) *Policy {
	return &Policy{
		Service: "vrrpkit.v1.Vrrpd",
		Methods: map[string]Access{"Status": GroupRead, "Ipvs": GroupRead, "ApplyConfig": RootOnly},
		Group:   group,
	}
}

func TestPolicyCheck(t *testing.T) {
	g := &Group{Name: "vrrpkit", GID: 4242}
	member := Peer{PID: 1, UID: 1000, GID: 1000, Groups: []uint32{27, 4242}}
	primary := Peer{PID: 1, UID: 1001, GID: 4242}
	stranger := Peer{PID: 1, UID: 1002, GID: 1002, Groups: []uint32{27}}
	root := Peer{PID: 1, UID: 0, GID: 0}
	for _, c := range []struct {
		policy *Policy
		method string
		peer   Peer
		want   string // "" allowed, else the PERMISSION_DENIED message
	}{
		{testPolicy(g), "/vrrpkit.v1.Vrrpd/Status", member, ""},
		{testPolicy(g), "/vrrpkit.v1.Vrrpd/Ipvs", primary, ""},
		{testPolicy(g), "/vrrpkit.v1.Vrrpd/ApplyConfig", root, ""},
		{testPolicy(g), "/vrrpkit.v1.Vrrpd/Status", root, ""},
		{testPolicy(g), "/vrrpkit.v1.Vrrpd/ApplyConfig", member,
			"ApplyConfig needs root; uid 1000 may use Ipvs, Status as a member of group vrrpkit"},
		// A method the table does not list is root only.
		{testPolicy(g), "/vrrpkit.v1.Vrrpd/Events", member,
			"Events needs root; uid 1000 may use Ipvs, Status as a member of group vrrpkit"},
		// So is a method of another service of the same name.
		{testPolicy(g), "/vrrpkit.v1.Checkerd/Status", member,
			"/vrrpkit.v1.Checkerd/Status needs root; uid 1000 may use Ipvs, Status as a member of group vrrpkit"},
		{testPolicy(g), "/vrrpkit.v1.Vrrpd/Status", stranger,
			"Status needs root; uid 1002 is not a member of group vrrpkit, which may use Ipvs, Status"},
		{testPolicy(nil), "/vrrpkit.v1.Vrrpd/Status", member, "Status needs root; uid 1000 is not root"},
	} {
		err := c.policy.Check(c.method, c.peer)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s by %v: %v, want allowed", c.method, c.peer, err)
		case c.want != "" && (status.Code(err) != codes.PermissionDenied || status.Convert(err).Message() != c.want):
			t.Errorf("%s by %v: %v, want PermissionDenied %q", c.method, c.peer, err, c.want)
		}
	}
	for _, c := range []struct {
		policy *Policy
		peer   Peer
		want   string
	}{
		{testPolicy(g), member, ""},
		{testPolicy(g), primary, ""},
		{testPolicy(g), root, ""},
		{testPolicy(nil), root, ""},
		{testPolicy(g), stranger, "uid 1002 is neither root nor a member of group vrrpkit (gid 4242), which may use Ipvs, Status"},
		{testPolicy(nil), member, "uid 1000 is not root, and no status group is configured"},
	} {
		err := c.policy.AllowConn(c.peer)
		if got := fmt.Sprint(err); (c.want == "" && err != nil) || (c.want != "" && got != c.want) {
			t.Errorf("AllowConn(%v) = %v, want %q", c.peer, err, c.want)
		}
	}
}

// TestPolicyServer runs clients as uid 65534 against a server with a
// Policy: with the group as a supplementary group (SO_PEERGROUPS) Status
// works and ApplyConfig is PERMISSION_DENIED naming what is open; without
// it the connection is refused at accept and logged.
func TestPolicyServer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run clients as uid 65534 with chosen groups")
	}
	dir := sharedDir(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "client")
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	const gid = 4242 // need not exist in /etc/group: the kernel takes any gid
	path := filepath.Join(dir, "policy.sock")
	p := testPolicy(&Group{Name: "vrrpkit-test", GID: gid})
	// 0666: the file mode lets everyone connect, so that the refusal seen
	// is the listener's own.
	logs := serve(t, path, ListenConfig{Mode: 0o666, Allow: p.AllowConn}, p.ServerOptions()...)

	run := func(method string, groups []uint32, timeout time.Duration) string {
		t.Helper()
		cmd := exec.Command(exe)
		cmd.Env = []string{envDial + "=" + path, envMethod + "=" + method, envTimeout + "=" + strconv.Itoa(int(timeout/time.Millisecond))}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: groups}}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("client: %v: %s", err, out.String())
		}
		return strings.TrimSpace(out.String())
	}
	if got := run("Status", []uint32{100, gid}, 5*time.Second); !strings.HasPrefix(got, "ok pid=") {
		t.Errorf("member's Status: %q, want ok", got)
	}
	got := run("ApplyConfig", []uint32{gid}, 5*time.Second)
	if want := "code = PermissionDenied desc = ApplyConfig needs root; uid 65534 may use Ipvs, Status as a member of group vrrpkit-test"; !strings.Contains(got, want) {
		t.Errorf("member's ApplyConfig: %q, want %q", got, want)
	}
	// A stream goes through the same table: Events is not listed.
	got = run("Events", []uint32{gid}, 5*time.Second)
	if want := "code = PermissionDenied desc = Events needs root; uid 65534 may use Ipvs, Status as a member of group vrrpkit-test"; !strings.Contains(got, want) {
		t.Errorf("member's Events: %q, want %q", got, want)
	}
	got = run("Status", []uint32{100}, 500*time.Millisecond)
	if !strings.HasPrefix(got, "error ") {
		t.Errorf("stranger's Status: %q, want an error", got)
	}
	want := `reason="uid 65534 is neither root nor a member of group vrrpkit-test (gid 4242), which may use Ipvs, Status"`
	if !strings.Contains(logs.String(), "connection refused") || !strings.Contains(logs.String(), want) {
		t.Errorf("server log lacks the refusal %s:\n%s", want, logs)
	}
	// Root may call everything: ApplyConfig reaches the (unimplemented) handler.
	if got := callApply(path, 5*time.Second); !strings.Contains(got, "code = Unimplemented") {
		t.Errorf("root's ApplyConfig: %q, want the handler's Unimplemented", got)
	}
}

// TestListenGID: ListenConfig.GID gives the socket file that group.
func TestListenGID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another group needs root")
	}
	path := filepath.Join(t.TempDir(), "g.sock")
	l, err := ListenConfig{Mode: 0o660, GID: 4242}.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Gid != 4242 || st.Mode&0o777 != 0o660 {
		t.Errorf("socket gid %d mode %o, want 4242 660", st.Gid, st.Mode&0o777)
	}
}
