package snapshot

import (
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// TestRealServerCheckers: checkers carry effective values, with the timing
// inherited checker > real server > virtual server > keepalived's defaults
// (check_data.c validate_check_config), the target defaulting to the real
// server, and one SMTP checker per host block.
func TestRealServerCheckers(t *testing.T) {
	got := buildVS(t, `vrrp_track_file tf {
  file /tmp/x
  weight 7
}
virtual_server 192.0.2.1 80 {
  protocol TCP
  delay_loop 10
  virtualhost vs.example
  real_server 10.0.0.1 8080 {
    retry 4
    TCP_CHECK {
      connect_timeout 2
    }
    HTTP_GET {
      connect_port 81
      url {
        path /health
        status_code 200-204
      }
    }
    DNS_CHECK {
      type A
      name example.org
    }
    SMTP_CHECK {
      helo_name me
      host {
        connect_ip 10.0.0.9
      }
      host {
        connect_port 26
      }
    }
    FILE_CHECK {
      track_file tf
    }
  }
}
`)
	if len(got) != 1 || len(got[0].RealServers) != 1 {
		t.Fatalf("got %v", got)
	}
	d := durationpb.New
	s := time.Second
	common := func(c *pb.LvsChecker) *pb.LvsChecker {
		c.DelayLoop, c.Warmup, c.Virtualhost = d(10*s), d(10*s), "vs.example"
		if c.ConnectTimeout == nil {
			c.ConnectTimeout = d(5 * s)
		}
		if c.DelayBeforeRetry == nil {
			c.DelayBeforeRetry = d(s)
		}
		if c.Retry == 0 {
			c.Retry = 4
		}
		return c
	}
	want := []*pb.LvsChecker{
		common(&pb.LvsChecker{DefinedAt: "k.conf:11", Type: pb.LvsCheckerType_LVS_CHECKER_TCP, ConnectIp: "10.0.0.1", ConnectPort: 8080,
			ConnectTimeout: d(2 * s)}),
		common(&pb.LvsChecker{DefinedAt: "k.conf:14", Type: pb.LvsCheckerType_LVS_CHECKER_HTTP, ConnectIp: "10.0.0.1", ConnectPort: 81,
			Urls: []*pb.LvsCheckerUrl{{Path: "/health", StatusCode: []string{"200-204"}}}}),
		// DNS_CHECK: retry is the real server's 4 (set), delay_before_retry
		// defaults to delay_loop (check_dns.c).
		common(&pb.LvsChecker{DefinedAt: "k.conf:21", Type: pb.LvsCheckerType_LVS_CHECKER_DNS, ConnectIp: "10.0.0.1", ConnectPort: 8080,
			DnsType: "A", DnsName: "example.org", DelayBeforeRetry: d(10 * s)}),
		common(&pb.LvsChecker{DefinedAt: "k.conf:27", Type: pb.LvsCheckerType_LVS_CHECKER_SMTP, ConnectIp: "10.0.0.9", ConnectPort: 8080, HeloName: "me"}),
		common(&pb.LvsChecker{DefinedAt: "k.conf:30", Type: pb.LvsCheckerType_LVS_CHECKER_SMTP, ConnectIp: "10.0.0.1", ConnectPort: 26, HeloName: "me"}),
		common(&pb.LvsChecker{DefinedAt: "k.conf:34", Type: pb.LvsCheckerType_LVS_CHECKER_FILE, ConnectIp: "10.0.0.1", ConnectPort: 8080,
			TrackFile: "/tmp/x", Weight: 7}),
	}
	gotC := got[0].RealServers[0].Checkers
	if len(gotC) != len(want) {
		t.Fatalf("got %d checkers, want %d:\n%v", len(gotC), len(want), prototext.Format(got[0].RealServers[0]))
	}
	for i := range want {
		if !proto.Equal(gotC[i], want[i]) {
			t.Errorf("checker %d:\ngot  %v\nwant %v", i, prototext.Format(gotC[i]), prototext.Format(want[i]))
		}
	}
}

// TestMiscCheckerDefaults: MISC_CHECK's retry defaults to 0
// (check_misc.c misc_check_handler), and its script runs for misc_timeout,
// else the virtual server's delay_loop, even when the checker has its own
// (misc_check_thread: checker->vs->delay_loop).
func TestMiscCheckerDefaults(t *testing.T) {
	got := buildVS(t, `virtual_server 192.0.2.1 80 {
  protocol TCP
  delay_loop 10
  real_server 10.0.0.1 80 {
    MISC_CHECK {
      misc_path "/bin/check a"
      delay_loop 3
    }
    MISC_CHECK {
      misc_path /bin/check2
      misc_timeout 4
      misc_dynamic
      retry 2
    }
  }
}
virtual_server 192.0.2.2 80 {
  protocol TCP
  real_server 10.0.0.1 80 {
    MISC_CHECK {
      misc_path /bin/check3
    }
  }
}
`)
	if len(got) != 2 {
		t.Fatalf("got %d virtual servers", len(got))
	}
	cs := got[0].GetRealServers()[0].GetCheckers()
	c2 := got[1].GetRealServers()[0].GetCheckers()
	if len(cs) != 2 || len(c2) != 1 {
		t.Fatalf("checkers %v / %v", cs, c2)
	}
	for _, tc := range []struct {
		c       *pb.LvsChecker
		args    []string
		timeout time.Duration
		retry   uint32
		dynamic bool
	}{
		{cs[0], []string{"/bin/check", "a"}, 10 * time.Second, 0, false},
		{cs[1], []string{"/bin/check2"}, 4 * time.Second, 2, true},
		{c2[0], []string{"/bin/check3"}, 60 * time.Second, 0, false},
	} {
		if got := tc.c.GetMiscPath(); !proto.Equal(&pb.LvsChecker{MiscPath: got}, &pb.LvsChecker{MiscPath: tc.args}) {
			t.Errorf("%s: misc_path %q, want %q", tc.c.GetDefinedAt(), got, tc.args)
		}
		if got := tc.c.GetMiscTimeout().AsDuration(); got != tc.timeout {
			t.Errorf("%s: misc_timeout %v, want %v", tc.c.GetDefinedAt(), got, tc.timeout)
		}
		if tc.c.GetRetry() != tc.retry || tc.c.GetMiscDynamic() != tc.dynamic {
			t.Errorf("%s: retry %d misc_dynamic %v, want %d %v", tc.c.GetDefinedAt(), tc.c.GetRetry(), tc.c.GetMiscDynamic(), tc.retry, tc.dynamic)
		}
	}
}
