package check

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

func protoChecker(t pb.LvsCheckerType) *pb.LvsChecker {
	return &pb.LvsChecker{DefinedAt: "k.conf:5", Type: t, ConnectIp: "10.0.0.1", ConnectPort: 80,
		ConnectTimeout: durationpb.New(2 * time.Second), DelayLoop: durationpb.New(6 * time.Second), Retry: 2,
		DelayBeforeRetry: durationpb.New(3 * time.Second), Warmup: durationpb.New(time.Second), Alpha: true}
}

// TestFromProto: each type builds its checker with the snapshot's values;
// bad values and unsupported types are errors.
func TestFromProto(t *testing.T) {
	with := func(typ pb.LvsCheckerType, f func(*pb.LvsChecker)) *pb.LvsChecker {
		c := protoChecker(typ)
		if f != nil {
			f(c)
		}
		return c
	}
	conn := Conn{Target: netip.MustParseAddrPort("10.0.0.1:80"), Timeout: 2 * time.Second}
	for _, tc := range []struct {
		name string
		c    *pb.LvsChecker
		want Checker
		err  string // "" ok; "unsupported": errors.Is ErrUnsupported
	}{
		{"tcp", with(pb.LvsCheckerType_LVS_CHECKER_TCP, nil), TCP{Conn: conn}, ""},
		{"tcp bindto", with(pb.LvsCheckerType_LVS_CHECKER_TCP, func(c *pb.LvsChecker) { c.Bindto, c.BindPort = "10.0.0.2", 999 }),
			TCP{Conn: Conn{Target: conn.Target, Timeout: conn.Timeout, BindTo: netip.MustParseAddr("10.0.0.2"), BindPort: 999}}, ""},
		{"smtp", with(pb.LvsCheckerType_LVS_CHECKER_SMTP, func(c *pb.LvsChecker) { c.HeloName = "me" }), SMTP{Conn: conn, Helo: "me"}, ""},
		{"dns", with(pb.LvsCheckerType_LVS_CHECKER_DNS, func(c *pb.LvsChecker) { c.DnsType, c.DnsName = "a", "x.org" }), DNS{Conn: conn, Type: 1, Name: "x.org"}, ""},
		{"ping", with(pb.LvsCheckerType_LVS_CHECKER_PING, nil), Ping{Conn: conn}, ""},
		{"file", with(pb.LvsCheckerType_LVS_CHECKER_FILE, func(c *pb.LvsChecker) { c.TrackFile, c.Weight, c.WeightReverse = "/f", 3, true }),
			File{Path: "/f", Weight: 3, Reverse: true}, ""},
		{"bad dns type", with(pb.LvsCheckerType_LVS_CHECKER_DNS, func(c *pb.LvsChecker) { c.DnsType = "PTR" }), nil, "PTR"},
		{"bad status", with(pb.LvsCheckerType_LVS_CHECKER_HTTP, func(c *pb.LvsChecker) {
			c.Urls = []*pb.LvsCheckerUrl{{Path: "/", StatusCode: []string{"700"}}}
		}), nil, "status_code"},
		{"bad regex", with(pb.LvsCheckerType_LVS_CHECKER_HTTP, func(c *pb.LvsChecker) { c.Urls = []*pb.LvsCheckerUrl{{Path: "/", Regex: "("}} }), nil, "regex"},
		{"bad payload", with(pb.LvsCheckerType_LVS_CHECKER_UDP, func(c *pb.LvsChecker) { c.Payload = "zz" }), nil, "payload"},
		{"bad ip", with(pb.LvsCheckerType_LVS_CHECKER_TCP, func(c *pb.LvsChecker) { c.ConnectIp = "nope" }), nil, "connect_ip"},
		{"no delay_loop", with(pb.LvsCheckerType_LVS_CHECKER_TCP, func(c *pb.LvsChecker) { c.DelayLoop = nil }), nil, "delay_loop"},
		{"misc", with(pb.LvsCheckerType_LVS_CHECKER_MISC, func(c *pb.LvsChecker) { c.MiscPath = []string{"/bin/true"} }), nil, "unsupported"},
		{"bfd", with(pb.LvsCheckerType_LVS_CHECKER_BFD, nil), nil, "unsupported"},
	} {
		got, p, err := fromProto(tc.c, SnapshotOptions{}, "")
		switch {
		case tc.err == "unsupported":
			if !errors.Is(err, ErrUnsupported) {
				t.Errorf("%s: err %v, want ErrUnsupported", tc.name, err)
			}
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want one about %q", tc.name, err, tc.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case got != tc.want:
			t.Errorf("%s: got %#v, want %#v", tc.name, got, tc.want)
		case p != (Params{DelayLoop: 6 * time.Second, Retry: 2, DelayBeforeRetry: 3 * time.Second, Warmup: time.Second, Alpha: true, Timeout: 2 * time.Second}):
			t.Errorf("%s: params %+v", tc.name, p)
		}
	}
}

// TestFromSnapshotKeys: the Key ignores the position, tells settings
// apart, and gives identical checkers of one server distinct Keys.
func TestFromSnapshotKeys(t *testing.T) {
	tcp := protoChecker(pb.LvsCheckerType_LVS_CHECKER_TCP)
	moved := proto.Clone(tcp).(*pb.LvsChecker)
	moved.DefinedAt = "k.conf:50"
	slower := proto.Clone(tcp).(*pb.LvsChecker)
	slower.DelayLoop = durationpb.New(time.Minute)
	snap := func(cs ...*pb.LvsChecker) *pb.ConfigSnapshot {
		return &pb.ConfigSnapshot{VirtualServers: []*pb.VirtualServer{{RealServers: []*pb.LvsRealServer{
			{HealthId: "rs", Checkers: cs}, {HealthId: "unchecked", Unchecked: true}}}}}
	}
	keys := func(s *pb.ConfigSnapshot) []string {
		out := FromSnapshot(s, SnapshotOptions{})
		if len(out) != 1 || out[0].HealthID != "rs" {
			t.Fatalf("FromSnapshot: %+v", out)
		}
		var ks []string
		for _, c := range out[0].Checks {
			ks = append(ks, c.Job.Key)
		}
		return ks
	}
	base := keys(snap(tcp))
	if got := keys(snap(moved)); got[0] != base[0] {
		t.Error("moving a checker changed its key")
	}
	if got := keys(snap(slower)); got[0] == base[0] {
		t.Error("a changed delay_loop kept the key")
	}
	if got := keys(snap(tcp, moved)); got[0] != base[0] || got[1] == got[0] {
		t.Errorf("duplicate checkers: keys %q", got)
	}
}
