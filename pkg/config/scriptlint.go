package config

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// keepalived execs a script's words directly, without a shell
// (lib/notify.c, system_call_script: execve(args[0], args, ...)), looking
// args[0] up in PATH when it has no slash. So shell syntax in a script line
// does nothing a shell would: "[[" is looked up as a program and not found
// (keepalived: "Cannot find script [[ in path - disabling"), and "&&", "|",
// ">" are plain arguments ("test -f X && exit 1" runs test with four
// arguments: status 2 whatever X is; "echo x | grep y" prints "x | grep y"
// and succeeds). lintScript warns about such lines at -t and shows the line
// that does what was meant, through /bin/sh -c (or /bin/bash -c for bash
// syntax).

// shellOnly are words that only a shell understands as a command: keywords
// and builtins with no program of their own in PATH. test, [, true, false,
// echo, printf, kill, sleep have programs and run fine without a shell.
var shellOnly = map[string]bool{
	"!": true, "{": true, "}": true, "(": true, ")": true, "((": true, "[[": true,
	"if": true, "then": true, "else": true, "elif": true, "fi": true,
	"for": true, "while": true, "until": true, "do": true, "done": true,
	"case": true, "esac": true, "select": true, "function": true,
	".": true, "source": true, "exit": true, "return": true, "cd": true,
	"export": true, "set": true, "unset": true, "local": true, "readonly": true,
	"declare": true, "typeset": true, "let": true, "eval": true, "exec": true,
	"trap": true, "shift": true, "ulimit": true, "umask": true, "alias": true,
	"read": true, "wait": true, "break": true, "continue": true, "shopt": true,
	"pushd": true, "popd": true,
}

// bashOnly are words that /bin/sh (dash on Debian, POSIX sh elsewhere) does
// not understand.
var bashOnly = map[string]bool{
	"[[": true, "]]": true, "((": true, "function": true, "select": true,
	"source": true, "declare": true, "typeset": true, "let": true, "shopt": true,
	"pushd": true, "popd": true, "&>": true, "&>>": true, "|&": true, "<<<": true,
}

// operators are the shell's control and redirection operators as words of
// their own.
var operators = map[string]bool{
	"&&": true, "||": true, "|": true, ";": true, ";;": true, "&": true,
	">": true, ">>": true, "<": true, "<<": true, "<<<": true, ">|": true,
	"&>": true, "&>>": true, "|&": true, "<>": true, "<&": true, ">&": true,
}

var shells = map[string]bool{"sh": true, "bash": true, "dash": true, "ash": true, "ksh": true, "zsh": true}

// lintScript warns when s, read from the line n, holds shell syntax that
// keepalived would not run as meant; text is the command as written between
// the quotes.
func (dc *decoder) lintScript(n *Node, text string, s *Script) {
	if msg := scriptLint(n.Keyword(), text, s); msg != "" {
		dc.d.warnf(n.Pos, "%s", msg)
	}
}

// scriptLint returns the warning for a script line, or "".
func scriptLint(keyword, text string, s *Script) string {
	if s == nil || len(s.Args) == 0 {
		return ""
	}
	args := s.Args
	// keepalived's one shell case: "</path" is run by system(3) to test
	// that a file can be opened (lib/notify.c, check_script_secure).
	if strings.HasPrefix(args[0], "<") && strings.HasPrefix(strings.TrimLeft(args[0][1:], " \t"), "/") {
		return ""
	}
	var why []string
	bash := false
	shellText := text
	if shells[path.Base(args[0])] {
		// A shell run explicitly: only words outside its -c string are
		// suspect, and -c takes exactly one word.
		for i := 1; i < len(args); i++ {
			if args[i] == "-c" || (len(args[i]) > 1 && args[i][0] == '-' && strings.HasSuffix(args[i], "c") && !strings.HasPrefix(args[i], "--")) {
				// "sh -c 'echo $1' x" passes arguments on purpose; a
				// one-word command followed by more words is the usual
				// slip.
				if rest := args[i+1:]; len(rest) > 1 && !strings.ContainsAny(rest[0], " \t") {
					return fmt.Sprintf("%s: %s -c takes the command as one word and the words after it become $0, $1...: %q runs %q alone; to run the whole command write: %s",
						keyword, args[0], strings.Join(rest, " "), rest[0], fixLine(keyword, args[:i+1], shellJoin(rest), s))
				}
				return ""
			}
		}
	}
	if shellOnly[args[0]] || strings.HasPrefix(args[0], "(") || strings.HasPrefix(args[0], "{") {
		why = append(why, fmt.Sprintf("%q is a shell keyword or builtin, not a program, so keepalived finds nothing to run", args[0]))
	} else if isAssignment(args[0]) {
		why = append(why, fmt.Sprintf("%q is a shell variable assignment, not a program, so keepalived finds nothing to run", args[0]))
	} else if strings.HasPrefix(args[0], "~/") {
		why = append(why, fmt.Sprintf("%q: ~ is expanded by a shell only; give the full path", args[0]))
	}
	if bashOnly[args[0]] {
		bash = true
	}
	findExec := false
	var ops, expansions, globs []string
	for i, w := range args {
		if i > 0 && (w == "-exec" || w == "-execdir" || w == "-ok" || w == "-okdir") {
			findExec = true // find's own ";" argument
		}
		if bashOnly[w] || strings.HasPrefix(w, "$'") || strings.HasPrefix(w, "<(") || strings.HasPrefix(w, ">(") {
			bash = true
		}
		switch {
		case i == 0:
		case operators[w] && !(findExec && (w == ";" || w == "+")):
			ops = append(ops, w)
		case isRedirection(w), len(w) > 1 && strings.HasSuffix(w, ";"):
			ops = append(ops, w)
		}
		if isExpansion(w) {
			expansions = append(expansions, w)
		}
		if i > 0 && isGlob(w) {
			globs = append(globs, w)
		}
	}
	if len(ops) > 0 {
		ops = uniq(ops)
		what := "an argument"
		if len(ops) > 1 {
			what = "arguments"
		}
		why = append(why, fmt.Sprintf("%s %s passed to %s as %s, not run as shell syntax", quoteList(ops), isAre(ops), args[0], what))
	}
	if len(expansions) > 0 {
		expansions = uniq(expansions)
		why = append(why, fmt.Sprintf("%s %s not expanded", quoteList(expansions), isAre(expansions)))
	}
	if len(globs) > 0 {
		globs = uniq(globs)
		why = append(why, fmt.Sprintf("%s %s not expanded as file patterns", quoteList(globs), isAre(globs)))
	}
	if len(why) == 0 {
		return ""
	}
	shell := "/bin/sh"
	if bash {
		shell = "/bin/bash"
	}
	if shellText == "" {
		shellText = shellJoin(args)
	}
	return fmt.Sprintf("%s %q will not run as written: keepalived runs a script's words without a shell, and %s; to run it through a shell write: %s",
		keyword, text, strings.Join(why, "; "), fixLine(keyword, []string{shell, "-c"}, shellText, s))
}

