package vmlab

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// fsTree is the initramfs being assembled: absolute guest path -> entry.
type fsTree map[string]*fsEntry

type fsEntry struct {
	mode         uint32 // type and permission bits, as cpio wants them
	data         []byte // file contents or symlink target
	major, minor uint32 // device nodes
}

func (tr fsTree) dirs(p string) {
	for d := path.Dir(p); d != "/" && d != "."; d = path.Dir(d) {
		if _, ok := tr[d]; !ok {
			tr[d] = &fsEntry{mode: cpioDir | 0o755}
		}
	}
}

func (tr fsTree) data(p string, perm os.FileMode, b []byte) {
	p = path.Clean("/" + p)
	tr.dirs(p)
	tr[p] = &fsEntry{mode: cpioFile | uint32(perm.Perm()), data: b}
}

// file copies a host file (following symlinks) to guest path p.
func (tr fsTree) file(p, src string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("initramfs: %s is not a regular file", src)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	tr.data(p, fi.Mode().Perm(), b)
	return nil
}

func (tr fsTree) symlink(p, target string) {
	p = path.Clean("/" + p)
	tr.dirs(p)
	tr[p] = &fsEntry{mode: cpioSymlink | 0o777, data: []byte(target)}
}

func (tr fsTree) charDev(p string, major, minor uint32) {
	p = path.Clean("/" + p)
	tr.dirs(p)
	tr[p] = &fsEntry{mode: cpioCharDev | 0o600, major: major, minor: minor}
}

func (tr fsTree) sorted() []string {
	names := make([]string, 0, len(tr))
	for n := range tr {
		names = append(names, n)
	}
	// Lexical order puts every directory before what it holds.
	sort.Strings(names)
	return names
}

// hash identifies the tree's content, for the initramfs cache.
func (tr fsTree) hash() string {
	h := sha256.New()
	var n [8]byte
	for _, name := range tr.sorted() {
		e := tr[name]
		h.Write([]byte(name))
		binary.LittleEndian.PutUint32(n[:4], e.mode)
		binary.LittleEndian.PutUint32(n[4:], e.major<<16|e.minor)
		h.Write(n[:])
		binary.LittleEndian.PutUint64(n[:], uint64(len(e.data)))
		h.Write(n[:])
		h.Write(e.data)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// cacheTTL is how long an unused cached initramfs is kept.
const cacheTTL = 24 * time.Hour

// writeCached returns the path of an uncompressed newc archive of tr in
// dir, named by its content hash, writing it only when no identical one is
// there: every test of a package (and of later runs) boots the same file.
// Uncompressed, because gunzip under TCG costs more boot time than reading
// a few more megabytes. Stale archives are removed on the way.
func (tr fsTree) writeCached(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("initramfs cache: %w", err)
	}
	dst := filepath.Join(dir, tr.hash()+".cpio")
	now := time.Now()
	if _, err := os.Stat(dst); err == nil {
		_ = os.Chtimes(dst, now, now)
		return dst, nil
	}
	if old, err := filepath.Glob(filepath.Join(dir, "*.cpio")); err == nil {
		for _, o := range old {
			if fi, err := os.Stat(o); err == nil && now.Sub(fi.ModTime()) > cacheTTL {
				_ = os.Remove(o)
			}
		}
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return "", fmt.Errorf("initramfs cache: %w", err)
	}
	defer os.Remove(f.Name())
	c := &cpioWriter{w: f}
	for _, name := range tr.sorted() {
		e := tr[name]
		if err := c.entry(name, e.mode, e.data, e.major, e.minor); err != nil {
			f.Close()
			return "", err
		}
	}
	if err := c.close(); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("initramfs cache: %w", err)
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		return "", fmt.Errorf("initramfs cache: %w", err)
	}
	return dst, nil
}

// busyboxApplets lists the applet links busybox --list-full names
// ("usr/bin/awk", ...).
func busyboxApplets(out []byte) []string {
	var links []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			links = append(links, "/"+strings.TrimPrefix(l, "/"))
		}
	}
	return links
}
