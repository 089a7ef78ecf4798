package config

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Options says how a configuration is read. The zero value reads real files
// with no config id.
type Options struct {
	// ConfigID selects "@ID" lines and is ${_INSTANCE}; keepalived's -i.
	// The command defaults it to the hostname up to the first dot.
	ConfigID string
	// LookupEnv resolves ${_ENV NAME}; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Random returns a number in [min, max] for ${_RANDOM min max}; nil
	// means math/rand/v2.
	Random func(min, max int64) int64
	// ReadFile and Glob are the reader's file system; nil means the OS.
	ReadFile func(name string) ([]byte, error)
	Glob     func(pattern string) ([]string, error)
	Stat     func(name string) (fs.FileInfo, error)
	// MaxLines bounds the lines that ~SEQ, ~LST and definitions may expand
	// to, so a hostile or mistyped file cannot exhaust memory. 0 means
	// 5,000,000.
	MaxLines int
	// Host answers questions about this machine (interfaces, scripts,
	// users). nil skips those checks.
	Host Host
}

func (o Options) withDefaults() Options {
	out := o
	if out.LookupEnv == nil {
		out.LookupEnv = os.LookupEnv
	}
	if out.Random == nil {
		out.Random = func(min, max int64) int64 { return min + rand.Int64N(max-min+1) }
	}
	if out.ReadFile == nil {
		out.ReadFile = os.ReadFile
	}
	if out.Glob == nil {
		out.Glob = filepath.Glob
	}
	if out.Stat == nil {
		out.Stat = os.Stat
	}
	if out.MaxLines <= 0 {
		out.MaxLines = 5_000_000
	}
	return out
}

// line is one logical line after preprocessing: comments gone, includes,
// conditionals, definitions and repeaters applied, and every '{' and '}'
// on a line of its own, as keepalived's read_line leaves them.
type line struct {
	pos   Pos
	text  string   // the line as the parser saw it, for handlers that re-split it
	words []string // split like keepalived's alloc_strvec: "..." groups, no escapes
}

// include flags mirror keepalived's include variants: which problems with an
// included file are errors rather than warnings.
type includeFlags uint8

const (
	includeUnreadable includeFlags = 1 << iota // includer: a file cannot be read
	includeMissing                             // includem: a named (non-glob) file is missing
	includeWildcard                            // includew: a glob matches nothing
	includeBrace                               // includeb: some alternatives of {a,b} are missing
)

type definition struct {
	value     string   // first (or only) line
	more      []string // further lines of a multi-line definition
	multiline bool
	// fn computes built-in values; params is the text after the name in
	// ${NAME params}.
	fn        func(r *reader, params string) (string, bool)
	maxParams int
}

type reader struct {
	opts  Options
	d     *diags
	defs  map[string]*definition
	files []string // include chain, for cycle detection and ${_PWD}
	out   []line
	// collecting is the multi-line definition whose continuation lines
	// are being read.
	collecting *definition
	depth      int
	overflow   bool
	// work counts logical lines processed, kept or not, so that repeaters
	// whose bodies produce nothing are bounded too.
	work int
}

// maxLineLength bounds a line after substitution; keepalived stops at its
// buffer size too, and definitions that double at each level would
// otherwise grow without limit.
const maxLineLength = 64 << 10

// maxExpansionDepth bounds nesting of definitions inside definitions and of
// repeaters inside repeaters; keepalived loops forever on $A=$A.
const maxExpansionDepth = 64

