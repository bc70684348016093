package writeback_test

import (
	"bytes"
	"context"
	"encoding/gob"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
)

// faultStore wraps a store and fails on demand.
type faultStore struct {
	tsstore.Store
	// failWrites makes Write fail with ErrUnavailable; halfWrites makes it
	// write the first half of the batch first (a crash mid-write).
	failWrites, halfWrites atomic.Bool
	// beforeWrite and beforeCells, when set, run at the start of every
	// Write and Cells.
	beforeWrite, beforeCells func()
	writes                   atomic.Int64
	// refuse, when set and returning true for a cell, makes every Write
	// that holds the cell fail with ErrConflict (as a store that holds
	// another partial under the cell's identity): refused for good.
	refuse atomic.Pointer[func(*tsstore.Cell) bool]
	// fenced makes every Write fail as a replicated store fenced by a
	// newer epoch does: ErrConflict wrapping tsstore.ErrFenced.
	fenced atomic.Bool
	// failReads makes Cells and Query fail with ErrUnavailable.
	failReads atomic.Bool
}

func (s *faultStore) Cells(ctx context.Context, sel tsstore.Selector) ([]tsstore.Cell, error) {
	if s.beforeCells != nil {
		s.beforeCells()
	}
	if s.failReads.Load() {
		return nil, tsstore.Errorf(tsstore.ErrUnavailable, "faultStore: injected read failure")
	}
	return s.Store.Cells(ctx, sel)
}

func (s *faultStore) Query(ctx context.Context, q tsstore.Query) (*tsstore.Result, error) {
	if s.failReads.Load() {
		return nil, tsstore.Errorf(tsstore.ErrUnavailable, "faultStore: injected read failure")
	}
	return s.Store.Query(ctx, q)
}

func (s *faultStore) Write(ctx context.Context, cells []tsstore.Cell) error {
	if s.beforeWrite != nil {
		s.beforeWrite()
	}
	if s.failWrites.Load() {
		if s.halfWrites.Load() && len(cells) > 1 {
			if err := s.Store.Write(ctx, cells[:len(cells)/2]); err != nil {
				return err
			}
		}
		return tsstore.Errorf(tsstore.ErrUnavailable, "faultStore: injected failure")
	}
	if s.fenced.Load() {
		return tsstore.Errorf(tsstore.ErrConflict, "faultStore: write refused, a newer epoch fenced this writer: %w", tsstore.ErrFenced)
	}
	if f := s.refuse.Load(); f != nil {
		for i := range cells {
			if (*f)(&cells[i]) {
				return tsstore.Errorf(tsstore.ErrConflict, "faultStore: cell %s%s@%d writer %q seq %d is refused for good", cells[i].Metric, cells[i].Labels, cells[i].Start, cells[i].Writer, cells[i].Seq)
			}
		}
	}
	s.writes.Add(1)
	return s.Store.Write(ctx, cells)
}

// refuseWhere makes the store refuse the cells f selects for good; nil
// lifts it.
func (s *faultStore) refuseWhere(f func(*tsstore.Cell) bool) {
	if f == nil {
		s.refuse.Store(nil)
		return
	}
	s.refuse.Store(&f)
}

// memArchive is an in-memory archive with the archive contract's
// write-once semantics, and a switch to fail.
type memArchive struct {
	fail atomic.Bool
	// slow, when set, is how long every Append takes first.
	slow atomic.Int64
	// gate, when set, holds every Append until it is closed.
	gate atomic.Pointer[chan struct{}]
	// before, when set, runs at the start of every Append (concurrent
	// Appends run it concurrently).
	before atomic.Pointer[func()]
	// failFrom, when positive, fails every Append from that call on
	// (counting from 1).
	failFrom, calls atomic.Int64

	mu       sync.Mutex // guards segments and appends
	segments map[string]memSegment
	appends  map[string]int // Append calls that got past the delay, by segment name
}

type memSegment struct {
	info   archive.SegmentInfo
	points []tsstore.Point
	enc    []byte
}

