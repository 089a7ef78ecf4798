package config

import (
	"slices"
	"strings"
	"testing"
)

// lintConf is a configuration with one script line.
func lintConf(line string) string {
	return "vrrp_script chk {\n    " + line + "\n    interval 1\n}\n"
}

// lintOf parses a configuration with line and returns the script lint
// warnings at its line and the script's words.
func lintOf(t *testing.T, line string) ([]string, *Script) {
	t.Helper()
	cfg, ds := ParseBytes(mainConf, []byte(lintConf(line)), Options{})
	var got []string
	for _, d := range ds {
		if d.Severity == Warning && (strings.Contains(d.Message, "without a shell") || strings.Contains(d.Message, "-c takes")) {
			if d.Pos.Line != 2 {
				t.Errorf("warning at %v, want line 2: %s", d.Pos, d.Message)
			}
			got = append(got, d.Message)
		}
	}
	if cfg == nil || len(cfg.VRRPScripts) != 1 || cfg.VRRPScripts[0].Script == nil {
		t.Fatalf("%s: no script parsed: %v", line, ds)
	}
	return got, cfg.VRRPScripts[0].Script
}

func TestScriptLint(t *testing.T) {
	tests := []struct {
		line string
		// want are pieces of the warning; none: no warning.
		want []string
		// fix is the suggested line; it must parse to fixArgs and draw no
		// warning itself.
		fix     string
		fixArgs []string
	}{
		// Run as keepalived runs them: no warning.
		{line: `script "/usr/bin/killall -0 haproxy"`},
		{line: `script /bin/true`},
		{line: `script "test -f /etc/keepalived/up"`},
		{line: `script "/usr/bin/grep -q 'a|b' /etc/x"`},
		{line: `script "/usr/bin/grep -q ^$ /etc/x"`},
		{line: `script "/usr/bin/awk '{exit $1}' /etc/x"`},
		{line: `script "/usr/bin/curl -sf http://127.0.0.1/health?x=1&y=2"`},
		{line: `script "/usr/bin/find /run -name x -exec /bin/true {} ;"`},
		{line: `script "/bin/sh -c '[ -f /x ] && exit 1 || exit 0'"`},
		{line: `script "/bin/bash -c '[[ -f /x ]]'"`},
		{line: `script "/bin/sh -c 'echo $1' arg"`},
		{line: `script "</dev/tcp/127.0.0.1/80"`},
		{line: `script "/etc/keepalived/check.sh" root`},
		// keepalived's own parameters, defined or not.
		{line: `script "$SCRIPT_DIR/check.sh ${NAME} fred.${INST}"`},

		// bash keyword as the program.
		{
			line:    `script "[[ -f /etc/keepalived/down ]] && exit 1 || exit 0"`,
			want:    []string{`"[[" is a shell keyword or builtin`, `"&&", "||" are passed to [[ as arguments`},
			fix:     `script "/bin/bash -c '[[ -f /etc/keepalived/down ]] && exit 1 || exit 0'"`,
			fixArgs: []string{"/bin/bash", "-c", "[[ -f /etc/keepalived/down ]] && exit 1 || exit 0"},
		},
		// A real program followed by operators: runs, but not as meant.
		{
			line:    `script "test -f /etc/keepalived/down && exit 1"`,
			want:    []string{`"&&" is passed to test as an argument`},
			fix:     `script "/bin/sh -c 'test -f /etc/keepalived/down && exit 1'"`,
			fixArgs: []string{"/bin/sh", "-c", "test -f /etc/keepalived/down && exit 1"},
		},
		{
			line:    `script "/bin/echo hi | /bin/grep hi"`,
			want:    []string{`"|" is passed to /bin/echo as an argument`},
			fix:     `script "/bin/sh -c '/bin/echo hi | /bin/grep hi'"`,
			fixArgs: []string{"/bin/sh", "-c", "/bin/echo hi | /bin/grep hi"},
		},
		{
			line:    `script "/usr/bin/pgrep nginx >/dev/null 2>&1"`,
			want:    []string{`">/dev/null", "2>&1" are passed`},
			fix:     `script "/bin/sh -c '/usr/bin/pgrep nginx >/dev/null 2>&1'"`,
			fixArgs: []string{"/bin/sh", "-c", "/usr/bin/pgrep nginx >/dev/null 2>&1"},
		},
		{
			line:    `script "/bin/ps aux | /bin/grep -v grep | /bin/grep haproxy"`,
			want:    []string{`and "|" is passed to /bin/ps as an argument,`},
			fixArgs: []string{"/bin/sh", "-c", "/bin/ps aux | /bin/grep -v grep | /bin/grep haproxy"},
		},
		{
			line:    `script "/usr/bin/pgrep nginx; exit 0"`,
			want:    []string{`"nginx;"`},
			fixArgs: []string{"/bin/sh", "-c", "/usr/bin/pgrep nginx; exit 0"},
		},
		{
			line:    "script \"/usr/bin/test -f `cat /etc/x`\"",
			want:    []string{"\"`cat\", \"/etc/x`\" are not expanded"},
			fixArgs: []string{"/bin/sh", "-c", "/usr/bin/test -f `cat /etc/x`"},
		},
		{
			line:    `script "/usr/bin/test $1 = x"`,
			want:    []string{`"$1" is not expanded`},
			fixArgs: []string{"/bin/sh", "-c", "/usr/bin/test $1 = x"},
		},
		{
			line:    `script "/usr/bin/test -n $(cat /run/x.pid)"`,
			want:    []string{`"$(cat" is not expanded`},
			fixArgs: []string{"/bin/sh", "-c", "/usr/bin/test -n $(cat /run/x.pid)"},
		},
		{
			line:    `script "/bin/ls /run/nginx/*.pid"`,
			want:    []string{`"/run/nginx/*.pid" is not expanded as file patterns`},
			fixArgs: []string{"/bin/sh", "-c", "/bin/ls /run/nginx/*.pid"},
		},
		{
			line:    `script "exit 1"`,
			want:    []string{`"exit" is a shell keyword or builtin`},
			fixArgs: []string{"/bin/sh", "-c", "exit 1"},
		},
		{
			line:    `script "FOO=1 /etc/keepalived/check.sh"`,
			want:    []string{`"FOO=1" is a shell variable assignment`},
			fixArgs: []string{"/bin/sh", "-c", "FOO=1 /etc/keepalived/check.sh"},
		},
		{
			line:    `script "/usr/bin/cat <<< hi"`,
			want:    []string{`"<<<"`},
			fixArgs: []string{"/bin/bash", "-c", "/usr/bin/cat <<< hi"},
		},
		{
			line:    `script "~/check.sh"`,
			want:    []string{`~ is expanded by a shell only`},
			fixArgs: []string{"/bin/sh", "-c", "~/check.sh"},
		},
		// Quotes inside the command survive the two splits of the fixed line.
		{
			line:    `script "/usr/bin/grep -q 'it is' /x && /usr/bin/logger \"ok\" || exit 3" nobody nogroup`,
			want:    []string{`"&&", "||"`},
			fix:     `script "/bin/sh -c '/usr/bin/grep -q \\'it is\\' /x && /usr/bin/logger \"ok\" || exit 3'" nobody nogroup`,
			fixArgs: []string{"/bin/sh", "-c", `/usr/bin/grep -q 'it is' /x && /usr/bin/logger "ok" || exit 3`},
		},
		// An explicit shell whose -c string is not one word.
		{
			line:    `script "/bin/sh -c test -f /etc/keepalived/down"`,
			want:    []string{`/bin/sh -c takes the command as one word`, `runs "test" alone`},
			fix:     `script "/bin/sh -c 'test -f /etc/keepalived/down'"`,
			fixArgs: []string{"/bin/sh", "-c", "test -f /etc/keepalived/down"},
		},
		// Shell syntax after an explicit shell running a file.
		{
			line:    `script "/bin/bash /etc/keepalived/check.sh || exit 1"`,
			want:    []string{`"||" is passed to /bin/bash`},
			fixArgs: []string{"/bin/sh", "-c", "/bin/bash /etc/keepalived/check.sh || exit 1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			got, _ := lintOf(t, tc.line)
			if len(tc.want) == 0 {
				if len(got) != 0 {
					t.Errorf("unexpected warning: %q", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("want one warning, got %q", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got[0], w) {
					t.Errorf("warning %q lacks %q", got[0], w)
				}
			}
			i := strings.Index(got[0], "write: ")
			if i < 0 {
				t.Fatalf("warning %q shows no fixed line", got[0])
			}
			fix := got[0][i+len("write: "):]
			if tc.fix != "" && fix != tc.fix {
				t.Errorf("fixed line\n  %s\nwant\n  %s", fix, tc.fix)
			}
			again, s := lintOf(t, fix)
			if len(again) != 0 {
				t.Errorf("the fixed line %s draws a warning itself: %q", fix, again)
			}
			if !slices.Equal(s.Args, tc.fixArgs) {
				t.Errorf("the fixed line %s parses to %q, want %q", fix, s.Args, tc.fixArgs)
			}
			_, orig := lintOf(t, tc.line)
			if s.User != orig.User || s.Group != orig.Group {
				t.Errorf("the fixed line runs as %s:%s, the original as %s:%s", s.User, s.Group, orig.User, orig.Group)
			}
		})
	}
}

// TestScriptLintKeyword: the fixed line keeps the keyword it replaces.
func TestScriptLintKeyword(t *testing.T) {
	conf := `vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 1
    priority 100
    virtual_ipaddress {
        10.0.0.1
    }
    notify_master "systemctl start nginx && logger up"
}
`
	_, ds := ParseBytes(mainConf, []byte(conf), Options{})
	want := `notify_master "/bin/sh -c 'systemctl start nginx && logger up'"`
	for _, d := range ds {
		if strings.Contains(d.Message, "without a shell") {
			if !strings.HasSuffix(d.Message, want) || d.Pos.Line != lineOf(t, conf, `notify_master "systemctl start nginx && logger up"`) {
				t.Errorf("%v: %s; want it to end with %s", d.Pos, d.Message, want)
			}
			return
		}
	}
	t.Errorf("no lint warning in %v", ds)
}
