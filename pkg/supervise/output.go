package supervise

import (
	"bufio"
	"io"
)

// maxLine is the longest line passed to Output in one Write; longer ones are
// split.
const maxLine = 64 << 10

// copyLines copies r to w one line per Write until r fails (EOF or closed).
// A write error does not stop the reading: the child must never block on a
// full pipe because the log sink is broken.
func copyLines(w io.Writer, r io.Reader) {
	br := bufio.NewReaderSize(r, maxLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			_, _ = w.Write(line)
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}
