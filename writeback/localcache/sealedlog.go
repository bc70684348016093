package localcache

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/hourglass-io/hourglass/internal/wire"
	"github.com/hourglass-io/hourglass/tsstore"
)

// SealedLog reads the raw points of a sealed generation back from its log
// file, in chunks of at most max points.
func (c *Cache) SealedLog(ctx context.Context, gen uint64, max int, fn func([]tsstore.Point) error) error {
	return c.sealedLog(ctx, gen, max, false, fn)
}

// SealedLogOwned is SealedLog with a new slice for every call of fn, which
// fn may keep (writeback.SealedLogOwner).
func (c *Cache) SealedLogOwned(ctx context.Context, gen uint64, max int, fn func([]tsstore.Point) error) error {
	return c.sealedLog(ctx, gen, max, true, fn)
}

func (c *Cache) sealedLog(ctx context.Context, gen uint64, max int, fresh bool, fn func([]tsstore.Point) error) error {
	g, err := c.sealedLogGen(gen, max)
	if err != nil {
		return err
	}
	left := g.points.Load() // to size the chunks
	var chunk []tsstore.Point
	d := newDecoder()
	err = c.readLog(ctx, g, func(payload []byte) error {
		if err := d.record(payload, false); err != nil {
			return err
		}
		s := &d.raw
		for i := 0; i < s.len(); {
			if chunk == nil {
				chunk = make([]tsstore.Point, 0, chunkCap(max, left))
			}
			k := min(s.len()-i, max-len(chunk))
			for j := i; j < i+k; j++ {
				sl := &d.series[s.series[s.ids[j]]]
				chunk = append(chunk, tsstore.Point{Metric: sl.Metric, Labels: sl.Labels, Timestamp: s.times[j], Value: s.values[j]})
			}
			i += k
			if len(chunk) == max {
				left -= int64(max)
				if err := fn(chunk); err != nil {
					return err
				}
				if fresh {
					chunk = nil
				} else {
					chunk = chunk[:0]
				}
			}
		}
		return nil
	})
	if err != nil || len(chunk) == 0 {
		return err
	}
	return fn(chunk)
}

// SealedColumns reads the raw points of a sealed generation back from its
// log file, in log order, as columns of at most max points each (only the
// last may hold fewer), each fn's: fn may keep it, or hand it back with
// RecycleColumns once nothing refers to it. A chunk lists each
// series once (but for a version 1 record's metric names of over 64
// bytes, and past a million series in one log, when the reader's tables
// start over); chunks share the series' strings and label slices, which
// must not be modified. It fails as SealedLog does: on a torn or corrupt
// record, with the same error, and once ctx is done.
func (c *Cache) SealedColumns(ctx context.Context, gen uint64, max int, fn func(*tsstore.Columns) error) error {
	g, err := c.sealedLogGen(gen, max)
	if err != nil {
		return err
	}
	ch := chunker{d: newDecoder(), max: max, left: g.points.Load(), fn: fn}
	if err := c.readLog(ctx, g, ch.record); err != nil {
		return err
	}
	if ch.cols != nil {
		return fn(ch.cols)
	}
	return nil
}

// chunker cuts the raw points of a log's records into columns, decoding
// a version 2 record's points straight into them.
type chunker struct {
	d    *decoder
	max  int
	left int64 // the points not yet given to fn, to size the chunks
	fn   func(*tsstore.Columns) error
	cols *tsstore.Columns // the chunk being filled; nil between chunks
	seq  int32            // the chunk's number, from 1
	// The series of the last full chunk, to size the next one's.
	series int
	// The chunks the record being read filled: fn gets them once the
	// whole record is read, so that it sees no point of a record that
	// turns out corrupt.
	full []*tsstore.Columns

	// Per series of the decoder: the number of the chunk that holds it
	// and its index there.
	epoch   int
	inChunk []chunkIndex
	// The same per series of the record.
	local []chunkIndex
}

// chunkIndex is where a series is in a chunk: the chunk's number and the
// series' index in its Series.
type chunkIndex struct{ chunk, at int32 }

