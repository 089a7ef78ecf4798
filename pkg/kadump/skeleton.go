package kadump

import (
	"fmt"
	"regexp"
	"strings"
)

// Skeleton is the structure of a keepalived dump file without its values:
// what the golden and interop tests compare between keepalived's own files
// and vrrpkit's, since values (times, pids, descriptors, counters) differ
// from run to run.
type Skeleton []Section

// Section is one "------< Header >------" block; a file without headers
// (keepalived.stats) is one Section with an empty Header.
type Section struct {
	Header  string
	Entries []Entry
}

// Entry is one object of a section (" VRRP Instance = VI_1", " Name =
// eth0", "VRRP Instance: VI_1") and the keys of its lines, in order.
type Entry struct {
	// Name is the entry's line with numbers replaced by N; Raw is the line
	// as it is (without its indentation).
	Name, Raw string
	// Keys are the entry's lines reduced to their keys ("   State",
	// "     -" for an item of a list), with their indentation, numbers
	// replaced by N.
	Keys []string
}

var (
	headerRE = regexp.MustCompile(`^------< (.*) >------$`)
	numberRE = regexp.MustCompile(`-?[0-9]+`)
)

// ParseSkeleton reads a keepalived.data or keepalived.stats text. Lines
// indented by the entry indent (the first line's, 1 in .data, 0 in .stats)
// start entries; deeper lines are keys; lines indented 5 or more in .data
// (4 or more in .stats) that follow a "Key :" line are list items.
func ParseSkeleton(text string) Skeleton {
	var sk Skeleton
	cur := -1
	entryIndent := -1
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		if line == "" {
			continue
		}
		if m := headerRE.FindStringSubmatch(line); m != nil {
			sk = append(sk, Section{Header: m[1]})
			cur = len(sk) - 1
			continue
		}
		if cur < 0 {
			sk = append(sk, Section{})
			cur = 0
		}
		body := strings.TrimLeft(line, " ")
		indent := len(line) - len(body)
		if entryIndent < 0 {
			entryIndent = indent
		}
		sec := &sk[cur]
		if indent <= entryIndent || len(sec.Entries) == 0 {
			sec.Entries = append(sec.Entries, Entry{Name: numberRE.ReplaceAllString(body, "N"), Raw: body})
			continue
		}
		e := &sec.Entries[len(sec.Entries)-1]
		e.Keys = append(e.Keys, strings.Repeat(" ", indent)+lineKey(body, indent-entryIndent >= 4))
	}
	return sk
}

// lineKey reduces one line to its key: the text before " = ", else before
// ":", else the words before the first one holding a digit ("Multicast
// address 224.0.0.18"); a list item (item) is "-".
func lineKey(body string, item bool) string {
	if item && !strings.Contains(body, ":") {
		return "-"
	}
	key := body
	if i := strings.Index(body, " = "); i >= 0 {
		key = body[:i]
	} else if i := strings.Index(body, ":"); i >= 0 {
		key = strings.TrimSpace(body[:i])
	} else {
		words := strings.Fields(body)
		for i, w := range words {
			if strings.ContainsAny(w, "0123456789") {
				words = words[:i]
				break
			}
		}
		key = strings.Join(words, " ")
	}
	return numberRE.ReplaceAllString(key, "N")
}

// Headers returns the section headers in order.
func (s Skeleton) Headers() []string {
	var out []string
	for _, sec := range s {
		out = append(out, sec.Header)
	}
	return out
}

// Section returns the section with the header, or nil.
func (s Skeleton) Section(header string) *Section {
	for i := range s {
		if s[i].Header == header {
			return &s[i]
		}
	}
	return nil
}

// Entry returns the entry whose line is raw (as in Entry.Raw), or nil.
func (s *Section) Entry(raw string) *Entry {
	if s == nil {
		return nil
	}
	for i := range s.Entries {
		if s.Entries[i].Raw == raw {
			return &s.Entries[i]
		}
	}
	return nil
}

// SameKeys reports where got's keys differ from want's: the first
// position at which they differ, or "" when they are the same keys in the
// same order.
func SameKeys(got, want []string) string {
	for i := 0; i < len(got) || i < len(want); i++ {
		switch {
		case i >= len(got):
			return fmt.Sprintf("key %d: missing %q", i, want[i])
		case i >= len(want):
			return fmt.Sprintf("key %d: extra %q", i, got[i])
		case got[i] != want[i]:
			return fmt.Sprintf("key %d: %q, want %q", i, got[i], want[i])
		}
	}
	return ""
}

