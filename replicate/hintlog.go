package replicate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/hourglass-io/hourglass/internal/wire"
	"github.com/hourglass-io/hourglass/tsstore"
)

// A hint log holds the batches a replica has not applied yet, in segment
// files named <16-digit number>.hint in the replica's directory. Each record
// is
//
//	uint32 payload length, uint32 CRC-32C, uint64 write seq, int64 time (unix ns), payload
//
// (little endian) where the CRC covers the payload, then seq and time, and
// the payload is the batch's cells as wire.AppendCells writes them. A
// torn record at the end of the last segment (a crash during an append) is
// cut off when the log is opened; a bad record anywhere else fails the open.
// Records are appended and never rewritten; a segment is deleted once every
// record in it was applied.

const recordHeader = 24

// errCorruptSegment reports a bad record followed by more data.
var errCorruptSegment = errors.New("corrupt hint segment")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// newRecordBuf returns a record of cells to seal, in a buffer from the
// pool (give it back with putRecordBuf once it is appended everywhere),
// sized in advance so that the encoding never grows it.
func newRecordBuf(cells []tsstore.Cell) []byte {
	n := recordHeader + wire.CellsSize(cells)
	var b []byte
	if p, _ := recordBufs.Get().(*[]byte); p != nil && cap(*p) >= n {
		b = (*p)[:recordHeader]
	} else {
		b = make([]byte, recordHeader, n)
	}
	return wire.AppendCells(b, cells)
}

// recordBufs pools the buffers of hint records: the writer encodes a
// record for every write.
var recordBufs sync.Pool // of *[]byte

// maxPooledRecord is the largest record buffer kept in the pool.
const maxPooledRecord = 1 << 20

func putRecordBuf(b []byte) {
	if cap(b) <= maxPooledRecord {
		recordBufs.Put(&b)
	}
}

// sealRecord fills in the header of buf (made by newRecordBuf) for seq and
// time at.
func sealRecord(buf []byte, seq uint64, at int64) {
	payload := buf[recordHeader:]
	binary.LittleEndian.PutUint32(buf[0:], uint32(len(payload)))
	binary.LittleEndian.PutUint64(buf[8:], seq)
	binary.LittleEndian.PutUint64(buf[16:], uint64(at))
	crc := crc32.Update(crc32.Checksum(payload, castagnoli), castagnoli, buf[8:24])
	binary.LittleEndian.PutUint32(buf[4:], crc)
}

type segment struct {
	num   uint64
	path  string
	f     *os.File
	size  int64
	refs  int  // pending records in it
	dirty bool // appended to since the last fsync
}

// record is a pending record of a hint log.
type record struct {
	seq   uint64
	at    int64 // unix ns
	seg   *segment
	off   int64
	size  int64
	cells []tsstore.Cell // the batch in memory (a shallow copy), or nil: read it from seg
	span  span
}

// span is the time range, metrics and flush identities of some cells.
type span struct {
	From, To int64 // [From, To) of cell starts
	Metrics  []string
	// Seqs are the distinct Seq values of the cells of the legacy writer
	// "" (spans persisted before cells had writers list every cell's Seq
	// here: all of them were the legacy writer's).
	Seqs []uint32 `json:",omitempty"`
	// Flushes are the distinct (Writer, Seq) of the other cells: each
	// names one flush generation of one write-back engine.
	Flushes []flushID `json:",omitempty"`
}

// flushID is the store identity a write-back flush gives its cells.
type flushID struct {
	Writer string
	Seq    uint32
}

// add records the identity (writer, seq) of a cell.
func (s *span) add(writer string, seq uint32) {
	if writer == "" {
		if !slices.Contains(s.Seqs, seq) {
			s.Seqs = append(s.Seqs, seq)
		}
		return
	}
	if f := (flushID{writer, seq}); !slices.Contains(s.Flushes, f) {
		s.Flushes = append(s.Flushes, f)
	}
}

