package rediscache

import (
	"strings"
	"sync"
	"sync/atomic"

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
	// byValue holds the cells by index label value.
	byValue map[string]*valueCells
	// ids are the batches inserted (their ids, as in the pending hash).
	ids []string
	// distinct counts the cells in byValue.
	distinct int64
	// foldTo is the fold count of the shard once this part is folded; 0
	// before its fold started. A snapshot of the cells hash read at fold
	// count f holds this part iff f >= foldTo > 0. It is set before the
	// fold script is sent, so that a reader who read the count after the
	// fold ran sees it.
	foldTo uint64
	// done is set when the fold succeeded.
	done bool
}

// valueCells are the cells of one index label value.
type valueCells struct {
	index map[string]int32 // field -> cells
	cells []memCell
}

type memCell struct {
	field string
	agg   tsstore.Agg
}

func newMemtable(shards int) *memtable {
	m := &memtable{shards: make([]memShard, shards)}
	for i := range m.shards {
		m.shards[i].byValue = make(map[string]*valueCells)
	}
	return m
}

// insert merges the prepared cells of one batch into shard s and returns
// the number of new cells.
func (m *memtable) insert(s int, id string, pc *preparedCells) int64 {
	ms := &m.shards[s]
	ms.mu.Lock()
	defer ms.mu.Unlock()
	var added int64
	var vc *valueCells
	last := ""
	for i := range pc.cells {
		p := &pc.cells[i]
		if vc == nil || p.value != last {
			last = p.value
			vc = ms.byValue[p.value]
			if vc == nil {
				vc = &valueCells{index: make(map[string]int32)}
				ms.byValue[p.value] = vc
			}
		}
		field := pc.buf[p.off:p.end]
		if j, ok := vc.index[string(field)]; ok {
			vc.cells[j].agg.Merge(p.agg)
			continue
		}
		f := string(field)
		vc.index[f] = int32(len(vc.cells))
		vc.cells = append(vc.cells, memCell{field: f, agg: p.agg})
		added++
	}
	ms.ids = append(ms.ids, id)
	ms.distinct += added
	return added
}

// preparedCells are a batch's processed points merged into cells, built
// before the batch is sent so that the insert holds the lock briefly.
type preparedCells struct {
	buf   []byte
	cells []preparedCell
	index map[string]int
}

type preparedCell struct {
	value    string // index label value
	off, end int    // the field in buf
	agg      tsstore.Agg
}

// prepare merges ps into cells of width wms (ms).
func (pc *preparedCells) prepare(ps []tsstore.Point, wms int64, indexLabel string) {
	if pc.index == nil {
		pc.index = make(map[string]int)
	}
	clear(pc.index)
	pc.cells = pc.cells[:0]
	pc.buf = pc.buf[:0]
	for i := range ps {
		p := &ps[i]
		start := p.Timestamp - mod(p.Timestamp, wms)
		value := p.Labels.Get(indexLabel)
		off := len(pc.buf)
		pc.buf = appendField(pc.buf, p.Metric, value, start, p.Labels, indexLabel)
		if j, ok := pc.index[string(pc.buf[off:])]; ok {
			pc.cells[j].agg.Add(p.Value)
			pc.buf = pc.buf[:off]
			continue
		}
		pc.index[string(pc.buf[off:])] = len(pc.cells)
		pc.cells = append(pc.cells, preparedCell{value: value, off: off, end: len(pc.buf), agg: tsstore.AggOf(p.Value)})
	}
}

// collect appends to out the cells of shard s that hold metric and, when
// byValue, the index label value; the caller filters the rest.
func (ms *memShard) collect(out []memCell, metric, value string, byValue bool) []memCell {
	add := func(vc *valueCells) {
		for i := range vc.cells {
			f := vc.cells[i].field
			if len(f) > len(metric) && f[len(metric)] == 0xff && strings.HasPrefix(f, metric) {
				out = append(out, vc.cells[i])
			}
		}
	}
	if byValue {
		if vc := ms.byValue[value]; vc != nil {
			add(vc)
		}
		return out
	}
	for _, vc := range ms.byValue {
		add(vc)
	}
	return out
}
