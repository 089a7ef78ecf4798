package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// mainConf is where the in-memory tests keep their main file; includes are
// resolved relative to it.
const mainConf = "/etc/keepalived/keepalived.conf"

// memFile is one file of memFS.
type memFile struct {
	data    string
	mode    fs.FileMode // permission and type bits; 0 means a 0644 regular file
	readErr error       // ReadFile fails with this (stat still works)
}

// memFS is an in-memory file system for Options.ReadFile, Stat and Glob,
// keyed by clean absolute paths, so that include tests never touch disk.
type memFS map[string]memFile

type memFileInfo struct {
	name string
	size int64
	mode fs.FileMode
}

func (i memFileInfo) Name() string       { return i.name }
func (i memFileInfo) Size() int64        { return i.size }
func (i memFileInfo) Mode() fs.FileMode  { return i.mode }
func (i memFileInfo) ModTime() time.Time { return time.Time{} }
func (i memFileInfo) IsDir() bool        { return i.mode.IsDir() }
func (i memFileInfo) Sys() any           { return nil }

func (m memFS) lookup(op, name string) (memFile, error) {
	f, ok := m[filepath.Clean(name)]
	if !ok {
		return memFile{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	if f.mode == 0 {
		f.mode = 0o644
	}
	return f, nil
}

func (m memFS) readFile(name string) ([]byte, error) {
	f, err := m.lookup("open", name)
	if err != nil {
		return nil, err
	}
	if f.readErr != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: f.readErr}
	}
	if f.mode.IsDir() {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("is a directory")}
	}
	return []byte(f.data), nil
}

func (m memFS) stat(name string) (fs.FileInfo, error) {
	f, err := m.lookup("stat", name)
	if err != nil {
		return nil, err
	}
	return memFileInfo{name: filepath.Base(name), size: int64(len(f.data)), mode: f.mode}, nil
}

// glob matches like filepath.Glob but returns the matches in reverse order:
// the reader must sort them itself, as glob(3) does.
func (m memFS) glob(pattern string) ([]string, error) {
	if _, err := filepath.Match(pattern, ""); err != nil {
		return nil, err
	}
	var out []string
	for name := range m {
		if ok, _ := filepath.Match(pattern, name); ok {
			out = append(out, name)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(out)))
	return out, nil
}

func (m memFS) options(o Options) Options {
	o.ReadFile, o.Stat, o.Glob = m.readFile, m.stat, m.glob
	return o
}

// parseFS parses mainConf from fsys and checks the form of every finding.
func parseFS(t testing.TB, fsys memFS, opts Options) (*Config, Diagnostics) {
	t.Helper()
	cfg, ds := Parse(mainConf, fsys.options(opts))
	checkDiagnosticForm(t, ds)
	return cfg, ds
}

// parseText parses text as mainConf.
func parseText(t testing.TB, text string, opts Options) (*Config, Diagnostics) {
	t.Helper()
	return parseFS(t, memFS{mainConf: {data: text}}, opts)
}

// checkDiagnosticForm asserts that every finding names its file and prints
// as "path:line: severity: message".
func checkDiagnosticForm(t testing.TB, ds Diagnostics) {
	t.Helper()
	for _, d := range ds {
		want := fmt.Sprintf("%s:%d: %s: %s", d.Pos.File, d.Pos.Line, d.Severity, d.Message)
		if d.Pos.File == "" || d.Pos.Line < 0 || d.String() != want {
			t.Errorf("diagnostic %q does not read \"path:line: severity: message\" (pos %+v)", d.String(), d.Pos)
		}
	}
}

// expand runs only the reader over mainConf and returns its logical lines
// as "LINE TEXT" (for mainConf) or "PATH:LINE TEXT" (for included files).
func expand(t testing.TB, fsys memFS, opts Options) ([]string, Diagnostics) {
	t.Helper()
	d := &diags{max: 10000}
	lines := readConfig(mainConf, fsys.options(opts), d)
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		if l.pos.File == mainConf {
			out = append(out, fmt.Sprintf("%d %s", l.pos.Line, l.text))
		} else {
			out = append(out, fmt.Sprintf("%s:%d %s", l.pos.File, l.pos.Line, l.text))
		}
	}
	checkDiagnosticForm(t, d.list)
	return out, d.list
}

// matchDiag reports whether d matches spec, "LOC: SEVERITY: SUBSTRING",
// where LOC is "LINE" for mainConf or "PATH:LINE".
func matchDiag(d Diagnostic, spec string) bool {
	loc, rest, _ := strings.Cut(spec, ": ")
	sev, sub, _ := strings.Cut(rest, ": ")
	if loc != "" && loc[0] >= '0' && loc[0] <= '9' {
		loc = mainConf + ":" + loc
	}
	prefix := loc + ": " + sev + ": "
	s := d.String()
	return strings.HasPrefix(s, prefix) && strings.Contains(s[len(prefix):], sub)
}

// wantDiags asserts that each spec matches a finding and, when exact is
// set, that there are no other findings.
func wantDiags(t testing.TB, ds Diagnostics, exact bool, specs ...string) {
	t.Helper()
	used := make([]bool, len(ds))
	for _, spec := range specs {
		found := false
		for i, d := range ds {
			if !used[i] && matchDiag(d, spec) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			t.Errorf("no finding matches %q; got:\n%s", spec, ds.String())
		}
	}
	if exact {
		for i, d := range ds {
			if !used[i] {
				t.Errorf("unexpected finding: %s", d)
			}
		}
	}
}

type lexCase struct {
	name  string
	in    string
	opts  Options
	want  []string // logical lines, "LINE TEXT"
	diags []string // every finding, as for wantDiags
}

func runLexCases(t *testing.T, cases []lexCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ds := expand(t, memFS{mainConf: {data: tc.in}}, tc.opts)
			if !slices.Equal(got, tc.want) {
				t.Errorf("lines of\n%s\n got: %q\nwant: %q", tc.in, got, tc.want)
			}
			wantDiags(t, ds, true, tc.diags...)
		})
	}
}

func TestLanguageComments(t *testing.T) {
	runLexCases(t, []lexCase{
		{name: "hash and bang comments",
			in:   "router_id a # comment\n# whole line\n  ! bang line\nrouter_id b! bang\nrouter_id c#x",
			want: []string{"1 router_id a", "4 router_id b", "5 router_id c"}},
		{name: "comment characters inside double quotes are text",
			in:   `router_id "a # b ! c" # real comment`,
			want: []string{`1 router_id "a # b ! c"`}},
		{name: "escaped comment characters",
			in:   `router_id a\#b\!c`,
			want: []string{`1 router_id a#b!c`}},
		{name: "escapes inside quotes are kept for the handler",
			in:   `router_id "a\#b"`,
			want: []string{`1 router_id "a\#b"`}},
		{name: "escaped backslash before a comment",
			in:   `router_id a\\#b`,
			want: []string{`1 router_id a\\`}},
		{name: "blanks and CRLF are trimmed, inner tabs kept",
			in:   "\t  router_id\t x  \r\n",
			want: []string{"1 router_id\t x"}},
		{name: "blank and comment lines keep line numbers",
			in:   "\n\n   \n# c\n\t\nrouter_id x\n",
			want: []string{"6 router_id x"}},
		{name: "unterminated quote",
			in:    "router_id \"abc\nrouter_id d",
			want:  []string{`1 router_id "abc`, "2 router_id d"},
			diags: []string{"1: error: unterminated quote"}},
	})
}

func TestLanguageWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`router_id a`, []string{"router_id", "a"}},
		{"a\t b  \t c", []string{"a", "b", "c"}},
		{`notify "/bin/x a b"`, []string{"notify", "/bin/x a b"}},
		{`a "b c" d`, []string{"a", "b c", "d"}},
		{`a "" b`, []string{"a", "", "b"}},
		{`router_id "my # router" # c`, []string{"router_id", "my # router"}},
		{`a "{ b }"`, []string{"a", "{ b }"}},
	}
	for _, tc := range tests {
		d := &diags{}
		lines := readConfig(mainConf, memFS{mainConf: {data: tc.in}}.options(Options{}), d)
		if len(lines) != 1 || len(d.list) != 0 {
			t.Errorf("%q: got %d lines, findings:\n%s", tc.in, len(lines), d.list.String())
			continue
		}
		if !slices.Equal(lines[0].words, tc.want) {
			t.Errorf("%q: words %q, want %q", tc.in, lines[0].words, tc.want)
		}
	}
}

func TestLanguageBraces(t *testing.T) {
	runLexCases(t, []lexCase{
		{name: "brace on the keyword's line",
			in:   "vrrp_instance V {\n state MASTER\n}",
			want: []string{"1 vrrp_instance V", "1 {", "2 state MASTER", "3 }"}},
		{name: "brace on the next line",
			in:   "vrrp_instance V\n{\n state MASTER\n}",
			want: []string{"1 vrrp_instance V", "2 {", "3 state MASTER", "4 }"}},
		{name: "one-line value block",
			in:   "track_script { chk }\nvirtual_ipaddress { 10.0.0.1/24 }",
			want: []string{"1 track_script", "1 {", "1 chk", "1 }", "2 virtual_ipaddress", "2 {", "2 10.0.0.1/24", "2 }"}},
		{name: "nested blocks on one line",
			in:   "a { b { c d } }",
			want: []string{"1 a", "1 {", "1 b", "1 {", "1 c d", "1 }", "1 }"}},
		{name: "text after a closing brace is a line of its own",
			in:   "a { b } c",
			want: []string{"1 a", "1 {", "1 b", "1 }", "1 c"}},
		{name: "braces inside quotes are text",
			in:   `notify "/bin/x {a}" {`,
			want: []string{`1 notify "/bin/x {a}"`, "1 {"}},
		{name: "no blank between word and brace",
			in:   "a{b}",
			want: []string{"1 a", "1 {", "1 b", "1 }"}},
	})
}

// TestLanguageBlockErrors checks unbalanced and misplaced braces through
// the whole parse: each error names the line to look at.
func TestLanguageBlockErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"missing closing brace names where the block opened",
			"global_defs {\n router_id a\n}\nvrrp_script chk {\n script /bin/true\n\n",
			[]string{`4: error: missing '}': the block of "vrrp_script" opened here is never closed`}},
		{"missing closing braces of nested blocks",
			"global_defs {\n notification_email {\n a@b\n",
			[]string{`2: error: missing '}': the block of "notification_email"`, `1: error: missing '}': the block of "global_defs"`}},
		{"extra closing brace",
			"global_defs {\n router_id a\n}\n}\n",
			[]string{"4: error: extra '}'"}},
		{"brace without a keyword",
			"{\n router_id a\n}\n",
			[]string{"1: error: unexpected '{' without a keyword"}},
		{"second block for one keyword",
			"global_defs {\n}\n{\n}\n",
			[]string{"3: error: unexpected '{' without a keyword"}},
		{"block after a keyword that takes none",
			"global_defs {\n router_id a {\n b\n }\n}\n",
			[]string{"2: error: router_id does not take a { } block"}},
		{"block keyword without its block",
			"global_defs\n",
			[]string{"1: error: global_defs needs a { } block"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, ds := parseText(t, tc.in, Options{})
			if cfg == nil {
				t.Fatal("Parse returned a nil Config")
			}
			wantDiags(t, ds, false, tc.want...)
		})
	}
}

func TestLanguageDefinitions(t *testing.T) {
	random := Options{Random: func(lo, hi int64) int64 { return lo*100 + hi }}
	env := Options{LookupEnv: func(name string) (string, bool) {
		if name == "FOO" {
			return "bar", true
		}
		return "", false
	}}
	runLexCases(t, []lexCase{
		{name: "$NAME and ${NAME}",
			in:   "$IF=eth0\ninterface $IF\ninterface ${IF}1",
			want: []string{"2 interface eth0", "3 interface eth01"}},
		{name: "unknown names are left alone (and their braces split the line, as in keepalived)",
			in:   "x $NOPE $ $1 y$ ${NOPE}",
			want: []string{"1 x $NOPE $ $1 y$ $", "1 {", "1 NOPE", "1 }"}},
		{name: "a name ends at blank, comma, parenthesis or end",
			in:   "$A=1\nx $A,$A) $Ab $A- $A",
			want: []string{"2 x 1,1) $Ab $A- 1"}},
		{name: "redefinition applies to later lines",
			in:   "$A=1\nx $A\n$A=2\nx $A",
			want: []string{"2 x 1", "4 x 2"}},
		{name: "values are expanded when used",
			in:   "$A=$B x\n$B=1\ny $A",
			want: []string{"3 y 1 x"}},
		{name: "blanks around = make no definition",
			in:   "$A = 1",
			want: []string{"1 $A = 1"}},
		{name: "empty value",
			in:   "$E=\nx${E}y",
			want: []string{"2 xy"}},
		{name: "multi-line definition",
			in:   "$M=a \\\n  b $X\\\n  c\n$X=1\nstart $M",
			want: []string{"5 start a", "5 b 1", "5 c"}},
		{name: "multi-line definition only expands at the end of a line",
			in:   "$M=a\\\nb\nx $M y",
			want: []string{"3 x $M y"}},
		{name: "commented-out line inside a multi-line definition",
			in:   "$M=a \\\n# b \\\n  c\n$M",
			want: []string{"4 a", "4 c"}},
		{name: "comment-only line ends a multi-line definition",
			in:   "$M=a \\\n# b\nc\n$M",
			want: []string{"3 c", "4 a"}},
		{name: "blank line ends a multi-line definition",
			in:   "$M=a \\\n\nc\n$M",
			want: []string{"3 c", "4 a"}},
		{name: "empty multi-line definition is an ordinary empty one",
			in:   "$M=\\\n\nx $M y",
			want: []string{"3 x  y"}},
		{name: "definitions override built-ins",
			in:   "$_HASH=h\nx ${_HASH}",
			want: []string{"2 x h"}},
		{name: "${_INSTANCE} is the config id",
			in:   "router_id ${_INSTANCE}\nrouter_id $_INSTANCE",
			opts: Options{ConfigID: "lb1"},
			want: []string{"1 router_id lb1", "2 router_id lb1"}},
		{name: "${_RANDOM} passes its range to the Random seam",
			in:   "a ${_RANDOM 1 5}\nb ${_RANDOM}\nc ${_RANDOM 7}",
			opts: random,
			want: []string{"1 a 105", "2 b 32767", "3 c 33467"}},
		{name: "${_RANDOM} with a bad range",
			in:    "a ${_RANDOM 5 1}",
			opts:  random,
			want:  []string{"1 a"},
			diags: []string{`1: error: invalid parameters "5 1" for ${_RANDOM}`}},
		{name: "${_ENV NAME} through the LookupEnv seam",
			in:   "a ${_ENV FOO}\nb ${_ENV NOPE}c",
			opts: env,
			want: []string{"1 a bar", "2 b c"}},
		{name: "${_HASH} and ${_BANG} inside quotes",
			in:   `notify "/bin/echo ${_HASH}${_BANG}"`,
			want: []string{`1 notify "/bin/echo #!"`}},
		{name: "${_HASH} outside quotes starts a comment, as in keepalived",
			in:   "router_id a${_HASH}b\nrouter_id c${_BANG}d",
			want: []string{"1 router_id a", "2 router_id c"}},
		{name: "${_PWD} is the directory of the file being read",
			in:   "a ${_PWD}",
			want: []string{"1 a /etc/keepalived"}},
		{name: "self-referential definition is an error, not a hang",
			in:    "$A=$A x\ny $A\nz",
			want:  []string{"3 z"},
			diags: []string{"2: error: definitions expand into themselves"}},
		{name: "mutually recursive definitions",
			in:    "$A=$B\n$B=$A\n$A",
			want:  nil,
			diags: []string{"3: error: definitions expand into themselves"}},
		{name: "@ID lines from a definition",
			in:   "$C=@lb1 router_id x\n$C",
			opts: Options{ConfigID: "lb1"},
			want: []string{"2 router_id x"}},
	})
}