func spanOf(cells []tsstore.Cell, width int64) span {
	var s span
	for i := range cells {
		c := &cells[i]
		if i == 0 || c.Start < s.From {
			s.From = c.Start
		}
		if i == 0 || c.Start+width > s.To {
			s.To = c.Start + width
		}
		if !slices.Contains(s.Metrics, c.Metric) {
			s.Metrics = append(s.Metrics, c.Metric)
		}
		s.add(c.Writer, c.Seq)
	}
	return s
}

func (s *span) merge(o span) {
	if len(o.Metrics) == 0 {
		return
	}
	if len(s.Metrics) == 0 || o.From < s.From {
		s.From = o.From
	}
	if len(s.Metrics) == 0 || o.To > s.To {
		s.To = o.To
	}
	for _, m := range o.Metrics {
		if !slices.Contains(s.Metrics, m) {
			s.Metrics = append(s.Metrics, m)
		}
	}
	for _, q := range o.Seqs {
		s.add("", q)
	}
	for _, f := range o.Flushes {
		s.add(f.Writer, f.Seq)
	}
}

// hintLog is the segment files of one replica. Not safe for concurrent
// use: its link's mutex guards it.
type hintLog struct {
	dir      string
	segBytes int64
	segs     []*segment // oldest first; the last is appended to
	next     uint64     // number of the next segment
	dirDirty bool       // a segment was created or removed since the last sync
}

// openHintLog opens the log in dir (creating dir) and returns its records,
// oldest first, with their batches not in memory.
func openHintLog(dir string, segBytes, width int64) (*hintLog, []*record, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	l := &hintLog{dir: dir, segBytes: segBytes}
	var nums []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".hint")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			continue
		}
		nums = append(nums, n)
	}
	slices.Sort(nums)
	var recs []*record
	for i, n := range nums {
		seg := &segment{num: n, path: filepath.Join(dir, fmt.Sprintf("%016d.hint", n))}
		if seg.f, err = os.OpenFile(seg.path, os.O_RDWR|os.O_APPEND, 0o644); err != nil {
			l.close()
			return nil, nil, err
		}
		l.segs = append(l.segs, seg)
		l.next = n + 1
		rs, good, err := scanSegment(seg, width)
		if err != nil {
			if i != len(nums)-1 || errors.Is(err, errCorruptSegment) {
				l.close()
				return nil, nil, fmt.Errorf("hint segment %s: %w at offset %d", seg.path, err, good)
			}
			// A torn tail: cut it off.
			if terr := seg.f.Truncate(good); terr != nil {
				l.close()
				return nil, nil, terr
			}
		}
		seg.size = good
		seg.refs = len(rs)
		recs = append(recs, rs...)
	}
	return l, recs, nil
}

// scanSegment reads the records of seg; good is the offset after the last
// good record.
func scanSegment(seg *segment, width int64) (recs []*record, good int64, err error) {
	data, err := io.ReadAll(io.NewSectionReader(seg.f, 0, 1<<62))
	if err != nil {
		return nil, 0, err
	}
	for off := int64(0); off < int64(len(data)); {
		rest := data[off:]
		if len(rest) < recordHeader {
			return recs, off, errors.New("truncated record header")
		}
		n := int64(binary.LittleEndian.Uint32(rest))
		if int64(len(rest)) < recordHeader+n {
			return recs, off, errors.New("truncated record")
		}
		rec, cells, err := parseRecord(rest[:recordHeader+n])
		if err != nil {
			if off+recordHeader+n < int64(len(data)) {
				// Good-looking bytes follow: not a torn append but
				// corruption, which must not silently drop the records
				// after it.
				return recs, off, fmt.Errorf("%w: %w", errCorruptSegment, err)
			}
			return recs, off, err
		}
		rec.seg, rec.off = seg, off
		rec.span = spanOf(cells, width)
		recs = append(recs, rec)
		off += recordHeader + n
	}
	return recs, int64(len(data)), nil
}

