package netlab

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// captureSettle is how long Stop waits before stopping tcpdump, so frames
// already on the wire when the test calls Stop reach the file.
const captureSettle = 100 * time.Millisecond

// Capture is a running or finished tcpdump writing a pcap file. Create it
// with [Host.Capture] or [Segment.Capture].
type Capture struct {
	where string // host name or "switch"
	iface string
	file  string
	p     *Proc

	stopOnce sync.Once
	stopErr  error
}

// Capture starts tcpdump on iface in the host's namespace, writing every
// frame that matches the BPF filter (all frames if filter is "") to a pcap
// file, and returns once tcpdump is listening. tcpdump runs with -U and
// --immediate-mode, so frames reach the file as they arrive. The test is
// skipped if tcpdump or tshark is not installed.
func (h *Host) Capture(iface, filter string) *Capture {
	h.lab.t.Helper()
	return h.lab.capture(h.name, h.netns, iface, filter)
}

// Capture starts tcpdump on the segment's bridge in the lab's switch
// namespace: it sees every frame on the segment, between any hosts, like a
// tap. See [Host.Capture].
func (s *Segment) Capture(filter string) *Capture {
	s.lab.t.Helper()
	return s.lab.capture("switch", s.lab.prefix, s.bridge, filter)
}

func (l *Lab) capture(where, netns, iface, filter string) *Capture {
	t := l.t
	t.Helper()
	for _, tool := range []string{"tcpdump", "tshark"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("netlab: %s is not installed", tool)
		}
	}
	c := &Capture{where: where, iface: iface, file: l.file(where, iface, "pcap")}
	// -Z root: Debian's tcpdump would otherwise drop to user tcpdump, which
	// cannot write into the test's temporary directory.
	args := []string{"-i", iface, "-n", "-U", "--immediate-mode", "-Z", "root", "-w", c.file}
	if filter != "" {
		args = append(args, filter)
	}
	p, err := l.start(where, netns, "tcpdump", args...)
	if err != nil {
		t.Fatalf("netlab: %s: capture: %v", where, err)
	}
	c.p = p
	if err := p.WaitLog("listening on", 10*time.Second); err != nil {
		_ = p.Kill()
		t.Fatalf("netlab: %s: capture on %s did not start: %v", where, iface, err)
	}
	return c
}

// File returns the path of the pcap file.
func (c *Capture) File() string { return c.file }

// Proc returns the tcpdump process (its log has tcpdump's messages).
func (c *Capture) Proc() *Proc { return c.p }

// Stop waits briefly for frames in flight, stops tcpdump with SIGINT and
// waits for it to exit. It fails if tcpdump had already ended by itself
// (or was killed by someone else), since the file may then miss frames.
// Calling it again returns the first result.
func (c *Capture) Stop() error {
	c.stopOnce.Do(func() {
		time.Sleep(captureSettle)
		select {
		case <-c.p.done:
			// Something else stopped it (a stray `pkill tcpdump`, a lost
			// interface): its file misses frames, so say so.
			c.stopErr = fmt.Errorf("netlab: %s: capture on %s ended before Stop (%s); last lines of its log:\n%s",
				c.where, c.iface, exitStatus(c.p.err), tail(c.p.log, 10))
			return
		default:
		}
		if err := c.p.Signal(os.Interrupt); err != nil {
			c.stopErr = err
			return
		}
		if err := c.p.Wait(5 * time.Second); err != nil {
			_ = c.p.Kill()
			c.stopErr = fmt.Errorf("netlab: %s: stopping capture on %s: %w", c.where, c.iface, err)
		}
	})
	return c.stopErr
}