func newReader(opts Options, d *diags) *reader {
	r := &reader{opts: opts, d: d, defs: map[string]*definition{}}
	r.defs["_PWD"] = &definition{fn: func(r *reader, _ string) (string, bool) {
		if len(r.files) == 0 {
			wd, err := os.Getwd()
			return wd, err == nil
		}
		return filepath.Dir(r.files[len(r.files)-1]), true
	}}
	r.defs["_INSTANCE"] = &definition{fn: func(r *reader, _ string) (string, bool) { return r.opts.ConfigID, true }}
	r.defs["_HASH"] = &definition{value: "#"}
	r.defs["_BANG"] = &definition{value: "!"}
	r.defs["_RANDOM"] = &definition{maxParams: 2, fn: func(r *reader, params string) (string, bool) {
		lo, hi := int64(0), int64(32767)
		f := strings.Fields(params)
		for i, s := range f {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil || v < 0 || i > 1 {
				return "", false
			}
			if i == 0 {
				lo = v
			} else {
				hi = v
			}
		}
		if hi < lo {
			return "", false
		}
		return strconv.FormatInt(r.opts.Random(lo, hi), 10), true
	}}
	r.defs["_ENV"] = &definition{maxParams: 1, fn: func(r *reader, params string) (string, bool) {
		name := strings.TrimSpace(params)
		if name == "" {
			return "", false
		}
		v, _ := r.opts.LookupEnv(name)
		return v, true
	}}
	return r
}

// readConfig reads path and everything it includes into logical lines.
func readConfig(path string, opts Options, d *diags) []line {
	r := newReader(opts.withDefaults(), d)
	r.readFile(path, Pos{File: path}, includeUnreadable|includeMissing)
	return r.out
}

func (r *reader) readFile(path string, from Pos, flags includeFlags) {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = filepath.Clean(path)
	}
	for i, f := range r.files {
		if f == abs {
			chain := append(append([]string{}, r.files[i:]...), abs)
			r.d.errorf(from, "include cycle: %s", strings.Join(chain, " -> "))
			return
		}
	}
	data, err := r.opts.ReadFile(path)
	if err != nil {
		r.includeProblem(from, flags&includeUnreadable != 0, "cannot read configuration file: %v", err)
		return
	}
	r.files = append(r.files, abs)
	defer func() { r.files = r.files[:len(r.files)-1] }()

	name := path
	rawLines := strings.Split(string(data), "\n")
	for i, raw := range rawLines {
		if r.overflow {
			return
		}
		pos := Pos{File: name, Line: i + 1}
		raw = strings.TrimRight(raw, "\r")
		if r.collecting != nil {
			r.continueDefinition(raw, pos)
			continue
		}
		text := r.decomment(raw, pos)
		if text == "" {
			continue
		}
		r.logical(text, pos)
	}
	r.collecting = nil
}

func (r *reader) includeProblem(pos Pos, isError bool, format string, args ...any) {
	if isError {
		r.d.errorf(pos, format, args...)
	} else {
		r.d.warnf(pos, format, args...)
	}
}

// decomment removes comments ('#' or '!' outside double quotes, unless
// escaped with '\'), the escaping backslashes, and surrounding blanks. A
// trailing '\' (a multi-line definition continues) is kept.
func (r *reader) decomment(s string, pos Pos) string {
	s = strings.TrimLeft(s, whiteSpace)
	var b []byte // allocated only when an escape has to be removed
	quote := false
	cont := false
	end := len(s)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			quote = !quote
		case c == '\\':
			if i+1 == len(s) {
				cont = true
				end = i
				i = len(s)
				continue
			}
			if !quote && (s[i+1] == '#' || s[i+1] == '!') {
				if b == nil {
					b = append(make([]byte, 0, len(s)), s[:i]...)
				}
				b = append(b, s[i+1])
				i++
				continue
			}
			if b != nil {
				b = append(b, c, s[i+1])
			}
			i++
			continue
		case !quote && (c == '#' || c == '!'):
			end = i
			// keepalived still sees a trailing '\' after a comment, so a
			// commented-out line inside a multi-line definition continues it.
			cont = strings.HasSuffix(s, "\\")
			i = len(s)
			continue
		}
		if b != nil {
			b = append(b, c)
		}
	}
	if quote {
		r.d.errorf(pos, "unterminated quote in %q", strings.TrimSpace(s))
	}
	var out string
	if b != nil {
		// The escaped copy was built up to where the scan stopped.
		out = string(b)
	} else {
		out = s[:end]
	}
	out = strings.TrimRight(out, whiteSpace)
	if cont {
		out += "\\"
	}
	return out
}

