package config

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// fuzzFS is the file system the fuzzed file sees: a few files to include
// (each kind of include outcome) and nothing on disk.
var fuzzFS = memFS{
	"/etc/keepalived/inc.conf":           {data: "global_defs {\n router_id inc\n}\n"},
	"/etc/keepalived/conf.d/a.conf":      {data: "vrrp_script chk {\n script /bin/true\n}\n"},
	"/etc/keepalived/conf.d/b.conf":      {data: "include ../inc.conf\n$FROM_B=eth0\n"},
	"/etc/keepalived/conf.d/c.conf":      {data: "include c.conf\n"},
	"/etc/keepalived/conf.d/empty.conf":  {data: "# nothing\n"},
	"/etc/keepalived/conf.d/run.sh":      {data: "#!/bin/sh\n", mode: 0o755},
	"/etc/keepalived/conf.d/sub":         {mode: fs.ModeDir | 0o755},
	"/etc/keepalived/conf.d/secret.conf": {readErr: fs.ErrPermission},
}

var fuzzSnippets = []string{
	"",
	"{",
	"}",
	"\"",
	"a { b { c } } }",
	"global_defs {\n router_id \"a # b\" # c\n notification_email { a@b c@d }\n}\n",
	"vrrp_instance V {\n interface eth0\n virtual_router_id 1\n priority 0\n advert_int 0.5\n version 3\n" +
		" virtual_ipaddress {\n  10.0.0.1/24 dev eth0 label eth0:1 scope link brd 10.0.0.255 no_track\n  2001:db8::1/64\n }\n" +
		" track_script { chk weight 10 }\n notify \"/bin/x 'a b' \\x41\\t\" root root\n}\n",
	"$A=1\n$B=x \\\n# c \\\n y $A\n$B\nrouter_id ${A} ${_INSTANCE} ${_RANDOM 1 5} ${_ENV HOME} ${_HASH}${_BANG} ${_PWD}\n",
	"$A=$A x\n$A\n",
	"@lb1 router_id a\n@^lb1 router_id b\n",
	"~SEQ(i, 3) vrrp_instance V$i { virtual_router_id $i }\n",
	"~SEQx(i, 8, 12) a$i\n",
	"~SEQ(i, 10, -2, 4) b$i\n",
	"~LST({a,b}, {1,2}, {3}) x${a}_$b\n",
	"$I=\\\nvrrp_instance VI_${i} { \\\n interface eth0 \\\n virtual_router_id ${i} \\\n virtual_ipaddress { 10.0.${i}.1 } \\\n}\n~SEQ(i, 5) $I\n",
	"include conf.d/*.conf\nincludem missing.conf\nincludew none*.conf\nincludeb {inc,x}.conf\nincluder conf.d/secret.conf\ninclude conf.d/run.sh\n",
	"include keepalived.conf\ninclude conf.d/c.conf\ninclude [\n",
	"virtual_server_group G {\n 10.0.0.1-20 80\n fwmark 3\n 2001:db8::1-ff 80\n}\nvirtual_server group G {\n real_server 10.0.1.1 80 {\n  HTTP_GET { url { path / digest 00 status_code 200-299 } }\n  SMTP_CHECK { host { connect_ip 10.0.0.1 } }\n  MISC_CHECK { misc_path \"/bin/x 'y\" }\n }\n}\n",
	"virtual_server fwmark 1 {\n real_server 10.0.0.1 {\n  FILE_CHECK { track_file tf }\n  UDP_CHECK { payload zz }\n  PING_CHECK\n }\n}\n",
	"vrrp_sync_group G {\n group { A B }\n}\nvrrp_track_process p {\n process \"a b\"\n quorum 2\n quorum_max 1\n}\n",
}

func FuzzParse(f *testing.F) {
	samples := filepath.Join("..", "..", "..", "shared", "keepalived-samples")
	if entries, err := os.ReadDir(samples); err == nil {
		for _, e := range entries {
			if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), "_") {
				continue
			}
			if data, err := os.ReadFile(filepath.Join(samples, e.Name())); err == nil {
				f.Add(data)
			}
		}
	}
	for _, s := range fuzzSnippets {
		f.Add([]byte(s))
	}
	host := fakeHost{ifaces: map[string]bool{"eth0": true}, scripts: map[string]bool{"/bin/true": true}, users: map[string]bool{"root": true}}
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys := memFS{mainConf: {data: string(data)}}
		for k, v := range fuzzFS {
			fsys[k] = v
		}
		maxLines := 100_000
		opts := fsys.options(Options{
			ConfigID:  "lb1",
			LookupEnv: func(string) (string, bool) { return "env", true },
			Random:    func(lo, _ int64) int64 { return lo },
			MaxLines:  maxLines,
			Host:      host,
		})
		type result struct {
			cfg   *Config
			ds    Diagnostics
			panic any
			stack string
		}
		// Parse runs on its own goroutine so that a hang fails the input
		// instead of stalling the fuzzer; panics are carried back.
		done := make(chan result, 1)
		go func() {
			defer func() {
				if p := recover(); p != nil {
					done <- result{panic: p, stack: string(debug.Stack())}
				}
			}()
			cfg, ds := Parse(mainConf, opts)
			done <- result{cfg: cfg, ds: ds}
		}()
		var r result
		select {
		case r = <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("Parse did not return within 20s")
		}
		if r.panic != nil {
			t.Fatalf("Parse panicked: %v\n%s", r.panic, r.stack)
		}
		if r.cfg == nil {
			t.Fatalf("nil Config; findings:\n%s", r.ds.String())
		}
		if len(r.ds) > 10001 {
			t.Errorf("%d findings, more than the cap", len(r.ds))
		}
		for _, d := range r.ds {
			if _, known := fsys[d.Pos.File]; !known || d.Pos.Line < 0 {
				t.Errorf("finding neither at a line nor file-level in a known file: %q (pos %+v)", d.String(), d.Pos)
			}
			if d.Message == "" {
				t.Errorf("empty message at %v", d.Pos)
			}
		}
		if _, err := json.Marshal(r.cfg); err != nil {
			t.Errorf("json.Marshal: %v", err)
		}
	})
}
