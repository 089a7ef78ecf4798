package scriptrun

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// The kinds of StartError, for errors.Is.
var (
	// ErrNotFound: the script, or a directory on its path, does not exist
	// (or is not in PATH).
	ErrNotFound = errors.New("script not found")
	// ErrNotExecutable: the script's user may not execute it.
	ErrNotExecutable = errors.New("script not executable")
	// ErrInsecure: enable_script_security refused the script.
	ErrInsecure = errors.New("script insecure")
	// ErrUnknownUser: the script's user or group does not exist.
	ErrUnknownUser = errors.New("unknown script user or group")
	// ErrExec: fork or execve failed.
	ErrExec = errors.New("cannot start script")
)

// StartError is why a script was not run. Its message is keepalived's log
// line for the same case (lib/notify.c), so a keepalived user recognises
// it; Kind is one of the Err* values above.
type StartError struct {
	Kind error
	Msg  string
}

func (e *StartError) Error() string { return e.Msg }
func (e *StartError) Unwrap() error { return e.Kind }

func startErr(kind error, format string, args ...any) error {
	return &StartError{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// plan is what to execve once every check has passed.
type plan struct {
	path string   // the file to execute
	argv []string // argv[0] included
	id   identity
	// warnings keepalived would log (once): path search, unsafe
	// permissions without enable_script_security.
	warnings []string
}

// isExecutable is keepalived's is_executable (lib/notify.c): root may run
// a file with any x bit; otherwise owner, group (the primary gid only) and
// other bits apply in turn, like the kernel without supplementary groups.
func isExecutable(st *unix.Stat_t, uid, gid uint32) bool {
	m := st.Mode
	switch {
	case uid == 0:
		return m&0o111 != 0
	case uid == st.Uid:
		return m&0o100 != 0
	case gid == st.Gid:
		return m&0o010 != 0
	default:
		return m&0o001 != 0
	}
}

// shellRedirect reports keepalived's special case of a script that is only
// a redirection, "</path" ("<" then blanks then "/"), used to test that a
// file can be opened: it is run by system(3), i.e. /bin/sh -c, and not
// checked (lib/notify.c, check_script_secure returning SC_SYSTEM).
func shellRedirect(arg0 string) bool {
	if !strings.HasPrefix(arg0, "<") {
		return false
	}
	return strings.HasPrefix(strings.TrimLeft(arg0[1:], " \t"), "/")
}

// systemCommand is keepalived's cmd_str (lib/notify.c): the words for
// system(3), each but a leading redirection in single quotes. Unlike
// keepalived it escapes a quote inside a word.
func systemCommand(args []string) string {
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		if i == 0 && (strings.HasPrefix(a, "<") || strings.HasPrefix(a, ">")) {
			b.WriteString(a)
			continue
		}
		b.WriteString("'" + strings.ReplaceAll(a, "'", `'\''`) + "'")
	}
	return b.String()
}

// lookPath is keepalived's find_path (lib/notify.c, after glibc's execvp):
// the first regular file in searchPath that the script's user may execute.
// An empty PATH element is the current directory. Finding only files the
// user may not execute is a permissions failure, not "not found".
func lookPath(file, searchPath string, id identity) (string, error) {
	if len(file) > unix.NAME_MAX {
		return "", startErr(ErrNotFound, "Cannot find script %s in path - disabling (%v)", file, unix.ENAMETOOLONG)
	}
	denied := false
	for _, dir := range strings.Split(searchPath, ":") {
		p := file
		if dir != "" {
			p = dir + "/" + file
		}
		var st unix.Stat_t
		if unix.Stat(p, &st) != nil {
			continue
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG || !isExecutable(&st, id.uid, id.gid) {
			denied = true
			continue
		}
		return p, nil
	}
	if denied {
		return "", startErr(ErrNotExecutable, "Permissions failure for script %s in path - disabling", file)
	}
	return "", startErr(ErrNotFound, "Cannot find script %s in path - disabling", file)
}

// checkSecurity is keepalived's check_security (lib/notify.c): every
// element of path, from "/" to the file itself, examined without following
// symbolic links, must be owned by root and, for the file and for
// directories without the sticky bit, not writable by a group other than
// root's or by others; otherwise a non-root user could replace what root
// runs. Every element but the last must be a directory, the last a regular
// file or a symbolic link. insecure reports a permissions problem; err a
// missing element or a wrong type, which keepalived refuses with or without
// enable_script_security.
func checkSecurity(path string, security bool) (insecure bool, msg string, err error) {
	var prefixes []string
	for i := 0; i < len(path); i++ {
		if path[i] == '/' {
			if i == 0 {
				prefixes = append(prefixes, "/")
			} else {
				prefixes = append(prefixes, path[:i])
			}
		}
	}
	prefixes = append(prefixes, path)
	for i, p := range prefixes {
		last := i == len(prefixes)-1
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			if errors.Is(err, unix.EACCES) || errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
				return false, "", startErr(ErrNotFound, "check_script_secure could not find script '%s' - disabling", path)
			}
			return false, "", startErr(ErrNotFound, "check_script_secure('%s') returned errno %d - %v - disabling", path, errno(err), err)
		}
		typ := st.Mode & unix.S_IFMT
		if (!last && typ != unix.S_IFDIR) || (last && typ != unix.S_IFREG && typ != unix.S_IFLNK) {
			return false, "", startErr(ErrInsecure, "Wrong file type found in script path '%s'.", path)
		}
		writable := (st.Gid != 0 && st.Mode&0o020 != 0) || st.Mode&0o002 != 0
		guarded := (typ == unix.S_IFDIR && st.Mode&unix.S_ISVTX == 0) || typ == unix.S_IFREG
		if st.Uid != 0 || (guarded && writable) {
			if security {
				return true, "", startErr(ErrInsecure, "Unsafe permissions found for script '%s' - disabling.", path)
			}
			return true, fmt.Sprintf("Unsafe permissions found for script '%s'.", path), nil
		}
	}
	return false, "", nil
}