var _ archive.Archive = (*memArchive)(nil)

func newMemArchive() *memArchive {
	return &memArchive{segments: map[string]memSegment{}, appends: map[string]int{}}
}

func (a *memArchive) Append(ctx context.Context, id archive.SegmentID, points []tsstore.Point) (archive.SegmentInfo, error) {
	if a.fail.Load() {
		return archive.SegmentInfo{}, tsstore.Errorf(tsstore.ErrUnavailable, "memArchive: injected failure")
	}
	if n := a.failFrom.Load(); n > 0 && a.calls.Add(1) >= n {
		return archive.SegmentInfo{}, tsstore.Errorf(tsstore.ErrUnavailable, "memArchive: injected failure from append %d", n)
	}
	if f := a.before.Load(); f != nil {
		(*f)()
	}
	if g := a.gate.Load(); g != nil {
		select {
		case <-*g:
		case <-ctx.Done():
			return archive.SegmentInfo{}, ctx.Err()
		}
	}
	if d := time.Duration(a.slow.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return archive.SegmentInfo{}, ctx.Err()
		}
	}
	if err := id.Validate(); err != nil {
		return archive.SegmentInfo{}, err
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(points); err != nil {
		return archive.SegmentInfo{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	name := id.Name()
	a.appends[name]++
	if old, ok := a.segments[name]; ok {
		if !bytes.Equal(old.enc, buf.Bytes()) {
			return archive.SegmentInfo{}, tsstore.Errorf(tsstore.ErrConflict, "memArchive: segment %s exists with other content", name)
		}
		return old.info, nil
	}
	info := archive.SegmentInfo{Name: name, ID: id, Points: int64(len(points)), Bytes: int64(buf.Len()), Created: time.Now()}
	a.segments[name] = memSegment{info: info, points: slices.Clone(points), enc: buf.Bytes()}
	return info, nil
}

func (a *memArchive) Segments(ctx context.Context, from, to int64) ([]archive.SegmentInfo, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []archive.SegmentInfo
	for _, s := range a.segments {
		if s.info.ID.MaxTime >= from && s.info.ID.MinTime < to {
			out = append(out, s.info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (a *memArchive) Read(ctx context.Context, name string, fn func(tsstore.Point) error) error {
	a.mu.Lock()
	s, ok := a.segments[name]
	a.mu.Unlock()
	if !ok {
		return fmt.Errorf("memArchive: no segment %s", name)
	}
	for _, p := range s.points {
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}

func (a *memArchive) Scan(ctx context.Context, r archive.ScanRequest, fn func(tsstore.Point) error) error {
	a.mu.Lock()
	var all []tsstore.Point
	for _, s := range a.segments {
		all = append(all, s.points...)
	}
	a.mu.Unlock()
	sort.SliceStable(all, func(i, j int) bool { return all[i].Timestamp < all[j].Timestamp })
	for _, p := range all {
		if p.Timestamp >= r.From && p.Timestamp < r.To && (r.Metric == "" || p.Metric == r.Metric) && tsstore.MatchLabels(r.Matchers, p.Labels) {
			if err := fn(p); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *memArchive) Stat(ctx context.Context) (archive.Stats, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var st archive.Stats
	for _, s := range a.segments {
		st.Segments++
		st.Points += s.info.Points
	}
	return st, nil
}

func (a *memArchive) Close() error { return nil }

// appendCounts returns, by segment name, how many Append calls got past
// the delay (including the no-op appends of a segment already there).
func (a *memArchive) appendCounts() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.appends)
}

// points returns every archived point.
func (a *memArchive) points() []tsstore.Point {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []tsstore.Point
	for _, s := range a.segments {
		out = append(out, s.points...)
	}
	return out
}

// clock is a settable clock for Options.Now.
type clock struct{ ms atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.ms.Store(t.UnixMilli())
	return c
}

func (c *clock) Now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *clock) Advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }
func (c *clock) Millis() int64           { return c.ms.Load() }
