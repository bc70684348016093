package rediscache

import (
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"

	"github.com/hourglass-io/hourglass/tsstore"
)

// A memtable holds, per shard, the cells of the batches that one
// generation received in one fold period and that are not yet folded
// into the shard's cells hash in Redis. It is what lets a batch be one
// cheap command on the server while reads stay exact at once: Cells
// merges the folded cells it reads from Redis with the memtables' cells
// that the snapshot it read does not hold yet (see memShard.foldTo).
//
// The batches themselves are in Redis (the log and the pending hash)
// before they enter a memtable, so a memtable is only a copy: after a
// crash, Open folds the pending batches from the log.
type memtable struct {
	// inflight counts appends that chose this memtable and have not
	// inserted their cells yet; a fold waits for them.
	inflight sync.WaitGroup
	// points counts the processed points inserted.
	points atomic.Int64
	shards []memShard
}

// memShard is one shard's part of a memtable.
type memShard struct {
	// mu guards every field below.
	mu sync.Mutex
	// arena holds the cells' fields back to back (no allocation per
	// cell); cells refer to them by offset.
	arena []byte
	cells []memCell
	// index finds a cell by the hash of its field; spill by the field,
	// for a field whose hash another field has already.
	index map[uint64]int32
	spill map[string]int32
	// byValue lists the cells of each index label value.
	byValue map[string][]int32
	// ids are the batches inserted (their ids, as in the pending hash).
	ids []string
	// foldTo is the fold count of the shard once this part is folded; 0
	// before its fold started. A snapshot of the cells hash read at fold
	// count f holds this part iff f >= foldTo > 0. It is set before the
	// fold is sent, so that a reader who read the count after the fold ran
	// sees it.
	foldTo uint64
	// done is set when the fold succeeded.
	done bool
}

type memCell struct {
	off, end int32 // the field in arena
	agg      tsstore.Agg
}

// field returns cell i's field; valid while the shard's lock is held or
// the memtable is frozen (no more inserts but the fold's own).
func (ms *memShard) field(i int) []byte {
	c := &ms.cells[i]
	return ms.arena[c.off:c.end:c.end]
}

// newMemtable returns an empty memtable sized for about points processed
// points (the previous memtable's), so that its maps rarely grow while
// appends wait for its locks.
func newMemtable(shards int, points int64) *memtable {
	m := &memtable{shards: make([]memShard, shards)}
	hint := int(points) / shards
	for i := range m.shards {
		m.shards[i].index = make(map[uint64]int32, hint)
		m.shards[i].byValue = make(map[string][]int32, hint/8)
		m.shards[i].cells = make([]memCell, 0, hint)
		m.shards[i].arena = make([]byte, 0, 32*hint)
	}
	return m
}

// insert merges the prepared cells of one batch into shard s and returns
// the number of new cells.
func (m *memtable) insert(s int, id string, pc *preparedCells) int64 {
	ms := &m.shards[s]
	ms.mu.Lock()
	defer ms.mu.Unlock()
	n0 := len(ms.cells)
	for i := range pc.cells {
		p := &pc.cells[i]
		field := pc.buf[p.off:p.end]
		j, ok := ms.index[p.hash]
		if ok {
			if c := &ms.cells[j]; string(ms.arena[c.off:c.end]) == string(field) {
				c.agg.Add(p.v)
				continue
			}
			if j, ok := ms.spill[string(field)]; ok {
				ms.cells[j].agg.Add(p.v)
				continue
			}
		}
		j = int32(len(ms.cells))
		if ok {
			if ms.spill == nil {
				ms.spill = make(map[string]int32)
			}
			ms.spill[string(field)] = j
		} else {
			ms.index[p.hash] = j
		}
		off := int32(len(ms.arena))
		ms.arena = append(ms.arena, field...)
		ms.cells = append(ms.cells, memCell{off: off, end: int32(len(ms.arena)), agg: tsstore.AggOf(p.v)})
		ms.byValue[p.value] = append(ms.byValue[p.value], j)
	}
	ms.ids = append(ms.ids, id)
	return int64(len(ms.cells) - n0)
}

// preparedCells are a batch's processed points with their cell fields,
// built before the batch is sent so that the insert holds the lock
// briefly. They are not merged here: the insert's lookup in the memtable
// does that, and a repeated cell finds its entry warm in the CPU cache.
type preparedCells struct {
	buf   []byte
	cells []preparedCell
}

type preparedCell struct {
	value    string // index label value
	off, end int    // the field in buf
	hash     uint64 // of the field
	v        float64
}

// prepare computes the cell fields of ps for cells of width wms (ms).
func (pc *preparedCells) prepare(ps []tsstore.Point, wms int64, indexLabel string) {
	pc.cells = pc.cells[:0]
	pc.buf = pc.buf[:0]
	for i := range ps {
		p := &ps[i]
		start := p.Timestamp - mod(p.Timestamp, wms)
		value := p.Labels.Get(indexLabel)
		off := len(pc.buf)
		pc.buf = appendField(pc.buf, p.Metric, value, start, p.Labels, indexLabel)
		pc.cells = append(pc.cells, preparedCell{value: value, off: off, end: len(pc.buf), hash: xxhash.Sum64(pc.buf[off:]), v: p.Value})
	}
}

// pendingCell is a memtable cell as a read returns it.
type pendingCell struct {
	field string
	agg   tsstore.Agg
}

// collect appends to out the cells of shard s that hold metric and, when
// byValue, the index label value; the caller filters the rest.
func (ms *memShard) collect(out []pendingCell, metric, value string, byValue bool) []pendingCell {
	keep := func(f []byte) bool {
		return len(f) > len(metric) && f[len(metric)] == 0xff && string(f[:len(metric)]) == metric
	}
	if byValue {
		for _, j := range ms.byValue[value] {
			if f := ms.field(int(j)); keep(f) {
				out = append(out, pendingCell{string(f), ms.cells[j].agg})
			}
		}
		return out
	}
	for i := range ms.cells {
		if f := ms.field(i); keep(f) {
			out = append(out, pendingCell{string(f), ms.cells[i].agg})
		}
	}
	return out
}
