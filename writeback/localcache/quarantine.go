package localcache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/hourglass-io/hourglass/internal/atomicfile"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/writeback"
)

// quarantineFile is the append-only log of the quarantine in the cache's
// directory: records framed as in the write-ahead log (length, CRC-32C,
// payload), each payload a kind byte and JSON: quarantineAdd with a
// []writeback.QuarantinedCell, quarantineRelease with the []tsstore.Cell
// (identity fields) of the cells that left. Every append is fsynced.
const quarantineFile = "QUARANTINE"

const (
	quarantineAdd     byte = 1
	quarantineRelease byte = 2
)

var _ writeback.QuarantineCache = (*Cache)(nil)

// quarantine is the in-memory state of the quarantine file; guarded by
// Cache.qMu.
type quarantine struct {
	f       *os.File
	size    int64
	records int // records in the file, for compaction
	cells   map[tsstore.CellID]writeback.QuarantinedCell
}

// loadQuarantine replays the quarantine file. A torn record at its end (a
// crash during an append, which was therefore not acknowledged) is cut
// off.
func (c *Cache) loadQuarantine() error {
	q := &quarantine{cells: map[tsstore.CellID]writeback.QuarantinedCell{}}
	path := filepath.Join(c.dir, quarantineFile)
	var good int64
	err := readRecords(path, func(payload []byte, end int64) error {
		if len(payload) == 0 {
			return errors.Join(errCorrupt, errors.New("empty record"))
		}
		switch payload[0] {
		case quarantineAdd:
			var qs []writeback.QuarantinedCell
			if err := json.Unmarshal(payload[1:], &qs); err != nil {
				return errors.Join(errCorrupt, err)
			}
			q.add(qs)
		case quarantineRelease:
			var cs []tsstore.Cell
			if err := json.Unmarshal(payload[1:], &cs); err != nil {
				return errors.Join(errCorrupt, err)
			}
			for i := range cs {
				delete(q.cells, cs[i].ID())
			}
		default:
			return errors.Join(errCorrupt, fmt.Errorf("unknown record kind %d", payload[0]))
		}
		q.records++
		good = end
		return nil
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		if !errors.Is(err, errCorrupt) {
			return fmt.Errorf("localcache: read %s: %w", path, err)
		}
		c.log.Warn("localcache: cutting a torn record off the end of the quarantine", "file", path, "offset", good, "err", err)
		if err := os.Truncate(path, good); err != nil {
			return fmt.Errorf("localcache: truncate %s: %w", path, err)
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("localcache: %w", err)
	}
	q.f, q.size = f, good
	c.quar = q
	c.quarCount.Store(int64(len(q.cells)))
	return nil
}

func (q *quarantine) add(qs []writeback.QuarantinedCell) {
	for i := range qs {
		q.cells[qs[i].Cell.ID()] = qs[i]
	}
}

func (q *quarantine) list() []writeback.QuarantinedCell {
	return slices.Collect(maps.Values(q.cells))
}

// frame returns one record of the quarantine file: kind and v's JSON.
func frame(kind byte, v any) ([]byte, error) {
	payload, err := json.Marshal(v)
	if err != nil {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "localcache: quarantine: %w", err)
	}
	buf := make([]byte, headerLen+1, headerLen+1+len(payload))
	buf[headerLen] = kind
	buf = append(buf, payload...)
	putHeader(buf)
	return buf, nil
}

// appendRecord appends one fsynced record of kind and v's JSON.
func (c *Cache) appendRecord(kind byte, v any) error {
	buf, err := frame(kind, v)
	if err != nil {
		return err
	}
	q := c.quar
	if _, err := q.f.WriteAt(buf, q.size); err != nil {
		return tsstore.Errorf(tsstore.ErrUnavailable, "localcache: write %s: %w", q.f.Name(), err)
	}
	if err := q.f.Sync(); err != nil {
		return tsstore.Errorf(tsstore.ErrUnavailable, "localcache: fsync %s: %w", q.f.Name(), err)
	}
	q.size += int64(len(buf))
	q.records++
	return nil
}

func (c *Cache) quarantineOpen() error {
	if c.quar == nil {
		return tsstore.Errorf(tsstore.ErrClosed, "localcache: quarantine")
	}
	return nil
}

// Quarantine adds cells to the quarantine file, fsynced.
func (c *Cache) Quarantine(ctx context.Context, cells []writeback.QuarantinedCell) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(cells) == 0 {
		return nil
	}
	c.qMu.Lock()
	defer c.qMu.Unlock()
	if err := c.quarantineOpen(); err != nil {
		return err
	}
	if err := c.appendRecord(quarantineAdd, cells); err != nil {
		return err
	}
	c.quar.add(cells)
	c.quarCount.Store(int64(len(c.quar.cells)))
	return nil
}

// Quarantined lists the quarantined cells.
func (c *Cache) Quarantined(ctx context.Context) ([]writeback.QuarantinedCell, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.qMu.Lock()
	defer c.qMu.Unlock()
	if err := c.quarantineOpen(); err != nil {
		return nil, err
	}
	return c.quar.list(), nil
}

// Release removes cells from the quarantine with one fsynced record; the
// file is rewritten (atomically) once most of its records are dead.
func (c *Cache) Release(ctx context.Context, ids []tsstore.CellID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.qMu.Lock()
	defer c.qMu.Unlock()
	if err := c.quarantineOpen(); err != nil {
		return err
	}
	q := c.quar
	var gone []tsstore.Cell
	for _, id := range ids {
		if qc, ok := q.cells[id]; ok {
			gone = append(gone, tsstore.Cell{Metric: qc.Cell.Metric, Labels: qc.Cell.Labels, Start: qc.Cell.Start, Writer: qc.Cell.Writer, Seq: qc.Cell.Seq})
		}
	}
	if len(gone) == 0 {
		return nil
	}
	if err := c.appendRecord(quarantineRelease, gone); err != nil {
		return err
	}
	for i := range gone {
		delete(q.cells, gone[i].ID())
	}
	c.quarCount.Store(int64(len(q.cells)))
	if q.records > 2*len(q.cells)+16 {
		return c.compactQuarantine()
	}
	return nil
}

// compactQuarantine rewrites the file with one add record of the live
// cells.
func (c *Cache) compactQuarantine() error {
	q := c.quar
	live := q.list()
	var data []byte
	if len(live) > 0 {
		var err error
		if data, err = frame(quarantineAdd, live); err != nil {
			return err
		}
	}
	if err := atomicfile.Write(filepath.Join(c.dir, quarantineFile), data); err != nil {
		return tsstore.Errorf(tsstore.ErrUnavailable, "localcache: compact the quarantine: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(c.dir, quarantineFile), os.O_RDWR, 0o644)
	if err != nil {
		return tsstore.Errorf(tsstore.ErrUnavailable, "localcache: compact the quarantine: %w", err)
	}
	_ = q.f.Close()
	q.f, q.size, q.records = f, int64(len(data)), 0
	if len(live) > 0 {
		q.records = 1
	}
	return nil
}

// QuarantinedCount returns the number of quarantined cells.
func (c *Cache) QuarantinedCount() int { return int(c.quarCount.Load()) }

func (c *Cache) closeQuarantine() {
	c.qMu.Lock()
	defer c.qMu.Unlock()
	if c.quar != nil {
		_ = c.quar.f.Close()
		c.quar = nil
	}
}
