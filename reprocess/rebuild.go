package reprocess

import (
	"context"
	"math"
	"os"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/localcache"
)

// RebuildStats reports what Rebuild did.
type RebuildStats struct {
	Points  int64    // raw points read and processed
	Cells   int64    // cells written
	Metrics []string // the metrics of the cells made, sorted
}

// Rebuild makes cells from archived raw points and writes them to st: the
// points of the archive segments names (read in that order) with a
// timestamp in [from, to) whose labels satisfy ms go through a writeback
// engine with processor p (the cache's aggregation), over a fresh cache in
// cacheDir (removed at the end), and are flushed as one generation whose
// cells all get the identity (writer, seq): Writer writer and Seq seq,
// whatever the engine would give them. Every point p derives must lie in
// its raw point's cell (checked, tsstore.ErrInvalid otherwise).
//
// Fed the segments of one flush generation of a live engine, with the
// Writer and Seq its flush gave its cells, the cells are those the live
// flush wrote (their sums are added in the segments' order, which is the
// live order whenever it does not matter, e.g. for integer values).
// Versions.CatchUp uses it for its passes; package replicate to re-sync a
// replica from the archive.
func Rebuild(ctx context.Context, a archive.Archive, names []string, from, to int64, ms []tsstore.Matcher,
	p tsstore.Processor, writer string, seq uint32, st tsstore.Store, cacheDir string) (res RebuildStats, err error) {
	if err := tsstore.ValidateWriter(writer); err != nil {
		return res, err
	}
	if err := os.RemoveAll(cacheDir); err != nil {
		return res, tsstore.Errorf(tsstore.ErrUnavailable, "discard cache: %w", err)
	}
	cache, err := localcache.Open(cacheDir, &localcache.Options{Fsync: localcache.FsyncNever})
	if err != nil {
		return res, err
	}
	defer func() {
		if cerr := cache.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err == nil {
			err = os.RemoveAll(cacheDir)
		}
	}()
	ss := &seqStore{Store: st, writer: writer, seq: seq}
	proc := newCheckedProcessor(p, st.CellWidth(), nil)
	const century = 100 * 365 * 24 * time.Hour
	eng, err := writeback.New(cache, ss, &writeback.Options{
		Processor: proc, Source: "reprocess", FlushInterval: -1, FlushBudget: century,
		MaxCacheBytes: math.MaxInt64, FlushAtBytes: math.MaxInt64, MaxLate: 2 * century, MaxFuture: 2 * century,
	})
	if err != nil {
		return res, err
	}
	defer func() {
		if err != nil {
			ss.refuse.Store(true)
			_ = eng.Close()
			return
		}
		err = eng.Close()
	}()
	var batch []tsstore.Point
	for _, name := range names {
		err := a.Read(ctx, name, func(pt tsstore.Point) error {
			if pt.Timestamp < from || pt.Timestamp >= to || !tsstore.MatchLabels(ms, pt.Labels) {
				return nil
			}
			batch = append(batch, pt)
			if len(batch) >= DefaultBatchPoints {
				res.Points += int64(len(batch))
				err := eng.Write(ctx, batch)
				batch = batch[:0]
				return err
			}
			return nil
		})
		if err != nil {
			return res, err
		}
	}
	if err := eng.Write(ctx, batch); err != nil {
		return res, err
	}
	res.Points += int64(len(batch))
	for {
		rep, err := eng.Flush(ctx)
		if err != nil {
			return res, err
		}
		if !rep.Overrun {
			break
		}
	}
	res.Cells = ss.written.Load()
	res.Metrics = proc.metricNames()
	return res, nil
}