func TestLanguageConditionals(t *testing.T) {
	in := "@lb1 router_id a\n@lb2 router_id b\n@^lb1 router_id c\n@^lb2 router_id d\n@lb1\n@lb10 router_id e\n@lb1\trouter_id f"
	runLexCases(t, []lexCase{
		{name: "matching config id", in: in, opts: Options{ConfigID: "lb1"},
			want: []string{"1 router_id a", "4 router_id d", "7 router_id f"}},
		{name: "other config id", in: in, opts: Options{ConfigID: "lb2"},
			want: []string{"2 router_id b", "3 router_id c"}},
		{name: "no config id", in: in,
			want: []string{"3 router_id c", "4 router_id d"}},
	})
}

func TestLanguageRepeaters(t *testing.T) {
	runLexCases(t, []lexCase{
		{name: "~SEQ(i, 3)", in: "~SEQ(i, 3) a$i",
			want: []string{"1 a1", "1 a2", "1 a3"}},
		{name: "~SEQ(i, 2, 5)", in: "~SEQ(i, 2, 5) b$i",
			want: []string{"1 b2", "1 b3", "1 b4", "1 b5"}},
		{name: "~SEQ(i, 10, -2, 4)", in: "~SEQ(i, 10, -2, 4) c$i",
			want: []string{"1 c10", "1 c8", "1 c6", "1 c4"}},
		{name: "~SEQx(i, 8, 12) is hexadecimal", in: "~SEQx(i, 8, 12) d$i",
			want: []string{"1 d8", "1 d9", "1 da", "1 db", "1 dc"}},
		{name: "~SEQ counting down by default", in: "~SEQ(i, 3, 1) e$i\n~SEQ(i, 0) f$i\n~SEQ(i, -2) g$i",
			want: []string{"1 e3", "1 e2", "1 e1", "2 f1", "2 f0", "3 g-1", "3 g-2"}},
		{name: "~SEQ with $definition parameters", in: "$N=3\n$S=2\n~SEQ(i, $S, ${N}) h$i",
			want: []string{"3 h2", "3 h3"}},
		{name: "nested ~SEQ", in: "~SEQ(i, 2) ~SEQ(j, 0, 1) k${i}_$j",
			want: []string{"1 k1_0", "1 k1_1", "1 k2_0", "1 k2_1"}},
		{name: "blank before the parenthesis", in: "~SEQ (i, 2) m$i",
			want: []string{"1 m1", "1 m2"}},
		{name: "~SEQ body with braces", in: "~SEQ(i, 2) n$i { x }",
			want: []string{"1 n1", "1 {", "1 x", "1 }", "1 n2", "1 {", "1 x", "1 }"}},
		{name: "~LST(v, a, b, c)", in: "~LST(v, a, b, c) p$v",
			want: []string{"1 pa", "1 pb", "1 pc"}},
		{name: "~LST({a,b}, {1,2}, {3,4})", in: "~LST({a,b}, {1,2}, {3,4}) q${a}_$b",
			want: []string{"1 q1_2", "1 q3_4"}},
		{name: "~LST missing values are blank", in: "~LST({a, b}, {1, 2}, {3}) r${a}_${b}.",
			want: []string{"1 r1_2.", "1 r3_."}},
		{name: "~LST inside ~SEQ", in: "~SEQ(i, 2) ~LST(v, x, y) s${i}$v",
			want: []string{"1 s1x", "1 s1y", "1 s2x", "1 s2y"}},
	})
}

func TestLanguageRepeaterErrors(t *testing.T) {
	for _, in := range []string{
		"~SEQ(i) x",
		"~SEQ(, 3) x",
		"~SEQ(i, 1, 0, 5) x",
		"~SEQ(i, 1, -1, 5) x",
		"~SEQ(i, 5, 1, 1) x",
		"~SEQ(i, a) x",
		"~SEQ(i, 1, 2, 3, 4) x",
		"~SEQ i, 3) x",
		"~SEQ(i, 3 x",
		"~SEQx(i, -3) x",
		"~SEQ(i, $UNDEFINED) x",
		"~LST(v) x",
		"~LST(v, a, b x",
		"~LST({a,b}, {1,2,3}) x",
		"~LST({a,b}, {1,2) x",
		"~LST x",
	} {
		got, ds := expand(t, memFS{mainConf: {data: in}}, Options{})
		if len(got) != 0 {
			t.Errorf("%q expanded to %q", in, got)
		}
		errs := ds.Errors()
		if len(errs) != 1 || errs[0].Pos.Line != 1 || !strings.Contains(errs[0].Message, in[:4]) {
			t.Errorf("%q: want one error at line 1 naming %s, got:\n%s", in, in[:4], ds.String())
		}
	}
}