// logical handles one decommented line: conditionals, definitions,
// repeaters, substitution, includes; then it is split at braces and kept.
func (r *reader) logical(text string, pos Pos) {
	r.work++
	if r.work > 4*r.opts.MaxLines {
		r.tooMany(pos)
		return
	}
	if r.depth > maxExpansionDepth {
		r.d.errorf(pos, "definitions or ~SEQ/~LST nest deeper than %d levels", maxExpansionDepth)
		return
	}
	r.depth++
	defer func() { r.depth-- }()

	var pending []string // further lines of a multi-line definition
	for iter := 0; ; iter++ {
		if iter > maxExpansionDepth {
			r.d.errorf(pos, "definitions expand into themselves: %q", text)
			return
		}
		if text == "" {
			break
		}
		if text[0] == '@' {
			var keep bool
			if text, keep = r.conditional(text); !keep {
				return
			}
			if text == "" {
				return
			}
		}
		if text[0] == '$' && r.define(text, pos) {
			break
		}
		if strings.HasPrefix(text, "~SEQ") || strings.HasPrefix(text, "~LST") {
			r.repeat(text, pos)
			break
		}
		if text[0] == '~' || !strings.Contains(text, "$") {
			r.keep(text, pos)
			break
		}
		first, more, replaced := r.substitute(text, pos)
		if len(first) > maxLineLength {
			r.d.errorf(pos, "line is longer than %d bytes after definitions are substituted", maxLineLength)
			return
		}
		if !replaced {
			r.keep(text, pos)
			break
		}
		pending = append(more, pending...)
		text = r.decomment(first, pos)
	}
	for _, l := range pending {
		if l = r.decomment(l, pos); l != "" {
			r.logical(l, pos)
		}
	}
}

// conditional applies "@ID rest" and "@^ID rest": the rest is kept when the
// config id matches (or, with ^, does not).
func (r *reader) conditional(text string) (string, bool) {
	negate := strings.HasPrefix(text, "@^")
	id := text[1:]
	if negate {
		id = text[2:]
	}
	sp := strings.IndexAny(id, " \t")
	if sp < 0 {
		return "", false
	}
	rest := strings.TrimLeft(id[sp:], " \t")
	id = id[:sp]
	match := r.opts.ConfigID != "" && id == r.opts.ConfigID
	if match == negate {
		return "", false
	}
	return rest, true
}

// define handles "$NAME=VALUE"; a value ending in '\' continues on the
// following lines until a line without one (or a blank line).
func (r *reader) define(text string, pos Pos) bool {
	eq := strings.IndexByte(text, '=')
	if eq < 2 || !isName(text[1:eq]) {
		return false
	}
	name := text[1:eq]
	value := strings.TrimLeft(text[eq+1:], " \t")
	def := &definition{}
	if strings.HasSuffix(value, "\\") {
		def.multiline = true
		value = strings.TrimRight(value[:len(value)-1], " \t")
		r.collecting = def
	}
	def.value = value
	r.defs[name] = def
	return true
}

func (r *reader) continueDefinition(raw string, pos Pos) {
	def := r.collecting
	if strings.TrimSpace(raw) == "" {
		r.endDefinition()
		return
	}
	text := r.decomment(raw, pos)
	more := strings.HasSuffix(text, "\\")
	if more {
		text = strings.TrimRight(text[:len(text)-1], " \t")
	}
	if text != "" {
		if def.value == "" && len(def.more) == 0 {
			def.value = text
		} else {
			def.more = append(def.more, text)
		}
	}
	if !more {
		r.endDefinition()
	}
}

func (r *reader) endDefinition() {
	if def := r.collecting; def.value == "" && len(def.more) == 0 {
		def.multiline = false
	}
	r.collecting = nil
}

