package config

import (
	"fmt"
	"testing"
)

// TestTunnelOptions follows check_parser.c svr_forwarding_handler; the
// error cases are the ones keepalived 2.2.7's -t refuses (exit 5), checked
// with `keepalived -t` on the same lines.
func TestTunnelOptions(t *testing.T) {
	for _, tc := range []struct {
		method string
		want   *Tunnel // nil: no tunnel
		diag   string  // "" none; else "severity: substring"
	}{
		{"TUN", &Tunnel{Type: "ipip", Checksum: "nocsum"}, ""},
		{"TUN type gue port 6080 csum", &Tunnel{Type: "gue", Port: 6080, Checksum: "csum"}, ""},
		{"TUN type gue port 6080 remcsum", &Tunnel{Type: "gue", Port: 6080, Checksum: "remcsum"}, ""},
		{"TUN type gre csum", &Tunnel{Type: "gre", Checksum: "csum"}, ""},
		{"TUN type gre", &Tunnel{Type: "gre", Checksum: "nocsum"}, ""},
		{"TUN type gue", nil, "error: a gue tunnel needs a port"},
		{"TUN port 5", nil, "error: a gue tunnel needs a port"},
		{"TUN type ipip csum", nil, "error: ipip tunnels have no checksum option"},
		{"TUN type gre remcsum", nil, "error: gre tunnels have no remote checksum option"},
		{"TUN type foo", nil, `error: unknown tunnel type "foo"`},
		{"TUN type", nil, "error: missing tunnel type"},
		{"TUN type gue port 0", nil, `error: "0" is not a whole number in [1, 65535]`},
		{"TUN bogus", nil, `error: invalid tunnel option "bogus"`},
		{"NAT type gue port 5", nil, "warning: tunnel options are ignored for NAT"},
	} {
		t.Run(tc.method, func(t *testing.T) {
			in := fmt.Sprintf("virtual_server 192.0.2.1 80 {\n  lb_kind %s\n  real_server 10.0.0.1 80 {\n    lvs_method %s\n  }\n}\n", tc.method, tc.method)
			cfg, ds := parseText(t, in, Options{})
			var specs []string
			if tc.diag != "" {
				specs = []string{"2: " + tc.diag, "4: " + tc.diag}
			}
			wantDiags(t, ds, true, specs...)
			if len(cfg.VirtualServers) != 1 || len(cfg.VirtualServers[0].RealServers) != 1 {
				t.Fatalf("parsed %d virtual servers", len(cfg.VirtualServers))
			}
			vs := cfg.VirtualServers[0]
			for what, got := range map[string]*Tunnel{"virtual server": vs.Tunnel, "real server": vs.RealServers[0].Tunnel} {
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("%s tunnel = %+v, want %+v", what, got, tc.want)
				}
			}
		})
	}
}

// TestRegexRE2: keepalived logs an invalid regex and checks the url without
// it (check_http.c); vrrpkit warns at parse time, also for PCRE-only syntax
// that RE2 lacks, and drops the regex.
func TestRegexRE2(t *testing.T) {
	for _, tc := range []struct {
		regex, want, diag string
	}{
		{`"^OK$"`, "^OK$", ""},
		{`"a(b"`, "", `6: warning: regex "a(b" does not compile as RE2 syntax`},
		{`"foo(?=bar)"`, "", `6: warning: regex "foo(?=bar)" does not compile as RE2 syntax`},
	} {
		in := "virtual_server 192.0.2.1 80 {\n  real_server 10.0.0.1 80 {\n    HTTP_GET {\n      url {\n        path /\n        regex " + tc.regex + "\n      }\n    }\n  }\n}\n"
		cfg, ds := parseText(t, in, Options{})
		var specs []string
		if tc.diag != "" {
			specs = append(specs, tc.diag)
		}
		wantDiags(t, ds, true, specs...)
		got := cfg.VirtualServers[0].RealServers[0].Checkers[0].URLs[0].Regex
		if got != tc.want {
			t.Errorf("regex %s: kept %q, want %q", tc.regex, got, tc.want)
		}
	}
}