// Fields stops the capture if it is still running, then decodes the file
// with tshark: one row per frame that matches the display filter (every
// frame if filter is ""), one column per field, in order, as tshark prints
// them (`tshark -r FILE -Y FILTER -T fields -e FIELD...`). A field absent
// from a frame is ""; a field present more than once (vrrp.ip_addr with
// several VIPs) holds all values joined by ",". Examples of fields:
// frame.time_epoch (see [ParseEpoch]), eth.src, ip.src, ipv6.src, vrrp.prio,
// vrrp.ip_addr, vrrp.ipv6_addr, vrrp.virt_rtr_id, vrrp.adver_int (v2),
// vrrp.short_adver_int (v3, centiseconds), vrrp.version.
func (c *Capture) Fields(filter string, fields ...string) ([][]string, error) {
	if len(fields) == 0 {
		return nil, errors.New("netlab: Capture.Fields: no fields")
	}
	if err := c.Stop(); err != nil {
		return nil, err
	}
	// frame.number first, so no line is empty even if every field is.
	args := []string{"-r", c.file, "-n", "-T", "fields",
		"-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,", "-E", "quote=n",
		"-e", "frame.number"}
	if filter != "" {
		args = append(args, "-Y", filter)
	}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := command(ctx, "tshark", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("netlab: %s: %s: %w\n%s", c.where, shellJoin("tshark", args), err, stderr.Bytes())
	}
	var rows [][]string
	for _, line := range strings.Split(stdout.String(), "\n") {
		if line == "" {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) != 1+len(fields) {
			return nil, fmt.Errorf("netlab: %s: tshark printed %d columns, want %d: %q", c.where, len(cols), 1+len(fields), line)
		}
		rows = append(rows, cols[1:])
	}
	return rows, nil
}

// Packets returns the number of frames in the file so far, without stopping
// the capture (tcpdump writes each frame as it arrives). It reads the pcap
// record headers itself, no tshark.
func (c *Capture) Packets() (int, error) {
	data, err := os.ReadFile(c.file)
	if err != nil {
		return 0, fmt.Errorf("netlab: %s: capture on %s: %w", c.where, c.iface, err)
	}
	n, err := countPcap(data)
	if err != nil {
		return 0, fmt.Errorf("netlab: %s: capture on %s: %s: %w", c.where, c.iface, c.file, err)
	}
	return n, nil
}

// WaitPackets waits up to timeout until the capture holds at least n frames,
// without stopping it.
func (c *Capture) WaitPackets(n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		got, err := c.Packets()
		if err != nil {
			return err
		}
		if got >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("netlab: %s: capture on %s holds %d frames after %v, want %d", c.where, c.iface, got, timeout, n)
		}
		select {
		case <-c.p.Done():
			return fmt.Errorf("netlab: %s: capture on %s ended (%s) with %d frames, want %d; last lines of its log:\n%s",
				c.where, c.iface, exitStatus(c.p.err), got, n, tail(c.p.log, 10))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// countPcap counts the records of a classic pcap file (what tcpdump -w
// writes), in either byte order, with micro- or nanosecond timestamps. A
// record cut short at the end of the file is not counted.
func countPcap(data []byte) (int, error) {
	if len(data) < 24 {
		return 0, fmt.Errorf("pcap file of %d bytes has no header", len(data))
	}
	var order binary.ByteOrder
	switch binary.LittleEndian.Uint32(data) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		order = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		order = binary.BigEndian
	default:
		return 0, fmt.Errorf("not a pcap file (magic %x)", data[:4])
	}
	n := 0
	for off := 24; off+16 <= len(data); n++ {
		incl := int(order.Uint32(data[off+8:]))
		if incl < 0 || off+16+incl > len(data) {
			break
		}
		off += 16 + incl
	}
	return n, nil
}

// ParseEpoch parses a frame.time_epoch value as tshark prints it
// ("1700000000.123456789") into a time.Time.
func ParseEpoch(s string) (time.Time, error) {
	secStr, fracStr, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(secStr, 10, 64)
	if err != nil || sec < 0 {
		return time.Time{}, fmt.Errorf("netlab: bad frame.time_epoch %q", s)
	}
	var nsec int64
	if fracStr != "" {
		if len(fracStr) > 9 {
			fracStr = fracStr[:9]
		}
		n, err := strconv.ParseUint(fracStr, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("netlab: bad frame.time_epoch %q", s)
		}
		nsec = int64(n)
		for range 9 - len(fracStr) {
			nsec *= 10
		}
	}
	return time.Unix(sec, nsec), nil
}
