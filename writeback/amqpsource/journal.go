package amqpsource

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hourglass-io/hourglass/tsstore"
)

// journal is the durable record of the message ids a consumer has applied
// to the engine: an append-only text file of records, one a line,
//
//	P <slot> <seq> <ms> <quoted id>   a write of id is about to start (fsynced first)
//	A <quoted id>                     the engine acknowledged it
//	X <quoted id>                     it did not land (rejected, or found absent)
//	S <slot> <seq>                    the last seq of a slot (rotation header)
//
// in segments journal-<n>.log. When the current segment holds maxIDs
// P records a new one starts (with the slots' seqs and the pending writes
// copied into it) and the one before the previous is deleted, so between
// maxIDs and 2*maxIDs recent ids are remembered. Every write of a slot
// carries a marker point whose value is its seq (see Options.Marker); a P
// without A or X after a crash is resolved by asking the engine for the
// marker. Safe for concurrent use.
type journal struct {
	dir    string
	maxIDs int

	mu       sync.Mutex // guards ids, slots, cur, prev, curCount and writes to the files
	ids      map[string]*entry
	slots    map[int]uint64
	cur      *segment
	prev     *segment
	curCount int

	syncMu sync.Mutex // serialises fsyncs (group commit)
}

type segment struct {
	num    uint64
	path   string
	f      *os.File
	size   int64 // guarded by journal.mu
	synced atomic.Int64
}

// entry is what the journal knows about one id.
type entry struct {
	applied bool // A seen; otherwise a P without A or X (pending)
	slot    int
	seq     uint64
	ms      int64
	seg     uint64 // the segment of the latest record of the id
	// done is closed when the write in flight in this process ends; nil
	// for an applied id or one pending from an earlier process (dangling).
	done chan struct{}
}

// pending describes a dangling id for resolution.
type pending struct {
	id   string
	slot int
	seq  uint64
	ms   int64
}

func segName(num uint64) string { return fmt.Sprintf("journal-%016d.log", num) }

// openJournal loads the segments in dir (creating it) and opens the last
// one for appending, cutting off a torn last record.
func openJournal(dir string, maxIDs int) (*journal, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, tsstore.Errorf(tsstore.ErrUnavailable, "amqpsource: journal dir: %w", err)
	}
	names, err := filepath.Glob(filepath.Join(dir, "journal-*.log"))
	if err != nil {
		return nil, err
	}
	var nums []uint64
	for _, n := range names {
		s := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(n), "journal-"), ".log")
		if v, err := strconv.ParseUint(s, 10, 64); err == nil {
			nums = append(nums, v)
		}
	}
	slices.Sort(nums)
	j := &journal{dir: dir, maxIDs: maxIDs, ids: map[string]*entry{}, slots: map[int]uint64{}}
	for i, num := range nums {
		path := filepath.Join(dir, segName(num))
		good, count, err := j.load(path, num)
		if err != nil {
			return nil, err
		}
		if i == len(nums)-1 {
			f, err := os.OpenFile(path, os.O_RDWR, 0o644)
			if err != nil {
				return nil, tsstore.Errorf(tsstore.ErrUnavailable, "amqpsource: journal: %w", err)
			}
			if err := f.Truncate(good); err != nil {
				f.Close()
				return nil, tsstore.Errorf(tsstore.ErrUnavailable, "amqpsource: journal: cut torn record: %w", err)
			}
			j.cur = &segment{num: num, path: path, f: f, size: good}
			j.cur.synced.Store(good)
			j.curCount = count
		} else if i == len(nums)-2 {
			j.prev = &segment{num: num, path: path}
		}
	}
	if j.cur == nil {
		if err := j.newSegment(1); err != nil {
			return nil, err
		}
	}
	return j, nil
}

// load replays one segment file; it returns the length of its good prefix
// and the number of P records in it.
func (j *journal) load(path string, num uint64) (good int64, count int, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, tsstore.Errorf(tsstore.ErrUnavailable, "amqpsource: journal: %w", err)
	}
	for len(data) > int(good) {
		rest := data[good:]
		nl := bytes.IndexByte(rest, '\n')
		if nl < 0 || !j.apply(string(rest[:nl]), num) {
			break // torn or garbled: the end of what was written
		}
		good += int64(nl + 1)
		if rest[0] == 'P' {
			count++
		}
	}
	return good, count, nil
}

