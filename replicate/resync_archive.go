package replicate

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hourglass-io/hourglass/reprocess"
	"github.com/hourglass-io/hourglass/tsstore"
)

// resyncFromArchive rebuilds the cells of st from Options.Archive and writes
// them to the replica: the archive's segments overlapping st's time range
// are grouped by flush generation (source and generation number), and the
// points of the groups of the missed flushes are processed again by
// reprocess.Rebuild into cells with the identity (Writer, Seq) that flush
// gave them, which are the cells it wrote. A flush of the legacy writer ""
// is every generation whose number modulo the cell width in ms is its Seq
// (how the write-back engine numbered cells before writers); a flush of
// writer w is the generation flushGeneration names. It returns an error
// wrapping errNoSource, to be retried later, while the archive may not
// hold every missed write yet: before ArchiveDelay has passed since the
// newest of them, or while a missed flush has no archived generation of
// the range.
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
	var keys []genKey
	names := make(map[genKey][]string)
	for _, in := range infos { // sorted by name: a generation's shards in order
		k := genKey{in.ID.Source, in.ID.Generation}
		if _, ok := names[k]; !ok {
			keys = append(keys, k)
		}
		names[k] = append(names[k], in.Name)
	}
	type rebuild struct {
		k genKey
		f flushID
	}
	var todo []rebuild
	for _, q := range st.Seqs {
		found := false
		for _, k := range keys {
			if uint32(k.gen%wms) == q {
				todo = append(todo, rebuild{k, flushID{"", q}})
				found = true
			}
		}
		if !found {
			return 0, l.archiveWait(gen, fmt.Errorf("%w: the archive holds no segment of [%d, %d) of a flush generation whose cells have Seq %d (not archived yet, or the missed writes did not come from a write-back engine archiving to it)",
				errNoSource, st.From, st.To, q))
		}
	}
	for _, f := range st.Flushes {
		k, ok := flushGeneration(f, wms)
		if !ok || names[k] == nil {
			return 0, l.archiveWait(gen, fmt.Errorf("%w: the archive holds no segment of [%d, %d) of generation %d of source %q, the flush of the cells of writer %q with Seq %d (not archived yet, or the missed writes did not come from a write-back engine archiving to it with its writer id as Source)",
				errNoSource, st.From, st.To, k.gen, k.source, f.Writer, f.Seq))
		}
		todo = append(todo, rebuild{k, f})
	}
	sink := &resyncSink{Store: l.store, l: l, epoch: l.s.epoch.Load(), metrics: st.Metrics}
	dir := filepath.Join(o.Dir, "resync", l.name)
	for _, r := range todo {
		if _, err := reprocess.Rebuild(ctx, o.Archive, names[r.k], st.From, st.To, nil, o.Processor, r.f.Writer, r.f.Seq, sink, dir); err != nil {
			return sink.written, fmt.Errorf("generation %d of %s: %w", r.k.gen, r.k.source, err)
		}
	}
	return sink.written, nil
}

// genKey names a flush generation in the archive: the segments' source and
// generation number.
type genKey struct {
	source string
	gen    uint64
}

// flushGeneration returns the archived generation whose flush gave its
// cells the identity f (of a writer other than ""): a write-back engine
// with writer id w gives generation g's cells Writer w for g below the
// cell width in ms (wms) and "w/<g / wms>" after, and Seq g mod wms; its
// segments are found when it names them after its writer id
// (writeback.Options.Source). ok is false for a writer not of that form.
// An archived generation is never taken for a flush of another writer, so
// a rebuild cannot count one engine's points under another's identity.
func flushGeneration(f flushID, wms uint64) (k genKey, ok bool) {
	id, n, numbered := strings.Cut(f.Writer, "/")
	var hi uint64
	if numbered {
		var err error
		if hi, err = strconv.ParseUint(n, 10, 64); err != nil || hi == 0 || hi > (math.MaxUint64-uint64(f.Seq))/wms {
			return genKey{id, 0}, false
		}
	}
	return genKey{id, hi*wms + uint64(f.Seq)}, id != ""
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
