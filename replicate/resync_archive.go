package replicate

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/hourglass-io/hourglass/reprocess"
	"github.com/hourglass-io/hourglass/tsstore"
)

// resyncFromArchive rebuilds the cells of st from Options.Archive and writes
// them to the replica: the archive's segments overlapping st's time range
// are grouped by flush generation (source and generation number), and the
// points of each group are processed again by reprocess.Rebuild into cells
// with the Seq of that generation (its number modulo the cell width in ms,
// as the write-back engine gives them), which are the cells its flush
// wrote. It returns an error wrapping errNoSource, to be retried later,
// while the archive may not hold every missed write yet: before
// ArchiveDelay has passed since the newest of them, or while a Seq of the
// missed cells has no archived generation of the range.
func (l *link) resyncFromArchive(ctx context.Context, st *staleRange, gen uint64) (int64, error) {
	o := &l.s.opts
	if o.ArchiveDelay > 0 {
		if wait := time.Until(time.Unix(0, st.Last).Add(o.ArchiveDelay)); wait > 0 {
			return 0, l.archiveWait(gen, fmt.Errorf("%w: the archive may not hold the newest missed write for %v more", errNoSource, wait.Round(time.Second)))
		}
	}
	infos, err := o.Archive.Segments(ctx, st.From, st.To)
	if err != nil {
		return 0, fmt.Errorf("list segments: %w", err)
	}
	wms := uint64(l.s.width.Milliseconds())
	type genKey struct {
		source string
		gen    uint64
	}
	var keys []genKey
	names := make(map[genKey][]string)
	seqs := make(map[uint32]bool)
	for _, in := range infos { // sorted by name: a generation's shards in order
		k := genKey{in.ID.Source, in.ID.Generation}
		if _, ok := names[k]; !ok {
			keys = append(keys, k)
		}
		names[k] = append(names[k], in.Name)
		seqs[uint32(in.ID.Generation%wms)] = true
	}
	for _, q := range st.Seqs {
		if !seqs[q] {
			return 0, l.archiveWait(gen, fmt.Errorf("%w: the archive holds no segment of [%d, %d) of a flush generation whose cells have Seq %d (not archived yet, or the missed writes did not come from a write-back engine archiving to it)",
				errNoSource, st.From, st.To, q))
		}
	}
	sink := &resyncSink{Store: l.store, l: l, epoch: l.s.epoch.Load(), metrics: st.Metrics}
	dir := filepath.Join(o.Dir, "resync", l.name)
	for _, k := range keys {
		if _, err := reprocess.Rebuild(ctx, o.Archive, names[k], st.From, st.To, nil, o.Processor, uint32(k.gen%wms), sink, dir); err != nil {
			return sink.written, fmt.Errorf("generation %d of %s: %w", k.gen, k.source, err)
		}
	}
	return sink.written, nil
}

// archiveWait logs, once per stale range, why a re-sync from the archive
// waits, and returns err.
func (l *link) archiveWait(gen uint64, err error) error {
	if l.archiveWaitGen != gen+1 {
		l.archiveWaitGen = gen + 1
		l.s.log.Warn("replicate: re-sync from the archive waits", "replica", l.name, "why", err)
	}
	return err
}

// resyncSink is the store a rebuild from the archive writes to: the cells
// of the stale range's metrics go to the replica (as hints are applied:
// at the Store's epoch, refused cells skipped and counted); the replica
// serves the rest (its cell width).
type resyncSink struct {
	tsstore.Store
	l       *link
	epoch   uint64
	metrics []string
	buf     []tsstore.Cell
	written int64
}

func (s *resyncSink) Write(ctx context.Context, cells []tsstore.Cell) error {
	s.buf = s.buf[:0]
	for _, c := range cells {
		if slices.Contains(s.metrics, c.Metric) {
			s.buf = append(s.buf, c)
		}
	}
	if len(s.buf) == 0 {
		return nil
	}
	if err := s.l.apply(ctx, s.epoch, s.buf); err != nil {
		return err
	}
	s.written += int64(len(s.buf))
	return nil
}