// apply replays one record; false means it does not parse.
func (j *journal) apply(line string, seg uint64) bool {
	kind, rest, ok := strings.Cut(line, " ")
	if !ok {
		return false
	}
	field := func() (uint64, bool) {
		var f string
		f, rest, ok = strings.Cut(rest, " ")
		v, err := strconv.ParseUint(f, 10, 64)
		return v, err == nil
	}
	switch kind {
	case "P":
		slot, ok1 := field()
		seq, ok2 := field()
		ms, ok3 := field()
		id, err := strconv.Unquote(rest)
		if !ok1 || !ok2 || !ok3 || err != nil {
			return false
		}
		j.ids[id] = &entry{slot: int(slot), seq: seq, ms: int64(ms), seg: seg}
		j.slots[int(slot)] = max(j.slots[int(slot)], seq)
	case "A", "X":
		id, err := strconv.Unquote(rest)
		if err != nil {
			return false
		}
		if kind == "X" {
			delete(j.ids, id)
		} else if e := j.ids[id]; e != nil {
			e.applied, e.seg = true, seg
		} else {
			j.ids[id] = &entry{applied: true, seg: seg}
		}
	case "S":
		slot, ok1 := field()
		seq, err := strconv.ParseUint(rest, 10, 64)
		if !ok1 || err != nil {
			return false
		}
		j.slots[int(slot)] = max(j.slots[int(slot)], seq)
	default:
		return false
	}
	return true
}

// newSegment starts segment num as the current one. j.mu is held (or j
// is not shared yet).
func (j *journal) newSegment(num uint64) error {
	path := filepath.Join(j.dir, segName(num))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return tsstore.Errorf(tsstore.ErrUnavailable, "amqpsource: journal: %w", err)
	}
	if err := syncDir(j.dir); err != nil {
		f.Close()
		return err
	}
	j.cur = &segment{num: num, path: path, f: f}
	j.curCount = 0
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return tsstore.Errorf(tsstore.ErrUnavailable, "amqpsource: journal: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return tsstore.Errorf(tsstore.ErrUnavailable, "amqpsource: journal: sync dir: %w", err)
	}
	return nil
}

// write appends records to the current segment. j.mu is held.
func (j *journal) write(recs ...string) error {
	var b strings.Builder
	for _, r := range recs {
		b.WriteString(r)
		b.WriteByte('\n')
	}
	n, err := j.cur.f.WriteAt([]byte(b.String()), j.cur.size)
	if err != nil {
		// Nothing after size counts: the next record overwrites it.
		return tsstore.Errorf(tsstore.ErrUnavailable, "amqpsource: journal write: %w", err)
	}
	j.cur.size += int64(n)
	return nil
}

// rotate starts a new segment when the current one is full: the slots'
// seqs and the pending entries are copied into it, the current segment is
// synced and becomes the previous one, and older ones are deleted (their
// applied ids forgotten). j.mu is held.
func (j *journal) rotate() error {
	if j.curCount < j.maxIDs {
		return nil
	}
	old := j.cur
	if err := old.f.Sync(); err != nil {
		return tsstore.Errorf(tsstore.ErrUnavailable, "amqpsource: journal sync: %w", err)
	}
	old.synced.Store(old.size)
	if err := j.newSegment(old.num + 1); err != nil {
		j.cur = old
		return err
	}
	var recs []string
	for slot, seq := range j.slots {
		recs = append(recs, fmt.Sprintf("S %d %d", slot, seq))
	}
	for id, e := range j.ids {
		if !e.applied {
			recs = append(recs, fmt.Sprintf("P %d %d %d %s", e.slot, e.seq, e.ms, strconv.Quote(id)))
			e.seg = j.cur.num
		}
	}
	if err := j.write(recs...); err != nil {
		return err
	}
	j.curCount = 0
	dropped := j.prev
	j.prev = old
	if dropped != nil {
		if dropped.f != nil {
			dropped.f.Close()
		}
		for id, e := range j.ids {
			if e.seg <= dropped.num {
				delete(j.ids, id)
			}
		}
		names, _ := filepath.Glob(filepath.Join(j.dir, "journal-*.log"))
		for _, n := range names {
			if filepath.Base(n) < segName(old.num) {
				_ = os.Remove(n)
			}
		}
	}
	return nil
}

// beginResult says what to do with a delivery of an id.
type beginResult int

