package promtsdb

import (
	"bufio"
	"context"
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

// The redo log keeps the late cells (those below what their series has
// stored, which the TSDB writes out of order) until the TSDB has them in a
// block. tsdb v0.316.0 can lose acknowledged out-of-order samples when the
// process is killed during an out-of-order compaction: the samples are in
// its write-behind log (WBL), yet are missing after the replay (seen in
// TestCrashRecovery, a few runs in ten on a loaded machine; in-order
// samples were never lost). Open rewrites the logged cells; a cell still
// stored is an identical rewrite, a no-op.
//
// Layout: dir/redo/<seq>-<wbl>.log, append-only segments of records
// (uint32 length, uint32 CRC-32C of the payload, payload: cells). Cells
// are logged after the TSDB's Commit, and a record is appended to the open
// segment only while the newest WBL segment is still the one it was when
// the segment was opened: <wbl>. So every cell of the segment is in a WBL
// segment at or below <wbl>. The TSDB's out-of-order compaction starts a
// new WBL segment, writes the blocks, then deletes the older WBL segments:
// once the oldest WBL segment is above <wbl>, every cell of the redo
// segment is in a block and the segment is deleted. A segment is closed
// when the WBL has a newer segment or when it reaches redoMaxBytes.
const (
	redoDir      = "redo"
	redoMaxBytes = 64 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

type redoLog struct {
	dir    string // the redo directory
	wblDir string // the TSDB's write-behind log

	mu      sync.Mutex
	f       *os.File // the open segment, nil until the first record
	w       *bufio.Writer
	seq     int // number of the open (or next) segment
	size    int64
	wblOpen int // newest WBL segment when f was opened
	buf     []byte
}

func openRedo(dbDir string) (*redoLog, error) {
	r := &redoLog{dir: filepath.Join(dbDir, redoDir), wblDir: filepath.Join(dbDir, "wbl")}
	if err := os.MkdirAll(r.dir, 0o777); err != nil {
		return nil, err
	}
	segs, err := r.segments()
	if err != nil {
		return nil, err
	}
	if len(segs) > 0 {
		r.seq = segs[len(segs)-1].seq + 1
	}
	return r, nil
}

type redoSegment struct {
	seq, wbl int // wbl < 0: the segment was not closed (a crash)
	path     string
}

// segments lists the segment files in order.
func (r *redoLog) segments() ([]redoSegment, error) {
	ents, err := os.ReadDir(r.dir)
	if err != nil {
		return nil, err
	}
	var segs []redoSegment
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".log")
		if !ok {
			continue
		}
		a, b, closed := strings.Cut(name, "-")
		seq, err := strconv.Atoi(a)
		if err != nil {
			continue
		}
		wbl := -1
		if closed {
			if wbl, err = strconv.Atoi(b); err != nil {
				continue
			}
		}
		segs = append(segs, redoSegment{seq: seq, wbl: wbl, path: filepath.Join(r.dir, e.Name())})
	}
	slices.SortFunc(segs, func(a, b redoSegment) int { return a.seq - b.seq })
	return segs, nil
}

// wblRange returns the oldest and newest WBL segment numbers (-1, -1 when
// there is none).
func (r *redoLog) wblRange() (first, last int, err error) {
	first, last = -1, -1
	ents, err := os.ReadDir(r.wblDir)
	if errors.Is(err, os.ErrNotExist) {
		return first, last, nil
	}
	if err != nil {
		return first, last, err
	}
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if first < 0 || n < first {
			first = n
		}
		last = max(last, n)
	}
	return first, last, nil
}

// append logs the cells marked late (committed to the TSDB) and writes them to the file
// before it returns (no fsync: the same promise as the TSDB's own log).
func (r *redoLog) append(cells []tsstore.Cell, late []bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.buf[:0]
	p = append(p, 0, 0, 0, 0, 0, 0, 0, 0) // length and CRC, set below
	n := 0
	for i := range cells {
		if late[i] {
			p = wire.AppendCell(p, &cells[i])
			n++
		}
	}
	r.buf = p
	if n == 0 {
		return nil
	}
	binary.LittleEndian.PutUint32(p[0:], uint32(len(p)-8))
	binary.LittleEndian.PutUint32(p[4:], crc32.Checksum(p[8:], crcTable))
	if err := r.rotate(); err != nil {
		return err
	}
	if _, err := r.w.Write(p); err != nil {
		return err
	}
	r.size += int64(len(p))
	return r.w.Flush()
}

