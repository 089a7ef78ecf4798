package vmlab

import (
	"bufio"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// modIndex is what depmod wrote under /lib/modules/<release>: enough of it
// to load a module and its dependencies in order without modprobe.
type modIndex struct {
	deps    map[string][]string // module path -> dependency paths, modules.dep
	byName  map[string]string   // normalised name -> module path
	softPre map[string][]string // name -> "softdep <name> pre:" names, modules.softdep
	alias   map[string][]string // exact alias -> names, modules.alias
	builtin map[string]bool     // normalised names built into the kernel
}

// modName normalises a module name or path the way kmod does: basename
// without .ko[.xz|.zst|.gz], '-' and '_' equal.
func modName(p string) string {
	b := path.Base(p)
	if i := strings.Index(b, ".ko"); i >= 0 {
		b = b[:i]
	}
	return strings.ReplaceAll(b, "-", "_")
}

func readModIndex(fsys fs.FS) (*modIndex, error) {
	ix := &modIndex{
		deps: map[string][]string{}, byName: map[string]string{},
		softPre: map[string][]string{}, alias: map[string][]string{}, builtin: map[string]bool{},
	}
	err := eachLine(fsys, "modules.dep", true, func(line string) {
		mod, deps, ok := strings.Cut(line, ":")
		if !ok {
			return
		}
		ix.deps[mod] = strings.Fields(deps)
		ix.byName[modName(mod)] = mod
	})
	if err != nil {
		return nil, err
	}
	if err := eachLine(fsys, "modules.builtin", false, func(line string) {
		ix.builtin[modName(line)] = true
	}); err != nil {
		return nil, err
	}
	if err := eachLine(fsys, "modules.softdep", false, func(line string) {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "softdep" {
			return
		}
		name := modName(f[1])
		pre := false
		for _, w := range f[2:] {
			switch w {
			case "pre:":
				pre = true
			case "post:":
				pre = false
			default:
				if pre {
					ix.softPre[name] = append(ix.softPre[name], w)
				}
			}
		}
	}); err != nil {
		return nil, err
	}
	if err := eachLine(fsys, "modules.alias", false, func(line string) {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "alias" && !strings.ContainsAny(f[1], "*?[") {
			ix.alias[f[1]] = append(ix.alias[f[1]], modName(f[2]))
		}
	}); err != nil {
		return nil, err
	}
	return ix, nil
}

func eachLine(fsys fs.FS, name string, required bool, fn func(string)) error {
	f, err := fsys.Open(name)
	if err != nil {
		if !required {
			return nil
		}
		return fmt.Errorf("modules: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line != "" && line[0] != '#' {
			fn(line)
		}
	}
	if err := s.Err(); err != nil {
		return fmt.Errorf("modules: read %s: %w", name, err)
	}
	return nil
}

// modLoad is one module to insert, in order.
type modLoad struct {
	path     string // relative to the modules directory, as in modules.dep
	optional bool   // a soft dependency: its failure is not fatal
}

// resolve orders names and everything they need so each module comes after
// its dependencies, like modprobe: the hard dependencies of modules.dep
// (listed there nearest first, so loaded last to first) and the "pre:" soft
// dependencies of modules.softdep (libcrc32c needs a crc32c provider, which
// nothing else would load). A soft dependency naming an alias (crc32c)
// brings every module providing it, each optional: crc32c-intel fails
// without SSE4.2, crc32c_generic then serves. Built-in modules are skipped.
func (ix *modIndex) resolve(names []string) ([]modLoad, error) {
	var out []modLoad
	seen := map[string]bool{}
	var visit func(name string, optional bool, depth int) error
	visit = func(name string, optional bool, depth int) error {
		name = modName(name)
		if depth > 64 {
			return fmt.Errorf("modules: dependency loop at %s", name)
		}
		if ix.builtin[name] {
			return nil
		}
		p, ok := ix.byName[name]
		if !ok {
			if provs := ix.alias[name]; len(provs) > 0 {
				for _, prov := range provs {
					if err := visit(prov, true, depth+1); err != nil {
						return err
					}
				}
				return nil
			}
			if optional {
				return nil
			}
			return fmt.Errorf("modules: no module %q in modules.dep, modules.builtin or modules.alias", name)
		}
		if seen[p] {
			return nil
		}
		seen[p] = true
		for _, sd := range ix.softPre[name] {
			if err := visit(sd, true, depth+1); err != nil {
				return err
			}
		}
		deps := ix.deps[p]
		for i := len(deps) - 1; i >= 0; i-- {
			if err := visit(modName(deps[i]), optional, depth+1); err != nil {
				return err
			}
		}
		out = append(out, modLoad{path: p, optional: optional})
		return nil
	}
	for _, n := range names {
		if err := visit(n, false, 0); err != nil {
			return nil, err
		}
	}
	return out, nil
}