func isName(s string) bool {
	if s == "" || !(isAlpha(s[0]) || s[0] == '_') {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !(isAlpha(s[i]) || isDigit(s[i]) || s[i] == '_') {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// substitute replaces $NAME and ${NAME [params]} references. A multi-line
// definition may only be used at the end of a line; its further lines are
// returned in more. Unknown names are left as they are, like keepalived.
func (r *reader) substitute(text string, pos Pos) (first string, more []string, replaced bool) {
	var b strings.Builder
	i := 0
	for {
		j := strings.IndexByte(text[i:], '$')
		if j < 0 || i+j+1 >= len(text) {
			break
		}
		j += i
		name, params, end, ok := scanReference(text, j)
		if !ok {
			b.WriteString(text[i : j+1])
			i = j + 1
			continue
		}
		def := r.defs[name]
		atEnd := end == len(text)
		if def == nil || (def.multiline && !atEnd) || (params != "" && def.maxParams == 0) {
			b.WriteString(text[i : j+1])
			i = j + 1
			continue
		}
		value := def.value
		if def.fn != nil {
			v, ok := def.fn(r, params)
			if !ok {
				r.d.errorf(pos, "invalid parameters %q for ${%s}", params, name)
			}
			value = v
		}
		b.WriteString(text[i:j])
		b.WriteString(value)
		replaced = true
		i = end
		if def.multiline {
			more = append(more, def.more...)
			break
		}
	}
	b.WriteString(text[i:])
	return b.String(), more, replaced
}

// scanReference parses the reference starting at text[dollar] == '$'.
func scanReference(text string, dollar int) (name, params string, end int, ok bool) {
	s := text[dollar+1:]
	braced := s[0] == '{'
	if braced {
		s = s[1:]
	}
	n := 0
	for n < len(s) && (isAlpha(s[n]) || s[n] == '_' || n > 0 && isDigit(s[n])) {
		n++
	}
	if n == 0 {
		return "", "", 0, false
	}
	name = s[:n]
	if braced {
		closing := strings.IndexByte(s[n:], '}')
		if closing < 0 {
			return "", "", 0, false
		}
		params = strings.TrimSpace(s[n : n+closing])
		if params != "" && s[n] != ' ' && s[n] != '\t' {
			return "", "", 0, false
		}
		return name, params, dollar + 2 + n + closing + 1, true
	}
	if n < len(s) && !strings.ContainsRune(" \t,)", rune(s[n])) {
		return "", "", 0, false
	}
	return name, "", dollar + 1 + n, true
}

// repeat expands "~SEQ(var, [start,] [step,] end) text", "~SEQx(...)" (hex
// values) and "~LST(var, v1, v2 ...)" / "~LST({a,b}, {1,2}, {3,4}) text".
func (r *reader) repeat(text string, pos Pos) {
	open := strings.IndexByte(text, '(')
	closing := strings.IndexByte(text, ')')
	hex := strings.HasPrefix(text, "~SEQx")
	kind := text[:4]
	head := strings.TrimSpace(text[4:max(open, 4)])
	if hex {
		head = strings.TrimSpace(text[5:max(open, 5)])
	}
	if open < 0 || closing < open || head != "" {
		r.d.errorf(pos, "invalid %s specification %q", kind, text)
		return
	}
	body := strings.TrimLeft(text[closing+1:], " \t")
	if kind == "~SEQ" {
		r.seq(text[open+1:closing], body, hex, text, pos)
	} else {
		r.lst(text, open, body, pos)
	}
}

func (r *reader) seq(argText, body string, hex bool, text string, pos Pos) {
	parts := strings.Split(argText, ",")
	variable := strings.TrimSpace(parts[0])
	if !isName(variable) || len(parts) < 2 || len(parts) > 4 {
		r.d.errorf(pos, "invalid ~SEQ specification %q: want ~SEQ(var, [start,] [step,] end)", text)
		return
	}
	nums := make([]int64, 0, 3)
	for _, p := range parts[1:] {
		p = strings.TrimSpace(p)
		if strings.Contains(p, "$") {
			if s, _, ok := r.substitute(p, pos); ok {
				p = strings.TrimSpace(s)
			}
		}
		v, err := strconv.ParseInt(p, 0, 64)
		if err != nil {
			r.d.errorf(pos, "invalid ~SEQ value %q in %q", p, text)
			return
		}
		nums = append(nums, v)
	}
	var start, step, end int64
	switch len(nums) {
	case 1:
		end = nums[0]
		start, step = 1, 1
		if end < 1 {
			step = -1
		}
		if end < 0 {
			start = -1
		}
	case 2:
		start, end = nums[0], nums[1]
		step = 1
		if start > end {
			step = -1
		}
	case 3:
		start, step, end = nums[0], nums[1], nums[2]
		if step == 0 || start < end && step < 0 || start > end && step > 0 {
			r.d.errorf(pos, "invalid ~SEQ values in %q: the step never reaches the end", text)
			return
		}
	}
	if hex && (start < 0 || end < 0) {
		r.d.errorf(pos, "~SEQx is only valid for positive numbers: %q", text)
		return
	}
	// Count in uint64 so that ranges near the ends of int64 neither
	// overflow nor wrap.
	var span, stride uint64
	if step > 0 {
		span, stride = uint64(end)-uint64(start), uint64(step)
	} else {
		span, stride = uint64(start)-uint64(end), -uint64(step)
	}
	count := span/stride + 1
	if count > uint64(r.opts.MaxLines) {
		r.tooMany(pos)
		return
	}
	for i := uint64(0); i < count; i++ {
		v := int64(uint64(start) + i*uint64(step))
		val := strconv.FormatInt(v, 10)
		if hex {
			val = strconv.FormatInt(v, 16)
		}
		r.defs[variable] = &definition{value: val}
		r.logical(body, pos)
		if r.overflow {
			return
		}
	}
}

func (r *reader) lst(text string, open int, body string, pos Pos) {
	p := &lstScanner{s: text, i: open + 1}
	vars, ok := p.group()
	if !ok || len(vars) == 0 {
		r.d.errorf(pos, "invalid ~LST specification %q", text)
		return
	}
	for _, v := range vars {
		if !isName(v) {
			r.d.errorf(pos, "invalid ~LST variable %q in %q", v, text)
			return
		}
	}
	var sets [][]string
	for p.sep() {
		vals, ok := p.group()
		if !ok {
			r.d.errorf(pos, "invalid ~LST specification %q", text)
			return
		}
		if len(vals) > len(vars) {
			r.d.errorf(pos, "~LST specification has too many values in %q", text)
			return
		}
		sets = append(sets, vals)
	}
	if !p.closed() || len(sets) == 0 {
		r.d.errorf(pos, "invalid ~LST specification %q", text)
		return
	}
	for _, set := range sets {
		for i, v := range vars {
			val := ""
			if i < len(set) {
				val = set[i]
			}
			r.defs[v] = &definition{value: val}
		}
		r.logical(body, pos)
		if r.overflow {
			return
		}
	}
}

// lstScanner reads ~LST's comma lists where a group is a word or {w, w, ...}.
type lstScanner struct {
	s string
	i int
}

func (p *lstScanner) skip() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *lstScanner) word() string {
	p.skip()
	start := p.i
	for p.i < len(p.s) && !strings.ContainsRune(" \t,{})", rune(p.s[p.i])) {
		p.i++
	}
	w := p.s[start:p.i]
	p.skip()
	return w
}

func (p *lstScanner) group() ([]string, bool) {
	p.skip()
	if p.i < len(p.s) && p.s[p.i] == '{' {
		p.i++
		var out []string
		for {
			out = append(out, p.word())
			if p.i >= len(p.s) {
				return nil, false
			}
			switch p.s[p.i] {
			case '}':
				p.i++
				p.skip()
				return out, true
			case ',':
				p.i++
			default:
				return nil, false
			}
		}
	}
	return []string{p.word()}, p.i < len(p.s)
}

func (p *lstScanner) sep() bool {
	p.skip()
	if p.i < len(p.s) && p.s[p.i] == ',' {
		p.i++
		return true
	}
	return false
}

func (p *lstScanner) closed() bool { return p.i < len(p.s) && p.s[p.i] == ')' }

func (r *reader) tooMany(pos Pos) {
	if !r.overflow {
		r.d.errorf(pos, "configuration expands to more than %d lines", r.opts.MaxLines)
	}
	r.overflow = true
}

// keep handles includes and otherwise splits the line at braces, the way
// keepalived's read_line does: "a b { c }" is four lines: "a b", "{", "c", "}".
func (r *reader) keep(text string, pos Pos) {
	if pattern, flags, ok := isInclude(text); ok {
		r.include(pattern, flags, pos)
		return
	}
	for text != "" {
		if len(r.out) >= r.opts.MaxLines {
			r.tooMany(pos)
			return
		}
		var piece string
		piece, text = splitBrace(text)
		words := splitWords(piece)
		if len(words) == 0 {
			// Only blanks (e.g. "\r\r" before a '}'): keepalived's
			// alloc_strvec gives no vector and the line is skipped, so
			// every later stage may take Words[0] for granted.
			continue
		}
		r.out = append(r.out, line{pos: pos, text: piece, words: words})
	}
}

// splitBrace returns the text up to the first '{' or '}' outside double
// quotes (or the brace itself when the text starts with one) and the rest.
func splitBrace(text string) (piece, rest string) {
	if text[0] == '{' || text[0] == '}' {
		return text[:1], strings.TrimLeft(text[1:], whiteSpace)
	}
	quote := false
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case c == '"':
			quote = !quote
		case !quote && (c == '{' || c == '}'):
			return strings.TrimRight(text[:i], whiteSpace), text[i:]
		}
	}
	return strings.TrimRight(text, whiteSpace), ""
}

