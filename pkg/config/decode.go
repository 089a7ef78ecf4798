package config

import (
	"fmt"
	"math"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// decoder turns the tree into the typed model. Handlers report problems
// with the position of the line and carry on, so one run shows them all.
type decoder struct {
	d      *diags
	opts   *Options
	cfg    *Config
	ifaces map[string]bool // Host.InterfaceExists answers, by name
}

// handler applies one keyword line to the block being decoded.
type handler[T any] func(dc *decoder, n *Node, t T)

// table is the set of keywords a block accepts. Its keys are also the
// vocabulary for "did you mean" suggestions.
type table[T any] map[string]handler[T]

// decodeBlock applies each line of n's block through tbl. Unknown keywords
// are warnings (keepalived carries on too), except at the top level, where
// a typo would silently drop a whole instance or server (see unknown).
func decodeBlock[T any](dc *decoder, n *Node, what string, tbl table[T], t T, b *Block) {
	n.blockUsed = true
	var known []string // built on the first unknown keyword only
	for _, c := range n.Children {
		if len(c.Words) == 0 {
			continue // defensive: buildTree keeps no wordless line
		}
		kw := c.Keyword()
		h, ok := tbl[kw]
		if !ok {
			if dc.d.full() {
				continue
			}
			if known == nil {
				known = keys(tbl)
			}
			dc.unknown(c, what, known)
			continue
		}
		if b != nil {
			b.mark(kw, c.Pos)
		}
		h(dc, c, t)
		dc.blockRead(c)
	}
}

// blockRead reports a block after a keyword that takes none. keepalived
// says "Unexpected '{'" and reads the block's lines as keywords of the
// outer block, which is never what was meant.
func (dc *decoder) blockRead(n *Node) {
	if n.HasBlock && !n.blockUsed {
		dc.d.errorf(n.Pos, "%s does not take a { } block", n.Keyword())
	}
}

func keys[T any](tbl table[T]) []string {
	out := make([]string, 0, len(tbl))
	for k := range tbl {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// topLevel names the root block in decodeBlock.
const topLevel = "the top level"

func (dc *decoder) unknown(n *Node, what string, known []string) {
	var hint string
	if s := suggest(n.Keyword(), known); s != "" {
		hint = fmt.Sprintf(" (did you mean %q?)", s)
	}
	if what == topLevel {
		// At the top level an unknown word is never harmless: it is a
		// misspelt block (whose contents would be lost) or not a
		// keepalived file at all.
		dc.d.errorf(n.Pos, "unknown top-level keyword %q%s", n.Keyword(), hint)
		return
	}
	msg := fmt.Sprintf("unknown keyword %q in %s%s", n.Keyword(), what, hint)
	if n.HasBlock {
		msg += "; its block is skipped"
	}
	dc.d.warnf(n.Pos, "%s", msg)
}

// suggest returns the known keyword closest to word, if it is close enough
// to be a plausible typo.
func suggest(word string, known []string) string {
	best, bestDist := "", math.MaxInt
	limit := max(2, len(word)/3)
	for _, k := range known {
		// The distance is at least the difference in length.
		if diff := len(word) - len(k); diff > limit || -diff > limit {
			continue
		}
		if d := editDistance(word, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if bestDist > limit {
		return ""
	}
	return best
}

// editDistance is the Damerau-Levenshtein (optimal string alignment)
// distance, so a swapped pair of letters counts as one edit.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return math.MaxInt
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// deprecated wraps h for a spelling keepalived still accepts.
func deprecated[T any](replacement string, h handler[T]) handler[T] {
	return func(dc *decoder, n *Node, t T) {
		dc.d.warnf(n.Pos, "%q is deprecated; use %q", n.Keyword(), replacement)
		h(dc, n, t)
	}
}

// ignoredIn accepts a keyword vrrpkit does not act on, records it and says so.
func ignoredIn[T any](list func(T) *[]Ignored, why string) handler[T] {
	return func(dc *decoder, n *Node, t T) {
		n.blockUsed = true
		*list(t) = append(*list(t), Ignored{Keyword: n.Keyword(), Args: n.Args(), Pos: n.Pos})
		dc.d.warnf(n.Pos, "%q is accepted but not acted on by vrrpkit (%s)", n.Keyword(), why)
	}
}

// --- argument readers ---------------------------------------------------

// arg returns the i-th argument (1-based, after the keyword) or reports it
// missing.
func (dc *decoder) arg(n *Node, i int) (string, bool) {
	if i >= len(n.Words) {
		dc.d.errorf(n.Pos, "%s: missing value", n.Keyword())
		return "", false
	}
	return n.Words[i], true
}

// needBlock reports a block keyword written without its block.
func (dc *decoder) needBlock(n *Node) bool {
	if !n.HasBlock {
		dc.d.errorf(n.Pos, "%s needs a { } block", n.Keyword())
		return false
	}
	n.blockUsed = true
	return true
}

// maxArgs warns about words past the ones a keyword uses.
func (dc *decoder) maxArgs(n *Node, count int) {
	if len(n.Words) > count+1 {
		dc.d.warnf(n.Pos, "%s: extra words ignored: %s", n.Keyword(), strings.Join(n.Words[count+1:], " "))
	}
}

func (dc *decoder) str(n *Node) string {
	s, _ := dc.arg(n, 1)
	dc.maxArgs(n, 1)
	return s
}

// uint reads argument i as an unsigned integer within [lo, hi].
func (dc *decoder) uintAt(n *Node, i int, lo, hi uint64) (uint64, bool) {
	s, ok := dc.arg(n, i)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v < lo || v > hi {
		dc.d.errorf(n.Pos, "%s: %q is not a whole number in [%d, %d]", n.Keyword(), s, lo, hi)
		return 0, false
	}
	return v, true
}

func (dc *decoder) uint(n *Node, lo, hi uint64) (uint64, bool) {
	v, ok := dc.uintAt(n, 1, lo, hi)
	if ok {
		dc.maxArgs(n, 1)
	}
	return v, ok
}

func (dc *decoder) intAt(n *Node, i int, lo, hi int64) (int64, bool) {
	s, ok := dc.arg(n, i)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < lo || v > hi {
		dc.d.errorf(n.Pos, "%s: %q is not a whole number in [%d, %d]", n.Keyword(), s, lo, hi)
		return 0, false
	}
	return v, true
}

// seconds parses keepalived's decimal seconds, "1", "0.1", "1.000001",
// with microsecond resolution.
func parseSeconds(s string) (time.Duration, bool) {
	intPart, frac, hasFrac := strings.Cut(s, ".")
	if intPart == "" && !hasFrac || len(frac) > 6 || hasFrac && frac == "" && intPart == "" {
		return 0, false
	}
	var whole uint64
	if intPart != "" {
		v, err := strconv.ParseUint(intPart, 10, 32)
		if err != nil {
			return 0, false
		}
		whole = v
	}
	var micros uint64
	if frac != "" {
		v, err := strconv.ParseUint(frac, 10, 32)
		if err != nil || strings.ContainsAny(frac, "+-") {
			return 0, false
		}
		micros = v
		for i := len(frac); i < 6; i++ {
			micros *= 10
		}
	}
	return time.Duration(whole)*time.Second + time.Duration(micros)*time.Microsecond, true
}

// durationAt reads argument i as seconds within [lo, hi].
func (dc *decoder) durationAt(n *Node, i int, lo, hi time.Duration) (Duration, bool) {
	s, ok := dc.arg(n, i)
	if !ok {
		return 0, false
	}
	d, ok := parseSeconds(s)
	if !ok || d < lo || d > hi {
		dc.d.errorf(n.Pos, "%s: %q is not a time in seconds in [%g, %g]", n.Keyword(), s, lo.Seconds(), hi.Seconds())
		return 0, false
	}
	return Duration(d), true
}

func (dc *decoder) duration(n *Node, lo, hi time.Duration) (Duration, bool) {
	d, ok := dc.durationAt(n, 1, lo, hi)
	if ok {
		dc.maxArgs(n, 1)
	}
	return d, ok
}

// boolean reads keepalived's flag keywords: alone they mean true; an
// argument may be true/on/yes or false/off/no.
func (dc *decoder) boolean(n *Node) bool {
	if len(n.Words) < 2 {
		return true
	}
	dc.maxArgs(n, 1)
	switch strings.ToLower(n.Words[1]) {
	case "true", "on", "yes", "1":
		return true
	case "false", "off", "no", "0":
		return false
	}
	dc.d.errorf(n.Pos, "%s: %q is not one of true/on/yes/false/off/no", n.Keyword(), n.Words[1])
	return true
}

func (dc *decoder) boolPtr(n *Node) *bool {
	v := dc.boolean(n)
	return &v
}

func (dc *decoder) addrAt(n *Node, i int) (netip.Addr, bool) {
	s, ok := dc.arg(n, i)
	if !ok {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		dc.d.errorf(n.Pos, "%s: %q is not an IP address", n.Keyword(), s)
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// parsePrefix reads "ADDR" or "ADDR/LEN"; a bare address is a host prefix.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// script reads a command line the way keepalived does: the words after the
// keyword are re-split with quotes and escapes; the first is the command
// (itself split again, so "cmd arg" in quotes works), further words are a
// user and group to run it as.
func (dc *decoder) script(n *Node) *Script {
	words, err := quotedWords(n.Text)
	if err != nil {
		dc.d.errorf(n.Pos, "%s: %v", n.Keyword(), err)
		return nil
	}
	if len(words) < 2 || strings.TrimSpace(words[1]) == "" {
		dc.d.errorf(n.Pos, "%s: missing command", n.Keyword())
		return nil
	}
	args, err := quotedWords(words[1])
	if err != nil || len(args) == 0 {
		dc.d.errorf(n.Pos, "%s: cannot split command %q", n.Keyword(), words[1])
		return nil
	}
	s := &Script{Args: args, Pos: n.Pos}
	if len(words) > 2 {
		s.User = words[2]
	}
	if len(words) > 3 {
		s.Group = words[3]
	}
	if len(words) > 4 {
		dc.d.warnf(n.Pos, "%s: extra words ignored: %s", n.Keyword(), strings.Join(words[4:], " "))
	}
	dc.lintScript(n, words[1], s)
	dc.checkScript(n.Pos, s)
	return s
}

// values returns the words of a value block ("track_script { a b }") or of
// the keyword line itself when there is no block, as keepalived's
// read_value_block does.
func (dc *decoder) values(n *Node) []string {
	if !n.HasBlock {
		return n.Args()
	}
	n.blockUsed = true
	var out []string
	for _, c := range n.Children {
		out = append(out, c.Words...)
		if c.HasBlock {
			dc.d.errorf(c.Pos, "unexpected { } block inside %s", n.Keyword())
		}
	}
	return out
}

// lines returns the lines of a block whose lines are values, not keywords.
func (dc *decoder) lines(n *Node) []*Node {
	if !dc.needBlock(n) {
		return nil
	}
	out := n.Children[:0:0]
	for _, c := range n.Children {
		if len(c.Words) == 0 {
			// Defensive: value handlers index Words[0]; buildTree keeps
			// no wordless line, but a Node built elsewhere might.
			continue
		}
		if c.HasBlock {
			dc.d.errorf(c.Pos, "unexpected { } block inside %s", n.Keyword())
			c.HasBlock = false
		}
		out = append(out, c)
	}
	return out
}
