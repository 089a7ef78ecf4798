package vmlab

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// pvhKernel returns an uncompressed vmlinux for bzImage, cached in dir,
// that qemu boots straight through its PVH entry point. Under TCG that
// saves most of the boot: the bzImage's own xz decompressor runs emulated
// for about 5.5 s, the host's xz takes about 1 s once. It fails when the
// kernel has no PVH entry (CONFIG_PVH) or the payload cannot be unpacked;
// Boot then uses the bzImage.
func pvhKernel(bzImage, dir string) (string, error) {
	raw, err := os.ReadFile(bzImage)
	if err != nil {
		return "", fmt.Errorf("kernel: %w", err)
	}
	sum := sha256.Sum256(raw)
	dst := filepath.Join(dir, "vmlinux-"+hex.EncodeToString(sum[:12]))
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	payload, err := bzPayload(raw)
	if err != nil {
		return "", err
	}
	vmlinux, err := decompress(payload)
	if err != nil {
		return "", err
	}
	if err := hasPVH(vmlinux); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("kernel: %w", err)
	}
	f, err := os.CreateTemp(dir, ".tmp-vmlinux-*")
	if err != nil {
		return "", fmt.Errorf("kernel: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(vmlinux); err != nil {
		f.Close()
		return "", fmt.Errorf("kernel: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("kernel: %w", err)
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		return "", fmt.Errorf("kernel: %w", err)
	}
	return dst, nil
}

// bzPayload cuts the compressed vmlinux out of a bzImage, using the setup
// header's setup_sects, payload_offset and payload_length
// (Documentation/arch/x86/boot.rst, boot protocol 2.08+).
func bzPayload(b []byte) ([]byte, error) {
	if len(b) < 0x250 || string(b[0x202:0x206]) != "HdrS" {
		return nil, errors.New("kernel: not a bzImage (no HdrS)")
	}
	if v := binary.LittleEndian.Uint16(b[0x206:]); v < 0x208 {
		return nil, fmt.Errorf("kernel: boot protocol %#x has no payload fields", v)
	}
	setup := int(b[0x1f1])
	if setup == 0 {
		setup = 4
	}
	start := (setup + 1) * 512
	off := int(binary.LittleEndian.Uint32(b[0x248:]))
	n := int(binary.LittleEndian.Uint32(b[0x24c:]))
	if start+off+n > len(b) || n <= 0 {
		return nil, errors.New("kernel: payload outside the bzImage")
	}
	return b[start+off : start+off+n], nil
}

func decompress(p []byte) ([]byte, error) {
	// The build appends the uncompressed size after the stream
	// (scripts/Makefile.lib size_append): the tools must stop at the
	// stream's end, or, lacking a switch for that, their complaint about
	// trailing data is ignored when a whole ELF came out.
	var tool []string
	switch {
	case bytes.HasPrefix(p, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(bytes.NewReader(p))
		if err != nil {
			return nil, fmt.Errorf("kernel: gzip payload: %w", err)
		}
		out, err := io.ReadAll(zr)
		if err != nil && len(out) == 0 {
			return nil, fmt.Errorf("kernel: gzip payload: %w", err)
		}
		return out, nil
	case bytes.HasPrefix(p, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		tool = []string{"xz", "-dc", "--single-stream"}
	case bytes.HasPrefix(p, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		tool = []string{"zstd", "-dc"}
	default:
		return nil, errors.New("kernel: payload compression not supported")
	}
	cmd := exec.Command(tool[0], tool[1:]...)
	cmd.Stdin = bytes.NewReader(p)
	out, err := cmd.Output()
	if err != nil && !bytes.HasPrefix(out, []byte(elf.ELFMAG)) {
		return nil, fmt.Errorf("kernel: %s payload: %w", tool, err)
	}
	return out, nil
}

// hasPVH reports whether vmlinux carries the XEN_ELFNOTE_PHYS32_ENTRY note
// (type 18, owner "Xen") qemu needs to boot an ELF kernel.
func hasPVH(vmlinux []byte) error {
	f, err := elf.NewFile(bytes.NewReader(vmlinux))
	if err != nil {
		return fmt.Errorf("kernel: vmlinux: %w", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			continue
		}
		for len(b) >= 12 {
			nsz := int(binary.LittleEndian.Uint32(b))
			dsz := int(binary.LittleEndian.Uint32(b[4:]))
			typ := binary.LittleEndian.Uint32(b[8:])
			name := b[12:]
			if nsz > len(name) {
				break
			}
			if typ == 18 && string(bytes.TrimRight(name[:nsz], "\x00")) == "Xen" {
				return nil
			}
			adv := 12 + (nsz+3)&^3 + (dsz+3)&^3
			if adv > len(b) {
				break
			}
			b = b[adv:]
		}
	}
	return errors.New("kernel: vmlinux has no PVH entry note")
}
