// Package wire is the command protocol between vmlab on the host and its
// init agent inside the VM: one JSON object per line, each way, over the
// VM's second serial port (ttyS1, raw mode). Byte slices travel as base64,
// so a frame never contains a newline and any output survives the trip.
package wire

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sync"
)

// Ops a Request can carry.
const (
	OpRun  = "run"  // run Argv, answer with one Response when it exits
	OpKill = "kill" // SIGKILL the process group of the run with ID
)

// ConfigPath is where the host puts the agent's Config in the initramfs.
const ConfigPath = "/vmlab/config.json"

// Config is what the agent does at boot, before it serves commands.
type Config struct {
	// Modules are .ko paths inside the initramfs, in load order.
	Modules []string `json:"modules"`
	// Optional lists modules whose load failure is not fatal (soft
	// dependencies such as crc32c-intel, which needs SSE4.2).
	Optional map[string]bool `json:"optional,omitempty"`
	// Sysctls are written to /proc/sys/<key with dots as slashes>.
	Sysctls map[string]string `json:"sysctls,omitempty"`
	// Hostname is set with sethostname when non-empty.
	Hostname string `json:"hostname,omitempty"`
}

// Request is one host → VM frame.
type Request struct {
	ID    uint64   `json:"id"`
	Op    string   `json:"op"`
	Argv  []string `json:"argv,omitempty"`
	Env   []string `json:"env,omitempty"`
	Dir   string   `json:"dir,omitempty"`
	Stdin []byte   `json:"stdin,omitempty"`
}

// Response is one VM → host frame. ID 0 is the agent's hello, sent once it
// is ready to serve; Hello then describes the booted system.
type Response struct {
	ID     uint64 `json:"id"`
	Stdout []byte `json:"stdout,omitempty"`
	Stderr []byte `json:"stderr,omitempty"`
	// Exit is the exit status, or -1 when the process was killed by a
	// signal (Signal says which) or never ran (Err says why).
	Exit   int    `json:"exit"`
	Signal string `json:"signal,omitempty"`
	Err    string `json:"err,omitempty"`
	Hello  *Hello `json:"hello,omitempty"`
}

// Hello is what the agent reports once booted.
type Hello struct {
	Kernel string  `json:"kernel"` // uname -r
	Uptime float64 `json:"uptime"` // seconds since the kernel started, at hello
	// Loaded lists the modules that loaded; Failed the optional ones that
	// did not, with the reason.
	Loaded []string          `json:"loaded,omitempty"`
	Failed map[string]string `json:"failed,omitempty"`
}

// MaxFrame bounds one frame, so a broken peer cannot make the reader grow
// without limit.
const MaxFrame = 64 << 20

// Writer writes frames; it is safe for concurrent use.
type Writer struct {
	mu sync.Mutex
	w  io.Writer
}

// NewWriter returns a frame writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write encodes v as one line.
func (fw *Writer) Write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("wire: encode frame: %w", err)
	}
	b = append(b, '\n')
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if _, err := fw.w.Write(b); err != nil {
		return fmt.Errorf("wire: write frame: %w", err)
	}
	return nil
}

// Reader reads frames.
type Reader struct{ s *bufio.Scanner }

// NewReader returns a frame reader on r.
func NewReader(r io.Reader) *Reader {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 64<<10), MaxFrame)
	return &Reader{s: s}
}

// Read decodes the next frame into v. Lines that are not JSON objects
// (noise before the peer opened the port raw) are skipped.
func (fr *Reader) Read(v any) error {
	for fr.s.Scan() {
		line := fr.s.Bytes()
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		if err := json.Unmarshal(line, v); err != nil {
			return fmt.Errorf("wire: decode frame: %w", err)
		}
		return nil
	}
	if err := fr.s.Err(); err != nil {
		return fmt.Errorf("wire: read frame: %w", err)
	}
	return io.EOF
}