// rotate opens a segment if none is open, and closes the open one (then
// deletes the segments the TSDB no longer needs) when a compaction has
// started since it was opened or it is full.
func (r *redoLog) rotate() error {
	_, last, err := r.wblRange()
	if err != nil {
		return err
	}
	if r.f != nil && (last != r.wblOpen || r.size >= redoMaxBytes) {
		if err := r.closeSegment(); err != nil {
			return err
		}
		if err := r.truncate(); err != nil {
			return err
		}
	}
	if r.f == nil {
		f, err := os.OpenFile(filepath.Join(r.dir, fmt.Sprintf("%08d.log", r.seq)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o666)
		if err != nil {
			return err
		}
		r.f, r.w, r.size, r.wblOpen = f, bufio.NewWriterSize(f, 64<<10), 0, last
	}
	return nil
}

// closeSegment closes the open segment and names it after the newest WBL
// segment when it was opened.
func (r *redoLog) closeSegment() error {
	if err := r.f.Close(); err != nil {
		return err
	}
	old := r.f.Name()
	r.f, r.w = nil, nil
	r.seq++
	return markClosed(old, r.wblOpen)
}

// markClosed renames the open segment at path to its closed name, after
// the WBL segment wbl.
func markClosed(path string, wbl int) error {
	return os.Rename(path, strings.TrimSuffix(path, ".log")+fmt.Sprintf("-%08d.log", max(wbl, 0)))
}

// truncate deletes the closed segments whose cells are all in blocks.
func (r *redoLog) truncate() error {
	first, _, err := r.wblRange()
	if err != nil {
		return err
	}
	segs, err := r.segments()
	if err != nil {
		return err
	}
	for _, s := range segs {
		if s.wbl < 0 || first <= s.wbl {
			break // in order: the later ones are needed too
		}
		if err := os.Remove(s.path); err != nil {
			return err
		}
	}
	return nil
}

// close closes the open segment, if any.
func (r *redoLog) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	return r.closeSegment()
}

// replay rewrites the cells of every segment through write (which must
// not log them again), in order. A torn record at the end of a segment
// (the crash hit an append) ends that segment.
func (r *redoLog) replay(write func([]tsstore.Cell) error) error {
	segs, err := r.segments()
	if err != nil {
		return err
	}
	for _, s := range segs {
		if err := replaySegment(s.path, write); err != nil {
			return fmt.Errorf("redo segment %s: %w", filepath.Base(s.path), err)
		}
	}
	return nil
}

func replaySegment(path string, write func([]tsstore.Cell) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var head [8]byte
	for {
		if _, err := io.ReadFull(br, head[:]); err != nil {
			return nil // the end, or a torn header
		}
		n := binary.LittleEndian.Uint32(head[0:])
		p := make([]byte, n)
		if _, err := io.ReadFull(br, p); err != nil {
			return nil // torn payload
		}
		if crc32.Checksum(p, crcTable) != binary.LittleEndian.Uint32(head[4:]) {
			return nil // torn
		}
		cells, err := decodeCells(p)
		if err != nil {
			return err
		}
		if err := write(cells); err != nil {
			return err
		}
	}
}

// decodeCells decodes a record's payload: cells written by wire.AppendCell.
func decodeCells(p []byte) ([]tsstore.Cell, error) {
	r := &wire.Reader{B: p, Intern: map[string]string{}}
	var cells []tsstore.Cell
	for len(r.B) > 0 && r.Err == nil {
		cells = append(cells, r.Cell())
	}
	return cells, r.Err
}

// replayRedo is called by Open: it rewrites the logged cells (without
// logging them again), so that cells the TSDB lost in a crash are back,
// then closes the segments a crash left open (what they hold is in the
// TSDB's logs now, as rewrites or as it was) and deletes those no longer
// needed.
func (s *Store) replayRedo() error {
	err := s.redo.replay(func(cells []tsstore.Cell) error {
		return s.write(context.Background(), cells, false)
	})
	if err != nil {
		return err
	}
	return s.redo.recover()
}

// recover names the segments left open by a crash as closed now.
func (r *redoLog) recover() error {
	_, last, err := r.wblRange()
	if err != nil {
		return err
	}
	segs, err := r.segments()
	if err != nil {
		return err
	}
	for _, s := range segs {
		if s.wbl < 0 {
			if err := markClosed(s.path, last); err != nil {
				return err
			}
		}
	}
	return r.truncate()
}
