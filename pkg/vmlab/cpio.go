package vmlab

import (
	"fmt"
	"io"
	"strings"
)

// cpioWriter writes the "newc" cpio format the kernel unpacks as an
// initramfs (Documentation/driver-api/early-userspace/buffer-format.rst):
// a 110-byte ASCII header per entry, the NUL-terminated name and then the
// data, each padded to 4 bytes, closed by a "TRAILER!!!" entry.
type cpioWriter struct {
	w   io.Writer
	ino uint32
	off int64
	err error
}

const (
	cpioDir     = 0o040000
	cpioFile    = 0o100000
	cpioSymlink = 0o120000
	cpioCharDev = 0o020000
)

func (c *cpioWriter) write(b []byte) {
	if c.err != nil {
		return
	}
	n, err := c.w.Write(b)
	c.off += int64(n)
	c.err = err
}

func (c *cpioWriter) pad() {
	if r := c.off % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

// entry writes one entry: mode carries the type bits (cpioDir, ...) and the
// permission bits; rdev is major, minor of a device node.
func (c *cpioWriter) entry(name string, mode uint32, data []byte, rdevMajor, rdevMinor uint32) error {
	name = strings.TrimPrefix(name, "/")
	if name == "" {
		name = "."
	}
	c.ino++
	nlink := uint32(1)
	if mode&0o170000 == cpioDir {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	c.write([]byte(hdr))
	c.write([]byte(name))
	c.write([]byte{0})
	c.pad()
	c.write(data)
	c.pad()
	if c.err != nil {
		return fmt.Errorf("cpio: write %s: %w", name, c.err)
	}
	return nil
}

func (c *cpioWriter) close() error {
	c.ino = 0
	return c.entry("TRAILER!!!", 0, nil, 0, 0)
}
