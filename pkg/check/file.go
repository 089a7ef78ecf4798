package check

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"syscall"

	"github.com/vrrpkit/vrrpkit/pkg/track"
)

// File is FILE_CHECK: the real server follows a track_file. The file
// holds a number (read as C's strtol(buf, NULL, 0); missing, empty or
// unreadable reads as 0). With Weight 0 the check is up when the number
// is 0 (with Reverse: when it is not); otherwise the number times Weight
// (negated with Reverse) is added to the real server's weight, and the
// check is down only when that is at or below INT32_MIN, keepalived's
// IPVS_WEIGHT_FAULT (track_file.c update_track_file_status and
// process_update_checker_track_file_status).
//
// keepalived watches the file with inotify; this reads it on every
// attempt, so it follows the file within delay_loop.
type File struct {
	Path    string
	Weight  int64
	Reverse bool
}

// Check reads the file.
func (f File) Check(ctx context.Context) Result {
	v, note := readTrackFile(f.Path)
	return FileVerdict(v, f.Weight, f.Reverse, fmt.Sprintf("track file %s %s", f.Path, note))
}

// FileVerdict is FILE_CHECK's rule for a value read from the file.
func FileVerdict(v, weight int64, reverse bool, what string) Result {
	if weight == 0 {
		if (v != 0) != reverse {
			return down("%s: non-zero means down%s", what, revNote(reverse))
		}
		return up("%s%s", what, revNote(reverse))
	}
	mult := int64(1)
	if reverse {
		mult = -1
	}
	w := v * weight * mult
	if w > math.MaxInt32 {
		w = math.MaxInt32
	}
	if w <= math.MinInt32 {
		return down("%s: weight %d x %d is the fault weight", what, v, weight*mult)
	}
	return Result{Up: true, Reason: fmt.Sprintf("%s: weight %+d", what, w), Weight: w, HasWeight: true}
}

func revNote(reverse bool) string {
	if reverse {
		return " (reverse)"
	}
	return ""
}

// readTrackFile reads up to 127 bytes as keepalived's process_track_file.
func readTrackFile(path string) (int64, string) {
	fh, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, "is missing (reads as 0)"
		}
		return 0, fmt.Sprintf("is unreadable (reads as 0): %v", err)
	}
	defer fh.Close()
	buf := make([]byte, 127)
	n, err := io.ReadFull(fh, buf)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return 0, fmt.Sprintf("is unreadable (reads as 0): %v", err)
	}
	// The same reading as vrrp_track_file's (keepalived reads both with
	// strtol).
	v, found, ok := track.ParseValue(buf[:n])
	if !found || !ok {
		return 0, "holds no number (reads as 0)"
	}
	return v, fmt.Sprintf("holds %d", v)
}