// record reads the raw points of a record's payload into chunks.
func (ch *chunker) record(payload []byte) error {
	d := ch.d
	if err := d.rawRecord(payload); err != nil {
		return err
	}
	if ch.epoch != d.epoch {
		// The decoder's ids name other series now.
		ch.epoch = d.epoch
		clear(ch.inChunk)
	}
	if n := len(d.series); len(ch.inChunk) < n {
		ch.inChunk = append(ch.inChunk, make([]chunkIndex, n-len(ch.inChunk))...)
	}
	s := &d.raw
	ch.local = slices.Grow(ch.local[:0], len(s.series))[:len(s.series)]
	clear(ch.local)
	n := s.len() + d.pts.left // one of them is 0
	for i := 0; i < n; {
		if ch.cols == nil {
			ch.cols = newChunk(chunkCap(ch.max, ch.left), ch.series)
			ch.seq++
		}
		cols := ch.cols
		at := cols.Len()
		k := min(n-i, ch.max-at)
		cols.IDs = slices.Grow(cols.IDs, k)[:at+k]
		cols.Times = slices.Grow(cols.Times, k)[:at+k]
		cols.Values = slices.Grow(cols.Values, k)[:at+k]
		ids := cols.IDs[at:]
		if s.len() > 0 { // a version 1 record, decoded already
			copy(ids, s.ids[i:])
			copy(cols.Times[at:], s.times[i:])
			copy(cols.Values[at:], s.values[i:])
		} else if !d.pts.read(ids, cols.Times[at:], cols.Values[at:]) {
			return decodeErr(wire.ErrCorrupt)
		}
		// The ids are the record's: make them the chunk's.
		local := ch.local
		for j, li := range ids {
			l := &local[li]
			if l.chunk != ch.seq {
				*l = chunkIndex{chunk: ch.seq, at: ch.add(d, s.series[li])}
			}
			ids[j] = l.at
		}
		i += k
		if at+k == ch.max {
			ch.left -= int64(ch.max)
			ch.series = len(cols.Series)
			ch.full = append(ch.full, cols)
			ch.cols = nil
		}
	}
	full := ch.full
	ch.full = ch.full[:0]
	for j, cols := range full {
		full[j] = nil // fn's now
		if err := ch.fn(cols); err != nil {
			return err
		}
	}
	return nil
}

// recycled holds chunks handed back by RecycleColumns, for newChunk.
var recycled sync.Pool

// newChunk returns an empty chunk with room for n points and, a guess
// (as many as the last chunk had), series: a recycled one when it is
// large enough.
func newChunk(n, series int) *tsstore.Columns {
	if c, _ := recycled.Get().(*tsstore.Columns); c != nil && cap(c.IDs) >= n && cap(c.Times) >= n && cap(c.Values) >= n {
		return c
	}
	return &tsstore.Columns{
		Series: make([]tsstore.SeriesLabels, 0, min(n, series)),
		IDs:    make([]int32, 0, n), Times: make([]int64, 0, n), Values: make([]float64, 0, n),
	}
}

// RecycleColumns implements writeback.ColumnsRecycler: c, a chunk of
// SealedColumns that nothing refers to any more, is reused by a later
// chunk (of any generation) instead of new memory.
func (c *Cache) RecycleColumns(cols *tsstore.Columns) {
	if cols == nil {
		return
	}
	// Cleared, the series keep no label set alive while pooled.
	clear(cols.Series[:cap(cols.Series)])
	*cols = tsstore.Columns{Series: cols.Series[:0], IDs: cols.IDs[:0], Times: cols.Times[:0], Values: cols.Values[:0]}
	recycled.Put(cols)
}

// add returns the index in the chunk of the decoder's series id, adding
// it to the chunk's series if it is not there yet.
func (ch *chunker) add(d *decoder, id int32) int32 {
	in := &ch.inChunk[id]
	if in.chunk != ch.seq {
		*in = chunkIndex{chunk: ch.seq, at: int32(len(ch.cols.Series))}
		ch.cols.Series = append(ch.cols.Series, d.series[id])
	}
	return in.at
}

// chunkCap returns the capacity of a chunk of at most max points when
// left points remain to be read.
func chunkCap(max int, left int64) int {
	switch {
	case left <= 0: // more points than counted: grow as needed
		return min(max, 1<<12)
	case left >= int64(max):
		return max
	}
	return int(left)
}

// sealedLogGen returns the sealed generation gen, to be read in chunks of
// at most max points.
func (c *Cache) sealedLogGen(gen uint64, max int) (*generation, error) {
	if max <= 0 {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "localcache: sealed log chunk size %d is not positive", max)
	}
	return c.sealedGen(gen)
}

// readLog calls fn with the payload of each record of g's log file, valid
// until fn returns; it stops at the first error of a record, of fn or of ctx.
func (c *Cache) readLog(ctx context.Context, g *generation, fn func(payload []byte) error) error {
	err := readRecords(g.path, func(payload []byte, _ int64) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fn(payload)
	})
	if err != nil {
		return fmt.Errorf("localcache: read sealed log %s: %w", g.path, err)
	}
	return nil
}