// splitWords splits like keepalived's alloc_strvec: blanks separate words,
// a word starting with '"' runs to the next '"' and loses the quotes.
func splitWords(s string) []string {
	var words []string
	for i := 0; i < len(s); {
		for i < len(s) && isBlank(s[i]) {
			i++
		}
		if i == len(s) {
			break
		}
		if s[i] == '"' {
			end := strings.IndexByte(s[i+1:], '"')
			if end < 0 {
				// decomment has reported the unterminated quote.
				words = append(words, s[i+1:])
				break
			}
			words = append(words, s[i+1:i+1+end])
			i += end + 2
			continue
		}
		start := i
		for i < len(s) && !isBlank(s[i]) && s[i] != '"' {
			i++
		}
		words = append(words, s[start:i])
	}
	return words
}

// isInclude recognises "include PATTERN" and its stricter variants.
func isInclude(text string) (pattern string, flags includeFlags, ok bool) {
	if !strings.HasPrefix(text, "include") || len(text) < 9 {
		return "", 0, false
	}
	rest := text[7:]
	if rest[0] != ' ' && rest[0] != '\t' {
		switch rest[0] {
		case 'r':
			flags = includeUnreadable
		case 'm':
			flags = includeUnreadable | includeMissing
		case 'w':
			flags = includeUnreadable | includeMissing | includeWildcard
		case 'b':
			flags = includeUnreadable | includeBrace
		case 'a':
			flags = includeUnreadable | includeMissing | includeWildcard | includeBrace
		default:
			return "", 0, false
		}
		rest = rest[1:]
		if rest[0] != ' ' && rest[0] != '\t' {
			return "", 0, false
		}
	}
	return strings.TrimSpace(rest), flags, true
}

