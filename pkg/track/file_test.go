package track

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

func TestParseTrackValue(t *testing.T) {
	for _, tc := range []struct {
		in        string
		v         int64
		found, ok bool
	}{
		{"0", 0, true, true},
		{"42\n", 42, true, true},
		{"  -7 trailing words", -7, true, true},
		{"+3", 3, true, true},
		{"0x1f", 31, true, true},
		{"0X1F", 31, true, true},
		{"010", 8, true, true}, // octal, as strtol base 0
		{"09", 0, true, true},  // octal stops at 9
		{"0x", 0, true, true},  // "0" then garbage
		{"\t\n 5", 5, true, true},
		{"abc", 0, false, true},
		{"", 0, false, true},
		{"-", 0, false, true},
		{"2147483648", 2147483648, true, true}, // INT32_MAX+1 is allowed
		{"2147483649", 2147483649, true, false},
		{"-2147483648", -2147483648, true, true},
		{"-2147483649", -2147483649, true, false},
		{"99999999999999999999", 0, true, false}, // beyond a long: ERANGE
	} {
		v, found, ok := ParseValue([]byte(tc.in))
		if found != tc.found || ok != tc.ok || (ok && v != tc.v) {
			t.Errorf("ParseValue(%q) = %d, %v, %v; want %d, %v, %v", tc.in, v, found, ok, tc.v, tc.found, tc.ok)
		}
	}
}

func fileSet(t *testing.T, log *logRec) (*Set, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	s := NewSet(Options{Clock: clk, Log: slog.New(log), Proc: fakeProc{}, RunsAs: "uid 65534 (nobody)"})
	t.Cleanup(s.Close)
	return s, clk
}

func applyFile(t *testing.T, s *Set, gen uint64, f *pb.VrrpTrackFile) {
	t.Helper()
	if _, err := s.Apply(&pb.ConfigSnapshot{Generation: gen, TrackFiles: []*pb.VrrpTrackFile{f}}); err != nil {
		t.Fatal(err)
	}
}

func waitFile(t *testing.T, s *Set, state State, value int64) {
	t.Helper()
	k := fileKey("f")
	waitFor(t, "file "+state.String(), func() bool {
		r, _ := resultOf(s, k)
		return r.State == state && r.Value == value
	})
}

// TestTrackFile: real files in a temp directory, seen through inotify (the
// fake clock never moves, so the periodic re-read plays no part).
func TestTrackFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "weight")
	log := &logRec{}
	s, _ := fileSet(t, log)
	_, sub := s.Subscribe()
	defer sub.Close()
	applyFile(t, s, 1, &pb.VrrpTrackFile{Name: "f", Path: path, Weight: 1})
	if r, _ := resultOf(s, fileKey("f")); r.State != StateDown || r.Value != 0 || !strings.Contains(r.Detail, "missing") {
		t.Fatalf("missing file: %+v", r)
	}
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("5\n")
	waitFile(t, s, StateUp, 5)
	write("-3")
	waitFile(t, s, StateUp, -3)
	// Renamed over it: IN_MOVED_TO.
	tmp := filepath.Join(dir, ".weight.tmp")
	if err := os.WriteFile(tmp, []byte("0x10"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	waitFile(t, s, StateUp, 16)
	// Garbage reads as 0, as strtol.
	write("garbage")
	waitFile(t, s, StateDown, 0)
	write("7")
	waitFile(t, s, StateUp, 7)
	// Out of range: ignored, the value stays.
	write("99999999999")
	waitFor(t, "invalid number logged", func() bool { return log.count("Invalid number") == 1 })
	if r, _ := resultOf(s, fileKey("f")); r.Value != 7 {
		t.Errorf("after an out-of-range number: value %d, want 7 kept", r.Value)
	}
	// Deleted: 0.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFile(t, s, StateDown, 0)

	// The subscription saw the first result and each change once, in order.
	var got []int64
	for len(got) < 7 {
		select {
		case ev := <-sub.C:
			got = append(got, ev.Result.Value)
		case <-time.After(5 * time.Second):
			t.Fatalf("events so far %v", got)
		}
	}
	want := []int64{0, 5, -3, 16, 0, 7, 0} // the first: the missing file at apply
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event values %v, want %v", got, want)
		}
	}
}

// TestTrackFilePeriodic: what inotify cannot see (the directory created
// after the tracker started) the periodic re-read does.
func TestTrackFilePeriodic(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "later")
	path := filepath.Join(dir, "weight")
	log := &logRec{}
	s, clk := fileSet(t, log)
	applyFile(t, s, 1, &pb.VrrpTrackFile{Name: "f", Path: path})
	waitFor(t, "watch failure logged", func() bool { return log.count("cannot watch") == 1 })
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("3"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the re-read timer armed", func() bool { return clk.pending() == 1 })
	clk.Advance(30 * time.Second)
	waitFile(t, s, StateUp, 3)
	// The re-read re-added the watch: inotify works from now on.
	if err := os.WriteFile(path, []byte("4"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFile(t, s, StateUp, 4)
}

// TestTrackFileInit: init_file creates a missing file; overwrite replaces
// an existing one at start (generation 1) but not on a reload.
func TestTrackFileInit(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name      string
		existing  string // "" = none
		overwrite bool
		gen       uint64
		want      int64
	}{
		{name: "created when missing", gen: 1, want: 9},
		{name: "existing kept", existing: "2", gen: 1, want: 2},
		{name: "overwritten at start", existing: "2", overwrite: true, gen: 1, want: 9},
		{name: "not overwritten on reload", existing: "2", overwrite: true, gen: 5, want: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			if tc.existing != "" {
				if err := os.WriteFile(path, []byte(tc.existing), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			s, _ := fileSet(t, &logRec{})
			applyFile(t, s, tc.gen, &pb.VrrpTrackFile{Name: "f", Path: path, InitFile: true, InitValue: 9, InitOverwrite: tc.overwrite})
			if r, _ := resultOf(s, fileKey("f")); r.Value != tc.want {
				t.Errorf("value %d (%s), want %d", r.Value, r.Detail, tc.want)
			}
		})
	}
}

// TestTrackFileUnreadable: a file checkerd's user may not read is 0, and
// the log says why and as whom checkerd runs. Root reads anything, so the
// test runs the check as root only through a file mode that blocks even
// root: none exists, so it needs a non-root uid.
func TestTrackFileUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every file; the unreadable case is covered by cmd/checkerd's test as uid 65534")
	}
	path := filepath.Join(t.TempDir(), "weight")
	if err := os.WriteFile(path, []byte("5"), 0o000); err != nil {
		t.Fatal(err)
	}
	log := &logRec{}
	s, _ := fileSet(t, log)
	applyFile(t, s, 1, &pb.VrrpTrackFile{Name: "f", Path: path})
	if r, _ := resultOf(s, fileKey("f")); r.Value != 0 || !strings.Contains(r.Detail, "not readable") {
		t.Errorf("unreadable file: %+v", r)
	}
	if log.count("checkerd runs as uid 65534 (nobody)") != 1 {
		t.Errorf("no log line with the user hint: %q", log.msgs)
	}
}