// fixLine is a keepalived.conf line running prefix words plus one command
// string, keeping the script's user and group. The line is read back by
// the same two splits as every script line (quotedWords, like keepalived's
// alloc_strvec_quoted_escaped): the outer "..." and then the inner '...',
// both of which decode backslash escapes.
func fixLine(keyword string, prefix []string, command string, s *Script) string {
	inner := strings.Join(prefix, " ") + " '" + escapeFor(command, '\'') + "'"
	line := keyword + ` "` + escapeFor(inner, '"') + `"`
	if s.User != "" {
		line += " " + s.User
		if s.Group != "" {
			line += " " + s.Group
		}
	}
	return line
}

// escapeFor escapes backslashes and quote for use between quote characters.
func escapeFor(s string, quote byte) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	return strings.ReplaceAll(s, string(quote), `\`+string(quote))
}

// shellJoin joins words into a shell command line, single-quoting those a
// shell would split or expand.
func shellJoin(words []string) string {
	out := make([]string, len(words))
	for i, w := range words {
		if w != "" && strings.IndexFunc(w, func(r rune) bool { return !isShellSafe(r) }) < 0 {
			out[i] = w
		} else {
			out[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}

func isShellSafe(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@%+,", r)
}

// isAssignment reports NAME=value.
func isAssignment(w string) bool {
	eq := strings.IndexByte(w, '=')
	if eq <= 0 {
		return false
	}
	for i, r := range w[:eq] {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// isRedirection reports a word that starts with a redirection: ">file",
// "2>/dev/null", "2>&1", ">>log", "<in", "&>/dev/null".
func isRedirection(w string) bool {
	i := 0
	for i < len(w) && w[i] >= '0' && w[i] <= '9' {
		i++
	}
	rest := w[i:]
	if strings.HasPrefix(rest, "&>") {
		return true
	}
	if !strings.HasPrefix(rest, ">") && !strings.HasPrefix(rest, "<") {
		return false
	}
	// "<(" and ">(" are process substitution, also shell only.
	return len(rest) > 1 || i > 0
}

// isExpansion reports a word a shell would expand and keepalived leaves
// alone: command substitution anywhere, or a shell special parameter at its
// start ($1, $?, $$, $#, $@, $*). $NAME and ${NAME} are keepalived's own
// parameters (keepalived.conf(5), "Parameter substitution"), replaced when
// defined and kept as written when not: not flagged. A "$" inside a word is
// left alone too: "^$" and awk's '{print $1}' are common arguments.
func isExpansion(w string) bool {
	if strings.Contains(w, "$(") || strings.Contains(w, "`") {
		return true
	}
	if len(w) < 2 || w[0] != '$' {
		return false
	}
	c := w[1]
	return c >= '0' && c <= '9' || c == '?' || c == '$' || c == '#' || c == '@' || c == '*'
}

// isGlob reports a path with * or ? in it, which only a shell expands. A
// URL, or a regular expression (anchors, ".*", escapes), is an argument.
func isGlob(w string) bool {
	if !strings.ContainsAny(w, "*?") || !(strings.HasPrefix(w, "/") || strings.HasPrefix(w, "./") || strings.HasPrefix(w, "~/")) {
		return false
	}
	return !strings.Contains(w, "://") && !strings.ContainsAny(w, `^\|()+$`) && !strings.Contains(w, ".*")
}

// uniq keeps the first of equal words, in order.
func uniq(ws []string) []string {
	var out []string
	for _, w := range ws {
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out
}

func quoteList(ws []string) string {
	q := make([]string, len(ws))
	for i, w := range ws {
		q[i] = fmt.Sprintf("%q", w)
	}
	return strings.Join(q, ", ")
}

func isAre(ws []string) string {
	if len(ws) == 1 {
		return "is"
	}
	return "are"
}
