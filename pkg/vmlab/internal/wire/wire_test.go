package wire

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
)

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	buf.WriteString("kernel noise before raw mode\r\n\n")
	w := NewWriter(&buf)
	reqs := []Request{
		{ID: 1, Op: OpRun, Argv: []string{"sh", "-c", "echo"}, Stdin: []byte("a\nb\x00\xff\r\n")},
		{ID: 2, Op: OpKill},
	}
	for _, r := range reqs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if n := bytes.Count(buf.Bytes(), []byte("\n")); n != 4 {
		t.Errorf("%d newlines, want 2 of noise and one per frame", n)
	}
	rd := NewReader(&buf)
	for _, want := range reqs {
		var got Request
		if err := rd.Read(&got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("read %+v, want %+v", got, want)
		}
	}
	var extra Request
	if err := rd.Read(&extra); !errors.Is(err, io.EOF) {
		t.Errorf("read past the end: %v, want EOF", err)
	}
}

func TestBadFrame(t *testing.T) {
	rd := NewReader(bytes.NewBufferString("{not json\n"))
	var r Response
	if err := rd.Read(&r); err == nil || errors.Is(err, io.EOF) {
		t.Errorf("broken frame: err = %v, want a decode error", err)
	}
}