const (
	beginNew      beginResult = iota // P is durable: write now with the given seq
	beginDup                         // already applied: ack without writing
	beginWait                        // a write of it is in flight here: wait for it, then ask again
	beginDangling                    // pending from an earlier process: resolve first
)

// begin looks up id and, when it is new, records that the write of id
// with the next seq of slot is about to start, durably (fsync, shared
// with concurrent callers). The caller then writes and calls applied or
// aborted.
func (j *journal) begin(id string, slot int, ms int64) (res beginResult, seq uint64, wait <-chan struct{}, err error) {
	j.mu.Lock()
	if e := j.ids[id]; e != nil {
		defer j.mu.Unlock()
		switch {
		case e.applied:
			return beginDup, 0, nil, nil
		case e.done != nil:
			return beginWait, 0, e.done, nil
		default:
			return beginDangling, 0, nil, nil
		}
	}
	if err := j.rotate(); err != nil {
		j.mu.Unlock()
		return 0, 0, nil, err
	}
	seq = j.slots[slot] + 1
	if err := j.write(fmt.Sprintf("P %d %d %d %s", slot, seq, ms, strconv.Quote(id))); err != nil {
		j.mu.Unlock()
		return 0, 0, nil, err
	}
	j.slots[slot] = seq
	j.curCount++
	e := &entry{slot: slot, seq: seq, ms: ms, seg: j.cur.num, done: make(chan struct{})}
	j.ids[id] = e
	seg, end := j.cur, j.cur.size
	j.mu.Unlock()
	if err := j.syncTo(seg, end); err != nil {
		// The write has not started: the id is not applied.
		_ = j.aborted(id)
		return 0, 0, nil, err
	}
	return beginNew, seq, nil, nil
}

// syncTo returns once seg is on stable storage up to end.
func (j *journal) syncTo(seg *segment, end int64) error {
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	if seg.synced.Load() >= end {
		return nil
	}
	j.mu.Lock()
	target := seg.size
	j.mu.Unlock()
	if err := seg.f.Sync(); err != nil {
		return tsstore.Errorf(tsstore.ErrUnavailable, "amqpsource: journal sync: %w", err)
	}
	seg.synced.Store(target)
	return nil
}

// applied records that the engine acknowledged the write of id. The
// record is handed to the OS, not fsynced: if a machine crash loses it,
// the id is dangling on restart and resolved through the marker.
func (j *journal) applied(id string) error {
	return j.finish(id, true)
}

// aborted records that the write of id did not land.
func (j *journal) aborted(id string) error {
	return j.finish(id, false)
}

func (j *journal) finish(id string, applied bool) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	rec := "X "
	if applied {
		rec = "A "
	}
	err := j.write(rec + strconv.Quote(id))
	e := j.ids[id]
	if e == nil {
		if applied {
			j.ids[id] = &entry{applied: true, seg: j.cur.num}
		}
		return err
	}
	if e.done != nil {
		close(e.done)
		e.done = nil
	}
	if applied {
		e.applied, e.seg = true, j.cur.num
	} else {
		delete(j.ids, id)
	}
	return err
}

// release ends the in-flight state of id without deciding it: the id is
// dangling, to be settled through its marker at its next delivery.
func (j *journal) release(id string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if e := j.ids[id]; e != nil && e.done != nil {
		close(e.done)
		e.done = nil
	}
}

// dangling lists the ids pending from an earlier process.
func (j *journal) dangling() []pending {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []pending
	for id, e := range j.ids {
		if !e.applied && e.done == nil {
			out = append(out, pending{id: id, slot: e.slot, seq: e.seq, ms: e.ms})
		}
	}
	slices.SortFunc(out, func(a, b pending) int { return strings.Compare(a.id, b.id) })
	return out
}

// lookup returns the pending state of id when it is dangling.
func (j *journal) lookup(id string) (pending, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	e := j.ids[id]
	if e == nil || e.applied || e.done != nil {
		return pending{}, false
	}
	return pending{id: id, slot: e.slot, seq: e.seq, ms: e.ms}, true
}

// size returns the number of remembered ids.
func (j *journal) size() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.ids)
}

// close syncs and closes the current segment.
func (j *journal) close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	err := j.cur.f.Sync()
	if cerr := j.cur.f.Close(); err == nil {
		err = cerr
	}
	if j.prev != nil && j.prev.f != nil {
		j.prev.f.Close()
	}
	return err
}