// include reads the files a pattern names, relative to the including file,
// with shell globs and {a,b} alternatives, in glob(3)'s sorted order.
func (r *reader) include(pattern string, flags includeFlags, pos Pos) {
	if pattern == "" {
		r.d.errorf(pos, "include without a file name")
		return
	}
	if !filepath.IsAbs(pattern) && len(r.files) > 0 {
		pattern = filepath.Join(filepath.Dir(r.files[len(r.files)-1]), pattern)
	}
	alternatives := expandBraces(pattern)
	hasBraces := len(alternatives) > 1
	var files []string
	for _, alt := range alternatives {
		if !hasMeta(alt) {
			if _, err := r.opts.Stat(alt); err != nil {
				// As keepalived's glob check: a missing alternative of
				// {a,b} is includeb's business, a missing name includem's.
				isErr := flags&includeMissing != 0
				if hasBraces {
					isErr = flags&includeBrace != 0
				}
				r.includeProblem(pos, isErr, "included file %s does not exist", alt)
				continue
			}
			files = append(files, alt)
			continue
		}
		matches, err := r.opts.Glob(alt)
		if err != nil {
			r.d.errorf(pos, "bad include pattern %q: %v", alt, err)
			continue
		}
		if len(matches) == 0 {
			if _, err := r.opts.Stat(filepath.Dir(alt)); err != nil {
				// A directory that is not there is a missing file to
				// keepalived, not an empty wildcard.
				r.includeProblem(pos, flags&includeMissing != 0, "no configuration files match %q: %v", alt, err)
				continue
			}
			r.includeProblem(pos, flags&includeWildcard != 0, "no configuration files match %q", alt)
			continue
		}
		sort.Strings(matches)
		files = append(files, matches...)
	}
	for _, f := range files {
		info, err := r.opts.Stat(f)
		if err != nil || !info.Mode().IsRegular() || info.Mode()&0o111 != 0 {
			// keepalived skips these so that a script dropped into a conf.d
			// directory is never read as configuration.
			r.includeProblem(pos, flags&includeUnreadable != 0,
				"included %s is not a regular non-executable file; skipping it", f)
			continue
		}
		r.readFile(f, pos, flags)
	}
}

func hasMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }

// expandBraces expands shell-style {a,b} alternatives, nested or not, like
// glob(3) with GLOB_BRACE. Unbalanced braces are left alone.
func expandBraces(s string) []string {
	depth, open := 0, -1
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '{':
			if depth == 0 {
				open = i
			}
			depth++
		case '}':
			if depth == 0 {
				continue
			}
			depth--
			if depth > 0 {
				continue
			}
			prefix, inner, suffix := s[:open], s[open+1:i], s[i+1:]
			var out []string
			for _, alt := range splitTopLevel(inner) {
				for _, tail := range expandBraces(alt + suffix) {
					out = append(out, prefix+tail)
				}
			}
			return out
		}
	}
	return []string{s}
}

func splitTopLevel(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '{':
			depth++
		case '}':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// quotedWords splits like keepalived's alloc_strvec_quoted_escaped, used for
// script command lines: "..." and '...' group, backslash escapes (\n, \t,
// \xHH, octal, \cX) are decoded.
func quotedWords(s string) ([]string, error) {
	var words []string
	var cur []byte
	for i := 0; i < len(s); {
		for i < len(s) && isBlank(s[i]) {
			i++
		}
		if i == len(s) {
			break
		}
		cur = cur[:0]
		var quote byte
	word:
		for i < len(s) {
			c := s[i]
			switch {
			case c == '\\':
				i++
				if i == len(s) {
					return nil, fmt.Errorf("missing escaped character at the end of %q", s)
				}
				var ch byte
				ch, i = unescape(s, i)
				cur = append(cur, ch)
			case quote != 0 && c == quote:
				quote = 0
				i++
			case quote != 0:
				cur = append(cur, c)
				i++
			case c == '"' || c == '\'':
				quote = c
				i++
			case isBlank(c):
				break word
			default:
				cur = append(cur, c)
				i++
			}
		}
		if quote != 0 {
			return nil, fmt.Errorf("missing terminating %c in %q", quote, s)
		}
		words = append(words, string(cur))
	}
	return words, nil
}

func unescape(s string, i int) (byte, int) {
	c := s[i]
	switch {
	case c == 'x' && i+1 < len(s) && isHex(s[i+1]):
		var v byte
		i++
		for i < len(s) && isHex(s[i]) {
			v = v<<4 | hexVal(s[i])
			i++
		}
		return v, i
	case c == 'c' && i+1 < len(s):
		return s[i+1] & 0x1f, i + 2
	case c >= '0' && c <= '7':
		v := c - '0'
		i++
		for n := 0; n < 2 && i < len(s) && s[i] >= '0' && s[i] <= '7'; n++ {
			v = v<<3 | (s[i] - '0')
			i++
		}
		return v, i
	}
	switch c {
	case 'a':
		c = '\a'
	case 'b':
		c = '\b'
	case 'E':
		c = 0x1b
	case 'f':
		c = '\f'
	case 'n':
		c = '\n'
	case 'r':
		c = '\r'
	case 't':
		c = '\t'
	case 'v':
		c = '\v'
	}
	return c, i + 1
}

// isBlank is C's isspace, keepalived's WHITE_SPACE.
// whiteSpace is keepalived's WHITE_SPACE_STR (lib/parser.c): the blanks
// that separate words and that a line is trimmed of. A line holding only
// these, such as a stray "\r" from a CRLF editor, is no line at all.
const whiteSpace = " \t\f\n\r\v"

func isBlank(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isHex(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func hexVal(c byte) byte {
	switch {
	case isDigit(c):
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
