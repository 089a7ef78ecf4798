package config

import (
	"strings"
	"testing"
)

// TestScriptLintLVSScripts: MISC_CHECK's misc_path and a virtual server's
// quorum_up / quorum_down are exec'd without a shell too (check_misc.c and
// ipwrapper.c go through lib/notify.c), so -t lints them as it lints
// notify and vrrp_script lines, with the keyword kept in the fix.
func TestScriptLintLVSScripts(t *testing.T) {
	conf := `virtual_server 192.0.2.1 80 {
    protocol TCP
    quorum_up "systemctl start web && logger up"
    quorum_down "echo down > /tmp/q"
    real_server 10.0.0.1 80 {
        MISC_CHECK {
            misc_path "test -f /tmp/down || exit 1"
        }
    }
}
`
	_, ds := ParseBytes(mainConf, []byte(conf), Options{})
	for _, want := range []struct{ line, fix string }{
		{`quorum_up "systemctl start web && logger up"`, `quorum_up "/bin/sh -c 'systemctl start web && logger up'"`},
		{`quorum_down "echo down > /tmp/q"`, `quorum_down "/bin/sh -c 'echo down > /tmp/q'"`},
		{`misc_path "test -f /tmp/down || exit 1"`, `misc_path "/bin/sh -c 'test -f /tmp/down || exit 1'"`},
	} {
		line := lineOf(t, conf, want.line)
		found := false
		for _, d := range ds {
			if d.Pos.Line == line && strings.Contains(d.Message, "without a shell") {
				found = true
				if !strings.HasSuffix(d.Message, want.fix) {
					t.Errorf("line %d: %s; want it to end with %s", line, d.Message, want.fix)
				}
			}
		}
		if !found {
			t.Errorf("no lint warning for line %d (%s) in %v", line, want.line, ds)
		}
	}
}
