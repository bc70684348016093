package localcache

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
)

// TestReadRecords checks that readRecords gives each record's payload and
// the offset after it, for records that fit its buffer (read in place)
// and larger ones (copied), and that a log cut in a record's header or
// payload fails there with errCorrupt and io.ReadFull's error, after
// giving the records before the cut.
func TestReadRecords(t *testing.T) {
	const buffer = readBufferSize
	r := rand.New(rand.NewPCG(1, 2))
	var payloads [][]byte
	var ends []int64
	var end int64
	for _, n := range []int{0, 1, 100, buffer - headerLen, buffer, buffer + 1, 10, 2*buffer + 5, buffer - 1, 7} {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(r.Uint32())
		}
		payloads = append(payloads, p)
		end += headerLen + int64(n)
		ends = append(ends, end)
	}
	dir := t.TempDir()
	writeLog(t, dir, payloads)
	path := genPath(dir, 1)
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	read := func() (got [][]byte, gotEnds []int64, err error) {
		err = readRecords(path, func(p []byte, end int64) error {
			got, gotEnds = append(got, bytes.Clone(p)), append(gotEnds, end)
			return nil
		})
		return got, gotEnds, err
	}
	got, gotEnds, err := read()
	if err != nil || !slices.EqualFunc(got, payloads, bytes.Equal) || !slices.Equal(gotEnds, ends) {
		t.Fatalf("readRecords: %d records ending at %v, %v; want %d ending at %v", len(got), gotEnds, err, len(payloads), ends)
	}
	for i, p := range payloads {
		start := ends[i] - headerLen - int64(len(p))
		for _, at := range []int64{start + 3, start + headerLen, start + headerLen + int64(len(p))/2, ends[i] - 1} {
			if at >= ends[i] {
				continue // a record of no payload
			}
			want := io.ErrUnexpectedEOF // io.ReadFull's, of a part read
			if at == start+headerLen {
				want = io.EOF // of nothing read
			}
			if err := os.WriteFile(path, file[:at], 0o644); err != nil {
				t.Fatal(err)
			}
			got, _, err := read()
			if !errors.Is(err, errCorrupt) || !errors.Is(err, want) || !slices.EqualFunc(got, payloads[:i], bytes.Equal) {
				t.Errorf("cut at %d, in record %d of %d bytes at %d: %d records, %v; want %d, %v", at, i, len(p), start, len(got), err, i, want)
			}
		}
	}
}