// Subsequence reports which of got's keys are not, in order, among
// want's: "" when got is a subsequence of want. For sections where vrrpkit
// prints part of what keepalived prints (Global definitions, Interfaces).
func Subsequence(got, want []string) string {
	j := 0
	for i, g := range got {
		for j < len(want) && want[j] != g {
			j++
		}
		if j == len(want) {
			return fmt.Sprintf("key %d %q is not in keepalived's keys after the ones before it", i, g)
		}
		j++
	}
	return ""
}

// LineKeys are the keys of the section's entry lines themselves: for a
// section of single lines (Global definitions).
func (s *Section) LineKeys() []string {
	out := make([]string, 0, len(s.Entries))
	for _, e := range s.Entries {
		out = append(out, " "+lineKey(e.Raw, false))
	}
	return out
}

// DiffData reports how got's structure (vrrpkit's keepalived.data) differs
// from want's (keepalived's, for the same configuration and states): the
// same sections in the same order; in VRRP Topology and VRRP Sockpool the
// same entries with the same keys in the same order; in Global definitions
// and Interfaces, keys that are a part, in order, of keepalived's, since
// vrrpkit prints there only what it knows. None means they match.
func DiffData(got, want string) []string {
	var diffs []string
	errorf := func(format string, args ...any) { diffs = append(diffs, fmt.Sprintf(format, args...)) }
	g, w := ParseSkeleton(got), ParseSkeleton(want)
	if a, b := strings.Join(g.Headers(), "|"), strings.Join(w.Headers(), "|"); a != b {
		errorf("sections:\n got %s\nwant %s", a, b)
	}
	for _, header := range []string{"VRRP Topology", "VRRP Sockpool"} {
		gs, ws := g.Section(header), w.Section(header)
		if gs == nil || ws == nil {
			errorf("%s: missing (vrrpkit %v, keepalived %v)", header, gs != nil, ws != nil)
			continue
		}
		if len(gs.Entries) != len(ws.Entries) {
			errorf("%s: %d entries, keepalived %d", header, len(gs.Entries), len(ws.Entries))
		}
		for i := range min(len(gs.Entries), len(ws.Entries)) {
			ge, we := gs.Entries[i], ws.Entries[i]
			if ge.Name != we.Name {
				errorf("%s entry %d: %q, keepalived %q", header, i, ge.Name, we.Name)
				continue
			}
			if d := SameKeys(ge.Keys, we.Keys); d != "" {
				errorf("%s %s: %s\n got %q\nwant %q", header, ge.Raw, d, ge.Keys, we.Keys)
			}
		}
	}
	// Global definitions is a list of lines at the entry indent.
	if gs, ws := g.Section("Global definitions"), w.Section("Global definitions"); gs == nil || ws == nil {
		errorf("Global definitions: missing (vrrpkit %v, keepalived %v)", gs != nil, ws != nil)
	} else if d := Subsequence(gs.LineKeys(), ws.LineKeys()); d != "" {
		errorf("Global definitions: %s\n got %q\nwant %q", d, gs.LineKeys(), ws.LineKeys())
	}
	if gs, ws := g.Section("Interfaces"), w.Section("Interfaces"); gs == nil || ws == nil {
		errorf("Interfaces: missing (vrrpkit %v, keepalived %v)", gs != nil, ws != nil)
	} else {
		for _, ge := range gs.Entries {
			we := ws.Entry(ge.Raw)
			if we == nil {
				errorf("Interfaces: entry %q is not in keepalived's", ge.Raw)
				continue
			}
			if d := Subsequence(ge.Keys, we.Keys); d != "" {
				errorf("Interfaces %s: %s\n got %q\nwant %q", ge.Raw, d, ge.Keys, we.Keys)
			}
		}
	}
	return diffs
}

// DiffStats reports how got's keepalived.stats structure differs from
// want's: the same instances in the same order, each with the same keys in
// the same order.
func DiffStats(got, want string) []string {
	g, w := ParseSkeleton(got), ParseSkeleton(want)
	if len(g) != 1 || len(w) != 1 {
		return []string{fmt.Sprintf("stats sections: vrrpkit %d, keepalived %d, want 1", len(g), len(w))}
	}
	var diffs []string
	if len(g[0].Entries) != len(w[0].Entries) {
		diffs = append(diffs, fmt.Sprintf("stats: %d instances, keepalived %d", len(g[0].Entries), len(w[0].Entries)))
	}
	for i := range min(len(g[0].Entries), len(w[0].Entries)) {
		ge, we := g[0].Entries[i], w[0].Entries[i]
		if ge.Raw != we.Raw {
			diffs = append(diffs, fmt.Sprintf("stats entry %d: %q, keepalived %q", i, ge.Raw, we.Raw))
		}
		if d := SameKeys(ge.Keys, we.Keys); d != "" {
			diffs = append(diffs, fmt.Sprintf("stats %s: %s", ge.Raw, d))
		}
	}
	return diffs
}