// TestLanguageMaxLines checks that expansions beyond Options.MaxLines are
// refused with one error and without building them.
func TestLanguageMaxLines(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		line int
	}{
		{"one ~SEQ beyond the limit", "~SEQ(i, 1000) x$i", 100, 1},
		{"nested ~SEQ beyond the limit", "~SEQ(i, 50) ~SEQ(j, 50) x", 100, 1},
		{"~SEQ over a multi-line definition", "$M=a\\\nb\\\nc\n~SEQ(i, 40) $M", 100, 4},
		{"huge count with the default limit", "~SEQ(i, 9223372036854775807) x", 0, 1},
		{"count that overflows", "~SEQ(i, -9223372036854775807, 9223372036854775807) x", 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			got, ds := expand(t, memFS{mainConf: {data: tc.in}}, Options{MaxLines: tc.max})
			limit := tc.max
			if limit == 0 {
				limit = 5_000_000
			}
			if len(got) > limit {
				t.Errorf("%d lines kept, more than MaxLines %d", len(got), limit)
			}
			wantDiags(t, ds, true, fmt.Sprintf("%d: error: configuration expands to more than %d lines", tc.line, limit))
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
	// Exactly at the limit is fine.
	got, ds := expand(t, memFS{mainConf: {data: "~SEQ(i, 100) x$i"}}, Options{MaxLines: 100})
	if len(got) != 100 || len(ds) != 0 {
		t.Errorf("100 lines with MaxLines 100: %d lines, findings:\n%s", len(got), ds.String())
	}
}

// TestLanguageSeqNearMaxInt64 pins that a ~SEQ ending at the largest
// int64 stops there instead of wrapping around.
func TestLanguageSeqNearMaxInt64(t *testing.T) {
	got, ds := expand(t, memFS{mainConf: {data: "~SEQ(i, 9223372036854775806, 9223372036854775807) x$i\n" +
		"~SEQ(i, -9223372036854775807, -1, -9223372036854775808) y$i"}}, Options{MaxLines: 1000})
	want := []string{"1 x9223372036854775806", "1 x9223372036854775807", "2 y-9223372036854775807", "2 y-9223372036854775808"}
	if !slices.Equal(got, want) || len(ds) != 0 {
		t.Errorf("got %d lines starting %q, want %q; findings:\n%s", len(got), got[:min(len(got), 4)], want, ds.String())
	}
}

// readBounded runs only the reader over text and gives up after d, so
// that a test of a runaway expansion fails instead of hanging. ok is false
// on a timeout (the reader goroutine is then abandoned).
func readBounded(text string, opts Options, d time.Duration) (lines int, ds Diagnostics, ok bool) {
	type result struct {
		lines int
		ds    Diagnostics
	}
	done := make(chan result, 1)
	go func() {
		dg := &diags{max: 10000}
		ls := readConfig(mainConf, memFS{mainConf: {data: text}}.options(opts), dg)
		done <- result{len(ls), dg.list}
	}()
	select {
	case r := <-done:
		return r.lines, r.ds, true
	case <-time.After(d):
		return 0, nil, false
	}
}

// TestLanguageExpansionWork checks that expansions that make few lines
// are still bounded: nested ~SEQ over a definition or an unmatched @ID
// line, and definitions that double in size at each level.
func TestLanguageExpansionWork(t *testing.T) {
	t.Run("nested ~SEQ making no lines", func(t *testing.T) {
		for _, in := range []string{"~SEQ(i, 100000) ~SEQ(j, 100000) $a=$i", "~SEQ(i, 100000) ~SEQ(j, 100000) @nomatch x"} {
			_, ds, ok := readBounded(in, Options{MaxLines: 100000}, 5*time.Second)
			if !ok {
				t.Errorf("%s: still expanding after 5s", in)
			} else if !ds.HasErrors() {
				t.Errorf("%s: no error", in)
			}
		}
	})
	t.Run("definitions doubling at each level", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("$A0=xxxxxxxxxxxxxxxx\n")
		for i := 1; i <= 22; i++ {
			fmt.Fprintf(&b, "$A%d=$A%d $A%d\n", i, i-1, i-1)
		}
		b.WriteString("router_id $A22\n")
		_, ds, ok := readBounded(b.String(), Options{MaxLines: 100000}, 2*time.Second)
		if !ok {
			t.Fatal("still expanding after 2s")
		}
		wantDiags(t, ds, false, "24: error: ")
	})
}