func errno(err error) int {
	var e unix.Errno
	if errors.As(err, &e) {
		return int(e)
	}
	return -1
}

// prepare runs keepalived's check_script_secure (lib/notify.c) for cmd:
// the user, the PATH search for a bare name, the real path (symbolic links
// resolved, the file name kept when it is the same file, as some programs
// look at their name), the x bit for the script's user, and, when the
// script runs with root's uid or gid (or is set-uid/gid root), the
// ownership and permissions of every element of its path.
func (r *Runner) prepare(cmd Command) (plan, error) {
	if len(cmd.Args) == 0 || cmd.Args[0] == "" {
		return plan{}, startErr(ErrNotFound, "script has no command")
	}
	id, err := r.identity(cmd)
	if err != nil {
		return plan{}, err
	}
	if shellRedirect(cmd.Args[0]) {
		return plan{path: "/bin/sh", argv: []string{"sh", "-c", systemCommand(cmd.Args)}, id: id}, nil
	}
	var p plan
	p.id = id
	name := cmd.Args[0]
	if !strings.Contains(name, "/") {
		found, err := lookPath(name, r.searchPath(), id)
		if err != nil {
			return plan{}, err
		}
		p.warnings = append(p.warnings, fmt.Sprintf("WARNING - script `%s` resolved by path search to `%s`. Please specify full path.", name, found))
		name = found
	}
	abs, err := filepath.Abs(name)
	if err != nil {
		return plan{}, startErr(ErrNotFound, "Script %s cannot be accessed - %v", name, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return plan{}, startErr(ErrNotFound, "Script %s cannot be accessed - %v", name, err)
	}
	// Keep the name the user gave when real's directory has it as the same
	// file (a symbolic link beside its target, busybox style).
	execPath, realPath := real, ""
	if filepath.Base(abs) != filepath.Base(real) {
		alt := filepath.Join(filepath.Dir(real), filepath.Base(abs))
		var a, b unix.Stat_t
		if unix.Stat(alt, &a) == nil && unix.Stat(real, &b) == nil && a.Dev == b.Dev && a.Ino == b.Ino {
			execPath, realPath = alt, real
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(execPath, &st); err != nil {
		return plan{}, startErr(ErrNotFound, "Unable to access script `%s` - disabling", execPath)
	}
	if !isExecutable(&st, id.uid, id.gid) {
		return plan{}, startErr(ErrNotExecutable, "WARNING - script '%s' is not executable for uid:gid %d:%d - disabling.", execPath, id.uid, id.gid)
	}
	p.path = execPath
	p.argv = append([]string{execPath}, cmd.Args[1:]...)
	protect := id.uid == 0 || id.gid == 0 ||
		(st.Uid == 0 && st.Mode&unix.S_IXUSR != 0 && st.Mode&unix.S_ISUID != 0) ||
		(st.Gid == 0 && st.Mode&unix.S_IXGRP != 0 && st.Mode&unix.S_ISGID != 0)
	if !protect {
		return p, nil
	}
	for _, path := range []string{execPath, realPath} {
		if path == "" {
			continue
		}
		_, warn, err := checkSecurity(path, cmd.Security)
		if err != nil {
			return plan{}, err
		}
		if warn != "" {
			p.warnings = append(p.warnings, warn)
		}
	}
	return p, nil
}
