package vmlab

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// libDirs is where Debian's dynamic loader looks for libraries (ld.so(8),
// /etc/ld.so.conf.d/x86_64-linux-gnu.conf), in its order.
var libDirs = []string{
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
	"/lib64", "/usr/lib64", "/lib", "/usr/lib",
}

// sharedDeps returns the dynamic loader and every shared library a host
// program needs, recursively (DT_NEEDED), as absolute paths where the
// loader inside the VM will look for them. A static program has none.
func sharedDeps(prog string) ([]string, error) {
	if head, err := readHead(prog, 4); err != nil {
		return nil, fmt.Errorf("elf: %w", err)
	} else if string(head) != elf.ELFMAG {
		return nil, nil // a script: its interpreter is the caller's business
	}
	var out []string
	seen := map[string]bool{}
	var walk func(file string, depth int) error
	walk = func(file string, depth int) error {
		if depth > 32 {
			return fmt.Errorf("elf: library chain too deep at %s", file)
		}
		f, err := elf.Open(file)
		if err != nil {
			return fmt.Errorf("elf: %w", err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type != elf.PT_INTERP {
				continue
			}
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return fmt.Errorf("elf: %s interpreter: %w", file, err)
			}
			interp := string(b)
			if i := len(interp) - 1; i >= 0 && interp[i] == 0 {
				interp = interp[:i]
			}
			if !seen[interp] {
				seen[interp] = true
				out = append(out, interp)
			}
		}
		libs, err := f.ImportedLibraries()
		if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
			return fmt.Errorf("elf: %s: %w", file, err)
		}
		for _, lib := range libs {
			p, err := findLib(lib)
			if err != nil {
				return fmt.Errorf("elf: %s needs %s: %w", file, lib, err)
			}
			if seen[p] {
				continue
			}
			seen[p] = true
			out = append(out, p)
			if err := walk(p, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(prog, 0); err != nil {
		return nil, err
	}
	return out, nil
}

func findLib(name string) (string, error) {
	if filepath.IsAbs(name) {
		return name, nil
	}
	for _, d := range libDirs {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("not found in %v: %w", libDirs, fs.ErrNotExist)
}

func readHead(p string, n int) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	k, err := io.ReadFull(f, b)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		err = nil
	}
	return b[:k], err
}