// TestLanguageSeqInstances generates whole vrrp_instance blocks with ~SEQ
// over a multi-line definition and checks the typed result.
func TestLanguageSeqInstances(t *testing.T) {
	in := `$INST=\
vrrp_instance VI_${i} { \
  interface eth${IFN} \
  virtual_router_id $i \
  priority ${PRIO} \
  virtual_ipaddress { \
    10.0.${i}.1/24 \
  } \
}

$IFN=1
$PRIO=150
~SEQ(i, 3) $INST
`
	cfg, ds := parseText(t, in, Options{})
	wantDiags(t, ds, true)
	if cfg == nil {
		t.Fatal("nil Config")
	}
	var got []string
	for _, v := range cfg.VRRPInstances {
		got = append(got, fmt.Sprintf("%s %s vrid=%d prio=%d %s @%s vip@%d",
			v.Name, v.Interface, v.VirtualRouterID, v.Priority, v.VirtualIPAddresses[0].Prefix, v.Pos, v.VirtualIPAddresses[0].Pos.Line))
	}
	want := []string{
		"VI_1 eth1 vrid=1 prio=150 10.0.1.1/24 @" + mainConf + ":13 vip@13",
		"VI_2 eth1 vrid=2 prio=150 10.0.2.1/24 @" + mainConf + ":13 vip@13",
		"VI_3 eth1 vrid=3 prio=150 10.0.3.1/24 @" + mainConf + ":13 vip@13",
	}
	if !slices.Equal(got, want) {
		t.Errorf("instances:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestLanguageSeqInstancesHex generates IPv6 instances with ~SEQx, whose
// hexadecimal values suit addresses.
func TestLanguageSeqInstancesHex(t *testing.T) {
	in := "$V=\\\nvrrp_instance V6_${i} { \\\n interface eth${i} \\\n virtual_router_id 1 \\\n" +
		" virtual_ipaddress { \\\n  2001:db8::${i}/64 \\\n } \\\n}\n" +
		"~SEQx(i, 254, 255) $V\n"
	cfg, ds := parseText(t, in, Options{})
	wantDiags(t, ds, true)
	var got []string
	for _, v := range cfg.VRRPInstances {
		got = append(got, fmt.Sprintf("%s %d v%d %s", v.Name, v.VirtualRouterID, v.Version, v.VirtualIPAddresses[0].Prefix))
	}
	want := []string{"V6_fe 1 v3 2001:db8::fe/64", "V6_ff 1 v3 2001:db8::ff/64"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestLanguageInclude(t *testing.T) {
	const dir = "/etc/keepalived/"
	tests := []struct {
		name  string
		files memFS // mainConf is set from main
		main  string
		opts  Options
		want  []string
		diags []string
	}{
		{name: "relative to the including file, also from a subdirectory",
			main: "m1\ninclude conf.d/a.conf\nm3",
			files: memFS{
				dir + "conf.d/a.conf":     {data: "a1\ninclude sub/b.conf\ninclude ../common.conf\na4"},
				dir + "conf.d/sub/b.conf": {data: "\nb2"},
				dir + "common.conf":       {data: "c1"},
			},
			want: []string{"1 m1", dir + "conf.d/a.conf:1 a1", dir + "conf.d/sub/b.conf:2 b2", dir + "common.conf:1 c1",
				dir + "conf.d/a.conf:4 a4", "3 m3"}},
		{name: "absolute path",
			main:  "include /srv/ka/x.conf",
			files: memFS{"/srv/ka/x.conf": {data: "x1"}},
			want:  []string{"/srv/ka/x.conf:1 x1"}},
		{name: "glob matches in sorted order",
			main: "include conf.d/*.conf",
			files: memFS{
				dir + "conf.d/20-b.conf": {data: "b"},
				dir + "conf.d/10-a.conf": {data: "a"},
				dir + "conf.d/30-c.conf": {data: "c"},
				dir + "conf.d/15.txt":    {data: "txt"},
			},
			want: []string{dir + "conf.d/10-a.conf:1 a", dir + "conf.d/20-b.conf:1 b", dir + "conf.d/30-c.conf:1 c"}},
		{name: "braces in the order written, each glob sorted",
			main: "include {b,a*}.conf",
			files: memFS{
				dir + "a2.conf": {data: "a2"},
				dir + "a1.conf": {data: "a1"},
				dir + "b.conf":  {data: "b"},
			},
			want: []string{dir + "b.conf:1 b", dir + "a1.conf:1 a1", dir + "a2.conf:1 a2"}},
		{name: "nested braces",
			main: "include {x,y{1,2}}.conf",
			files: memFS{
				dir + "x.conf":  {data: "x"},
				dir + "y1.conf": {data: "y1"},
				dir + "y2.conf": {data: "y2"},
			},
			want: []string{dir + "x.conf:1 x", dir + "y1.conf:1 y1", dir + "y2.conf:1 y2"}},
		{name: "include inside a block",
			main:  "global_defs {\n include gd.conf\n}",
			files: memFS{dir + "gd.conf": {data: "router_id r"}},
			want:  []string{"1 global_defs", "1 {", dir + "gd.conf:1 router_id r", "3 }"}},
		{name: "include pattern and definitions across files",
			main:  "$D=conf.d\ninclude ${D}/a.conf\nx $FROM_A",
			files: memFS{dir + "conf.d/a.conf": {data: "$FROM_A=defined in a\na ${_PWD}"}},
			want:  []string{dir + "conf.d/a.conf:2 a /etc/keepalived/conf.d", "3 x defined in a"}},
		{name: "include cycle names the chain",
			main: "include a.conf\nm2",
			files: memFS{
				dir + "a.conf": {data: "a1\ninclude b.conf"},
				dir + "b.conf": {data: "include a.conf\nb2"},
			},
			want:  []string{dir + "a.conf:1 a1", dir + "b.conf:2 b2", "2 m2"},
			diags: []string{dir + "b.conf:1: error: include cycle: /etc/keepalived/a.conf -> /etc/keepalived/b.conf -> /etc/keepalived/a.conf"}},
		{name: "a file including itself",
			main:  "include keepalived.conf\nm2",
			want:  []string{"2 m2"},
			diags: []string{"1: error: include cycle: " + mainConf + " -> " + mainConf}},
		{name: "the same file twice is no cycle",
			main:  "include a.conf\ninclude a.conf",
			files: memFS{dir + "a.conf": {data: "a"}},
			want:  []string{dir + "a.conf:1 a", dir + "a.conf:1 a"}},
		{name: "plain include of a missing file is a warning",
			main:  "include missing.conf\nm2",
			want:  []string{"2 m2"},
			diags: []string{"1: warning: included file /etc/keepalived/missing.conf does not exist"}},
		{name: "includem of a missing file is an error",
			main:  "includem missing.conf",
			diags: []string{"1: error: included file /etc/keepalived/missing.conf does not exist"}},
		{name: "includew of a missing file is an error",
			main:  "includew missing.conf",
			diags: []string{"1: error: included file /etc/keepalived/missing.conf does not exist"}},
		{name: "includeb and includer of a missing file are warnings",
			main:  "includeb missing.conf\nincluder missing.conf",
			diags: []string{"1: warning: does not exist", "2: warning: does not exist"}},
		{name: "plain include of an unreadable file is a warning",
			main:  "include secret.conf",
			files: memFS{dir + "secret.conf": {readErr: fs.ErrPermission}},
			diags: []string{"1: warning: cannot read configuration file"}},
		{name: "includer of an unreadable file is an error",
			main:  "includer secret.conf",
			files: memFS{dir + "secret.conf": {readErr: fs.ErrPermission}},
			diags: []string{"1: error: cannot read configuration file"}},
		{name: "glob in a missing directory: warning, error for includem, includew and includea (keepalived counts the directory as a missing file)",
			main:  "include none/*.conf\nincludem none/*.conf\nincludew none/*.conf\nincludea none/*.conf",
			diags: []string{"1: warning: no configuration files match", "2: error: no configuration files match", "3: error: no configuration files match", "4: error: no configuration files match"}},
		{name: "missing brace alternative: warning, error for includeb and includea",
			main:  "include {a,b}.conf\nincludeb {a,b}.conf\nincludea {a,b}.conf",
			files: memFS{dir + "a.conf": {data: "a"}},
			want:  []string{dir + "a.conf:1 a", dir + "a.conf:1 a", dir + "a.conf:1 a"},
			diags: []string{"1: warning: included file /etc/keepalived/b.conf does not exist", "2: error: b.conf does not exist", "3: error: b.conf does not exist"}},
		{name: "executable files are skipped",
			main:  "include conf.d/*\nincluder conf.d/run.sh",
			files: memFS{dir + "conf.d/a.conf": {data: "a"}, dir + "conf.d/run.sh": {data: "#!/bin/sh", mode: 0o755}},
			want:  []string{dir + "conf.d/a.conf:1 a"},
			diags: []string{"1: warning: included /etc/keepalived/conf.d/run.sh is not a regular non-executable file; skipping it", "2: error: run.sh is not a regular non-executable file"}},
		{name: "directories are skipped",
			main:  "include conf.d/*",
			files: memFS{dir + "conf.d/a.conf": {data: "a"}, dir + "conf.d/sub": {mode: fs.ModeDir | 0o755}},
			want:  []string{dir + "conf.d/a.conf:1 a"},
			diags: []string{"1: warning: conf.d/sub is not a regular non-executable file"}},
		{name: "bad glob pattern",
			main:  "include [.conf",
			diags: []string{"1: error: bad include pattern"}},
		{name: "include followed by a variant letter only",
			main: "includex a.conf\ninclude",
			want: []string{"1 includex a.conf", "2 include"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fsys := memFS{mainConf: {data: tc.main}}
			for k, v := range tc.files {
				fsys[k] = v
			}
			got, ds := expand(t, fsys, tc.opts)
			if !slices.Equal(got, tc.want) {
				t.Errorf("lines\n got: %q\nwant: %q", got, tc.want)
			}
			wantDiags(t, ds, true, tc.diags...)
		})
	}
}

// TestLanguageIncludeVariantsLikeKeepalived pins the include variants where
// keepalived 2.2.7 (checked with keepalived -t) decides differently from
// vrrpkit.
func TestLanguageIncludeVariantsLikeKeepalived(t *testing.T) {
	fsys := memFS{
		mainConf:                 {data: "includem {a,b}.conf\nincludew {a,c}.conf\nincludem nodir/*.conf\ninclude nodir/*.conf"},
		"/etc/keepalived/a.conf": {data: "a"},
	}
	_, ds := expand(t, fsys, Options{})
	wantDiags(t, ds, true, "1: warning: b.conf", "2: warning: c.conf", "3: error: nodir", "4: warning: nodir")
}

// TestLanguageIncludedPositions checks that values read from an included
// file carry that file's path and line, in the model and in findings.
func TestLanguageIncludedPositions(t *testing.T) {
	fsys := memFS{
		mainConf: {data: "global_defs {\n router_id main\n}\ninclude instances/*.conf\n"},
		"/etc/keepalived/instances/vi1.conf": {data: `# first instance
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 1
    priorty 100
    virtual_ipaddress {
        10.0.0.1/24
    }
}
`},
	}
	cfg, ds := parseFS(t, fsys, Options{})
	const inc = "/etc/keepalived/instances/vi1.conf"
	wantDiags(t, ds, true, inc+`:5: warning: unknown keyword "priorty" in vrrp_instance VI_1 (did you mean "priority"?)`)
	v := cfg.VRRPInstances[0]
	for _, c := range []struct {
		what string
		got  Pos
		line int
	}{
		{"instance", v.Pos, 2},
		{"interface", v.At("interface"), 3},
		{"virtual_router_id", v.At("virtual_router_id"), 4},
		{"vip", v.VirtualIPAddresses[0].Pos, 7},
		{"global_defs", cfg.GlobalDefs.At("router_id"), 2},
	} {
		wantFile := inc
		if c.what == "global_defs" {
			wantFile = mainConf
		}
		if c.got != (Pos{File: wantFile, Line: c.line}) {
			t.Errorf("%s at %v, want %s:%d", c.what, c.got, wantFile, c.line)
		}
	}
}

func TestLanguageMainFileProblems(t *testing.T) {
	t.Run("missing", func(t *testing.T) {
		cfg, ds := Parse("/nonexistent/keepalived.conf", memFS{}.options(Options{}))
		if cfg != nil {
			t.Errorf("Config for a missing file")
		}
		if len(ds) != 1 || ds[0].Severity != Error || ds[0].Pos != (Pos{File: "/nonexistent/keepalived.conf"}) {
			t.Errorf("want one file-level error, got:\n%s", ds.String())
		}
		if !strings.HasPrefix(ds.String(), "/nonexistent/keepalived.conf:0: error: cannot read configuration file") {
			t.Errorf("got %q", ds.String())
		}
	})
	t.Run("unreadable", func(t *testing.T) {
		cfg, ds := Parse(mainConf, memFS{mainConf: {readErr: fs.ErrPermission}}.options(Options{}))
		if cfg == nil {
			t.Fatal("nil Config")
		}
		wantDiags(t, ds, true, mainConf+":0: error: cannot read configuration file")
	})
	t.Run("ParseBytes names the data", func(t *testing.T) {
		_, ds := ParseBytes("mem.conf", []byte("bogus_keyword\n"), Options{})
		wantDiags(t, ds, true, `mem.conf:1: error: unknown top-level keyword "bogus_keyword"`)
	})
}

// TestLanguageScriptArgs checks keepalived's second splitting of command
// lines: quotes of both kinds group, backslash escapes are decoded, and
// words after the command are the user and group.
func TestLanguageScriptArgs(t *testing.T) {
	tests := []struct {
		line        string
		args        []string
		user, group string
		err         string
	}{
		{line: `notify "/bin/x a b"`, args: []string{"/bin/x", "a", "b"}},
		{line: `notify /bin/x`, args: []string{"/bin/x"}},
		{line: `notify "/bin/x 'a b' c"`, args: []string{"/bin/x", "a b", "c"}},
		{line: `notify '/bin/x "a b"'`, args: []string{"/bin/x", "a b"}},
		{line: `notify "/bin/x '\ta' \x41"`, args: []string{"/bin/x", "\ta", "A"}},
		{line: `notify "/bin/x \101\cA"`, args: []string{"/bin/x", "A\x01"}},
		{line: `notify "/bin/x 'it\\\'s'"`, args: []string{"/bin/x", "it's"}},
		{line: `notify "/bin/x \#y"`, args: []string{"/bin/x", "#y"}},
		{line: `notify "/bin/echo ${_HASH}"`, args: []string{"/bin/echo", "#"}},
		{line: `notify "/bin/x" nobody`, args: []string{"/bin/x"}, user: "nobody"},
		{line: `notify "/bin/x a" nobody nogroup`, args: []string{"/bin/x", "a"}, user: "nobody", group: "nogroup"},
		{line: `notify "/bin/x 'a"`, err: `notify: cannot split command "/bin/x 'a"`},
		{line: `notify ""`, err: "notify: missing command"},
		{line: `notify`, err: "notify: missing command"},
	}
	for _, tc := range tests {
		in := "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress { 10.0.0.1/24 }\n " + tc.line + "\n}\n"
		cfg, ds := parseText(t, in, Options{})
		s := cfg.VRRPInstances[0].Any
		if tc.err != "" {
			wantDiags(t, ds, true, "5: error: "+tc.err)
			if s != nil {
				t.Errorf("%s: script %+v despite the error", tc.line, s)
			}
			continue
		}
		wantDiags(t, ds, true)
		if s == nil {
			t.Errorf("%s: no script", tc.line)
			continue
		}
		if !slices.Equal(s.Args, tc.args) || s.User != tc.user || s.Group != tc.group || s.Pos.Line != 5 {
			t.Errorf("%s: got args %q user %q group %q line %d, want %q %q %q", tc.line, s.Args, s.User, s.Group, s.Pos.Line, tc.args, tc.user, tc.group)
		}
	}
}

// TestLanguageWhitespace pins keepalived's notion of a blank: alloc_strvec_r
// and alloc_strvec_quoted_escaped split words at " \t\f\n\r\v".
func TestLanguageWhitespace(t *testing.T) {
	in := "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress { 10.0.0.1/24 }\n" +
		` notify "/bin/x a\nb\rc\vd\fe"` + "\n}\nglobal_defs {\n router_id\fr1\v\n}\n"
	cfg, ds := parseText(t, in, Options{})
	wantDiags(t, ds, true)
	if got := cfg.VRRPInstances[0].Any; got == nil || !slices.Equal(got.Args, []string{"/bin/x", "a", "b", "c", "d", "e"}) {
		t.Errorf("notify args %q", got.Args)
	}
	if cfg.GlobalDefs.RouterID != "r1" {
		t.Errorf("router_id %q", cfg.GlobalDefs.RouterID)
	}
}

// readFuzzInput returns the []byte of a "go test fuzz v1" corpus file.
func readFuzzInput(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	header, body, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
	body, ok := strings.CutPrefix(body, "[]byte(")
	if header != "go test fuzz v1" || !ok || !strings.HasSuffix(body, ")") {
		t.Fatalf("%s: not a one-[]byte go fuzz corpus file", path)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(body, ")"))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return s
}

// crOnlyLine is the fuzz regression input where a line of only "\r\r"
// before a '}' reached the address decoder as a line with no word and
// panicked. keepalived 2.2.7 -t accepts it (see oracleCases).
var crOnlyLine = filepath.Join("testdata", "fuzz", "FuzzParse", "cr-only-line-in-vip-block")

// blankKindsConf has lines of each of keepalived's blanks but the newline;
// keepalived 2.2.7 -t accepts it too (see oracleCases).
const blankKindsConf = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 50\n\f\v\r\n virtual_ipaddress {\n\r\n 10.0.0.1\n\t\r\f\v\n }\n}\n"

// crOnlyLineConf is that input's text, for the keepalived oracle.
const crOnlyLineConf = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 50\n priority 100\n virtual_ipaddress {\n 10.0.0.1\n \r\r }\n}\n"

// TestLanguageBlankOnlyLines: a line (or a piece between braces) holding
// only keepalived's blanks " \t\f\n\r\v" is no line, in every kind of
// block, as alloc_strvec returning NULL makes keepalived skip it.
func TestLanguageBlankOnlyLines(t *testing.T) {
	if got := readFuzzInput(t, crOnlyLine); got != crOnlyLineConf {
		t.Fatalf("%s holds %q, the oracle case %q", crOnlyLine, got, crOnlyLineConf)
	}
	cases := map[string]string{
		"fuzz input":  crOnlyLineConf,
		"blank kinds": blankKindsConf,
		"between braces": "vrrp_instance VI_1 {\r\n interface eth0\r\n virtual_router_id 50\r\n virtual_ipaddress { \r } \r\n" +
			" virtual_ipaddress_excluded {\r\r}\n virtual_routes { \r\f }\n virtual_rules {\v}\n" +
			" unicast_peer {\r}\n track_interface { \r }\n track_script {\r\r}\n virtual_ipaddress {\n 10.0.0.1\n\r}\r\n}\r\n",
		"value blocks": "virtual_server_group G {\n\r\n 10.0.0.1 80\n \r }\nvirtual_server group G {\n\r\n real_server 10.0.1.1 80 {\r\n \r\n }\n}\n" +
			"global_defs {\n notification_email {\r}\n\r\n router_id r1\n}\n",
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			cfg, ds := parseText(t, in, Options{Host: fakeHost{ifaces: map[string]bool{"eth0": true}}})
			if ds.HasErrors() {
				t.Fatalf("errors:\n%s", ds)
			}
			if len(cfg.VRRPInstances) > 0 {
				vips := cfg.VRRPInstances[0].VirtualIPAddresses
				if len(vips) != 1 || vips[0].Prefix.String() != "10.0.0.1/32" {
					t.Errorf("virtual_ipaddress %v, want only 10.0.0.1/32", vips)
				}
			}
		})
	}
}

// oracleCase is a configuration whose verdict keepalived 2.2.7 and vrrpkit
// must agree on.
type oracleCase struct {
	name  string
	files map[string]string // relative to a temporary directory; "keepalived.conf" is the main file
	id    string            // keepalived -i, Options.ConfigID
	valid bool
	// differs, when set, says why keepalived's verdict is the opposite of
	// valid; the test then checks that it still is.
	differs string
}

// vrrpInst is a minimal instance keepalived -t accepts (on eth0, which the
// oracle creates).
const vrrpInst = "vrrp_instance VI_%d {\n  interface eth0\n  virtual_router_id %d\n  virtual_ipaddress {\n    10.0.%d.1/24\n  }\n}\n"

func inst(n int) string { return fmt.Sprintf(vrrpInst, n, n, n) }

var oracleCases = []oracleCase{
	{name: "minimal", valid: true, files: map[string]string{"keepalived.conf": inst(1)}},
	{name: "cr-only-line", valid: true, files: map[string]string{"keepalived.conf": crOnlyLineConf}},
	{name: "blank-only-lines", valid: true, files: map[string]string{"keepalived.conf": blankKindsConf}},
	{name: "comments and one-line blocks", valid: true, files: map[string]string{"keepalived.conf": `# comment
! other comment
vrrp_instance VI_1 { # trailing
  interface eth0 ! trailing
  virtual_router_id 1
  virtual_ipaddress { 10.0.0.1/24 }
}
vrrp_instance VI_2
{
  interface eth0
  virtual_router_id 2
  virtual_ipaddress
  {
    10.0.1.1/24
  }
}
`}},
	{name: "extra closing brace", valid: false, files: map[string]string{"keepalived.conf": inst(1) + "}\n"}},
	{name: "missing closing brace", valid: false, files: map[string]string{"keepalived.conf": strings.TrimSuffix(inst(1), "}\n")}},
	{name: "~SEQ over a multi-line definition", valid: true, files: map[string]string{"keepalived.conf": `$I=\
vrrp_instance VI_${n} { \
  interface eth0 \
  virtual_router_id ${n} \
  virtual_ipaddress { \
    10.0.${n}.1/24 \
  } \
}
~SEQ(n, 1, 2, 9) $I
~LST(n, 20, 30) $I
`}},
	{name: "commented-out line inside a multi-line definition", valid: true, files: map[string]string{"keepalived.conf": `$VIPS=\
    10.0.0.1/24 \
#   10.0.0.2/24 \
    10.0.0.3/24
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 1
  virtual_ipaddress {
    $VIPS
  }
}
`}},
	{name: "comment-only line ends a multi-line definition", valid: false, files: map[string]string{"keepalived.conf": `$VIPS=\
    10.0.0.1/24 \
# a comment
    10.0.0.3/24
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 1
  virtual_ipaddress {
    $VIPS
  }
}
`}},
	{name: "@ID matching", id: "lb1", valid: true, files: map[string]string{"keepalived.conf": "vrrp_instance VI_1 {\n interface eth0\n" +
		" @lb1 virtual_router_id 1\n @^lb1 virtual_router_id 999\n virtual_ipaddress { 10.0.0.1/24 }\n}\n"}},
	{name: "@ID not matching", id: "lb2", valid: false, files: map[string]string{"keepalived.conf": "vrrp_instance VI_1 {\n interface eth0\n" +
		" @lb1 virtual_router_id 1\n @^lb1 virtual_router_id 999\n virtual_ipaddress { 10.0.0.1/24 }\n}\n"}},
	{name: "${_HASH} outside quotes starts a comment", valid: true, files: map[string]string{"keepalived.conf": strings.Replace(inst(1),
		"virtual_router_id 1", "virtual_router_id 1${_HASH}x", 1)}},
	{name: "${_INSTANCE}", id: "7", valid: true, files: map[string]string{"keepalived.conf": strings.Replace(inst(1),
		"virtual_router_id 1", "virtual_router_id ${_INSTANCE}", 1)}},
	{name: `escaped \# outside quotes`, valid: false,
		differs: `keepalived -t re-reads its decommented copy of the file, so "5\#1" becomes "5#1" and then "5"`,
		files:   map[string]string{"keepalived.conf": strings.Replace(inst(1), "virtual_router_id 1", `virtual_router_id 5\#1`, 1)}},
	{name: "includes relative to the including file, globs and braces", valid: true, files: map[string]string{
		"keepalived.conf":        "include conf.d/*.conf\ninclude {x,y}.conf\n",
		"conf.d/a.conf":          inst(1) + "include sub/b.conf\n",
		"conf.d/sub/b.conf":      inst(2),
		"conf.d/ignored.notconf": "garbage\n",
		"x.conf":                 inst(3),
		"y.conf":                 inst(4),
	}},
	{name: "plain include of a missing file", valid: true, files: map[string]string{"keepalived.conf": inst(1) + "include missing.conf\n"}},
	{name: "includem of a missing file", valid: false, files: map[string]string{"keepalived.conf": inst(1) + "includem missing.conf\n"}},
	{name: "includew of a glob matching nothing", valid: false, files: map[string]string{"keepalived.conf": inst(1) + "includew none*.conf\n"}},
	{name: "includeb of braces with one missing", valid: false, files: map[string]string{"keepalived.conf": "includeb {a,b}.conf\n", "a.conf": inst(1)}},
	{name: "unknown top-level keyword", valid: false, files: map[string]string{"keepalived.conf": inst(1) + "vrrp_instanse X {\n}\n"}},
	{name: "priority 0", valid: false, files: map[string]string{"keepalived.conf": strings.Replace(inst(1), "  interface", "  priority 0\n  interface", 1)}},
	{name: "VRID 256", valid: false, files: map[string]string{"keepalived.conf": strings.Replace(inst(1), "virtual_router_id 1", "virtual_router_id 256", 1)}},
	{name: "bad address", valid: false, files: map[string]string{"keepalived.conf": strings.Replace(inst(1), "10.0.1.1/24", "10.0.1.256/24", 1)}},
	{name: "one VRID twice on one interface", valid: false, files: map[string]string{"keepalived.conf": inst(1) +
		strings.Replace(inst(2), "virtual_router_id 2", "virtual_router_id 1", 1)}},
	{name: "one VRID on two families", valid: true, files: map[string]string{"keepalived.conf": inst(1) +
		strings.NewReplacer("virtual_router_id 2", "virtual_router_id 1", "10.0.2.1/24", "2001:db8::1/64").Replace(inst(2))}},
	{name: "duplicate instance name", valid: false, files: map[string]string{"keepalived.conf": inst(1) +
		strings.NewReplacer("VI_2", "VI_1").Replace(inst(2))}},
	{name: "sync group of an unknown instance", valid: false, files: map[string]string{"keepalived.conf": inst(1) + inst(2) +
		"vrrp_sync_group G {\n group {\n  VI_1\n  VI_9\n }\n}\n"}},
	{name: "sync group", valid: true, files: map[string]string{"keepalived.conf": inst(1) + inst(2) +
		"vrrp_sync_group G {\n group {\n  VI_1\n  VI_2\n }\n}\n"}},
	{name: "one VRID twice around a unicast instance", valid: false,
		files: map[string]string{"keepalived.conf": inst(1) +
			strings.Replace(strings.Replace(inst(2), "virtual_router_id 2", "virtual_router_id 1", 1), "  interface", "  unicast_peer {\n    10.0.9.9\n  }\n  interface", 1) +
			strings.Replace(inst(3), "virtual_router_id 3", "virtual_router_id 1", 1)}},
	{name: "includem of braces with one missing", valid: true,
		files: map[string]string{"keepalived.conf": "includem {a,b}.conf\n", "a.conf": inst(1)}},
	{name: "includem of a glob in a missing directory", valid: false,
		files: map[string]string{"keepalived.conf": inst(1) + "includem nodir/*.conf\n"}},
}

// TestKeepalivedAgrees runs a few language cases through keepalived 2.2.7
// (keepalived -t in a network namespace with eth0 and eth1) and checks that
// vrrpkit's verdict is the same. It needs root and keepalived.
func TestKeepalivedAgrees(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for unshare -n")
	}
	for _, tool := range []string{"keepalived", "unshare", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	run := func(t *testing.T, c oracleCase) (bool, string) {
		dir := t.TempDir()
		for name, data := range c.files {
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		args := "keepalived -t -l -D -f " + filepath.Join(dir, "keepalived.conf")
		if c.id != "" {
			args += " -i " + c.id
		}
		script := "ip link add eth0 type veth peer name eth0p && ip link add eth1 type veth peer name eth1p && " +
			"ip link set eth0 up && ip link set eth1 up && cd / && exec " + args
		out, err := exec.Command("unshare", "-n", "sh", "-c", script).CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("running keepalived: %v", err)
		}
		return err == nil, string(out)
	}
	if ok, out := run(t, oracleCases[0]); !ok {
		t.Skipf("keepalived -t refuses the minimal configuration here; oracle unusable:\n%s", out)
	}
	for _, c := range oracleCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			kaValid, out := run(t, c)
			wantKA := c.valid != (c.differs != "")
			if kaValid != wantKA {
				t.Errorf("keepalived -t says valid=%v, the case expects %v:\n%s", kaValid, wantKA, out)
			}
			fsys := memFS{}
			for name, data := range c.files {
				fsys[filepath.Join(filepath.Dir(mainConf), name)] = memFile{data: data}
			}
			_, ds := parseFS(t, fsys, Options{ConfigID: c.id})
			if ds.HasErrors() == c.valid {
				t.Errorf("vrrpkit says valid=%v, want %v:\n%s", !ds.HasErrors(), c.valid, ds.String())
			}
			if c.differs != "" {
				t.Logf("keepalived differs on purpose: %s", c.differs)
			}
		})
	}
}