// parseRecord checks and decodes one whole record.
func parseRecord(b []byte) (*record, []tsstore.Cell, error) {
	payload := b[recordHeader:]
	crc := crc32.Update(crc32.Checksum(payload, castagnoli), castagnoli, b[8:24])
	if crc != binary.LittleEndian.Uint32(b[4:]) {
		return nil, nil, errors.New("record checksum mismatch")
	}
	r := &wire.Reader{B: payload}
	cells := r.Cells()
	if err := r.End(); err != nil {
		return nil, nil, err
	}
	return &record{
		seq:  binary.LittleEndian.Uint64(b[8:]),
		at:   int64(binary.LittleEndian.Uint64(b[16:])),
		size: int64(len(b)),
	}, cells, nil
}

// append writes the sealed record buf and returns where it went.
func (l *hintLog) append(buf []byte) (*segment, int64, error) {
	seg := l.active()
	if seg == nil || seg.size >= l.segBytes {
		var err error
		if seg, err = l.newSegment(); err != nil {
			return nil, 0, err
		}
	}
	off := seg.size
	if _, err := seg.f.Write(buf); err != nil {
		// Cut off what may have been written, so the next record starts
		// at a record boundary.
		_ = seg.f.Truncate(off)
		return nil, 0, err
	}
	seg.size += int64(len(buf))
	seg.dirty = true
	seg.refs++
	return seg, off, nil
}

func (l *hintLog) active() *segment {
	if len(l.segs) == 0 {
		return nil
	}
	return l.segs[len(l.segs)-1]
}

func (l *hintLog) newSegment() (*segment, error) {
	seg := &segment{num: l.next, path: filepath.Join(l.dir, fmt.Sprintf("%016d.hint", l.next))}
	f, err := os.OpenFile(seg.path, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	seg.f = f
	l.next++
	l.segs = append(l.segs, seg)
	l.dirDirty = true
	return seg, nil
}

// read returns the cells of rec from its segment.
func (l *hintLog) read(rec *record) ([]tsstore.Cell, error) {
	b := make([]byte, rec.size)
	if _, err := rec.seg.f.ReadAt(b, rec.off); err != nil {
		return nil, fmt.Errorf("hint segment %s offset %d: %w", rec.seg.path, rec.off, err)
	}
	_, cells, err := parseRecord(b)
	if err != nil {
		return nil, fmt.Errorf("hint segment %s offset %d: %w", rec.seg.path, rec.off, err)
	}
	return cells, nil
}

// release drops rec's reference to its segment, removing segments that
// hold no pending record any more (the active one is emptied instead once
// it is large).
func (l *hintLog) release(rec *record) {
	seg := rec.seg
	seg.refs--
	if seg.refs > 0 {
		return
	}
	if seg == l.active() {
		if seg.size >= l.segBytes/4 && seg.f.Truncate(0) == nil {
			seg.size = 0
		}
		return
	}
	l.remove(seg)
}

func (l *hintLog) remove(seg *segment) {
	_ = seg.f.Close()
	_ = os.Remove(seg.path)
	l.segs = slices.DeleteFunc(l.segs, func(s *segment) bool { return s == seg })
	l.dirDirty = true
}

// reset removes every segment.
func (l *hintLog) reset() {
	for len(l.segs) > 0 {
		l.remove(l.segs[0])
	}
}

// dirtyFiles returns the files to fsync for the records appended so far
// and marks them clean; the caller syncs them outside the lock.
func (l *hintLog) dirtyFiles() (files []*os.File, dir bool) {
	for _, s := range l.segs {
		if s.dirty {
			files = append(files, s.f)
			s.dirty = false
		}
	}
	dir, l.dirDirty = l.dirDirty, false
	return files, dir
}

func (l *hintLog) bytes() int64 {
	var n int64
	for _, s := range l.segs {
		n += s.size
	}
	return n
}

func (l *hintLog) close() {
	for _, s := range l.segs {
		_ = s.f.Close()
	}
	l.segs = nil
}
