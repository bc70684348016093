package localcache

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hourglass-io/hourglass/internal/atomicfile"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/writeback"
)

// FsyncPolicy says when the write-ahead log is fsynced.
type FsyncPolicy int

// The fsync policies.
const (
	// FsyncInterval fsyncs every SyncInterval in the background (group
	// commit); writes are acknowledged once written to the OS, so a
	// machine crash loses at most the last interval. The default.
	FsyncInterval FsyncPolicy = iota
	// FsyncAlways acknowledges a write only after the fsync that covers
	// it; concurrent writes share one fsync (group commit).
	FsyncAlways
	// FsyncNever leaves syncing to the operating system (and to sealing).
	FsyncNever
)

// Defaults of Options.
const (
	DefaultSyncInterval = 100 * time.Millisecond
	DefaultShards       = 64
	DefaultIndexLabel   = "merchant"
	// MaxRecordBytes bounds one log record (one batch).
	MaxRecordBytes = 256 << 20
)

// Options configures a Cache. A nil *Options means the defaults.
type Options struct {
	// Fsync is the fsync policy; the zero value is FsyncInterval.
	Fsync FsyncPolicy
	// SyncInterval is the period of background fsyncs under
	// FsyncInterval; 0 means DefaultSyncInterval.
	SyncInterval time.Duration
	// Shards is the number of cell shards (lock striping); 0 means
	// DefaultShards.
	Shards int
	// IndexLabel is the label whose equality matchers are answered from an
	// index rather than a scan of the metric's series; "" means
	// DefaultIndexLabel.
	IndexLabel string
	// Logger receives replay and sync reports; nil means slog.Default().
	Logger *slog.Logger
}

// Cache is the embedded write-back cache: cells in sharded maps in memory,
// raw points in a write-ahead log with one file per generation. Safe for
// concurrent use. Create one with Open.
type Cache struct {
	dir        string
	opts       Options
	log        *slog.Logger
	lockFile   *os.File
	defaultDur writeback.Durability

	// genMu orders appends against Seal and Commit: Append holds it for
	// reading, Seal and Commit for writing. It guards open, sealed and
	// the generation's sealed flags.
	genMu  sync.RWMutex
	open   *generation
	sealed []*generation
	closed bool

	walMu sync.Mutex // guards cur and its writes
	cur   *walFile

	syncMu   sync.Mutex // guards syncing and every walFile.synced
	syncCond *sync.Cond
	syncing  bool

	points, cells, bytes atomic.Int64

	// writer and since are the writer id and its first generation, set
	// by Open.
	writer string
	since  uint64

	qMu       sync.Mutex  // guards quar
	quar      *quarantine // nil once closed
	quarCount atomic.Int64

	stop chan struct{}
	wg   sync.WaitGroup
}

type walFile struct {
	gen    uint64
	path   string
	f      *os.File
	size   atomic.Int64 // bytes written
	synced int64        // bytes known fsynced; guarded by Cache.syncMu
	closed bool         // guarded by Cache.syncMu
}

var (
	_ writeback.Cache               = (*Cache)(nil)
	_ writeback.SealedLogOwner      = (*Cache)(nil)
	_ writeback.SealedColumnsReader = (*Cache)(nil)
	_ writeback.ColumnsRecycler     = (*Cache)(nil)
	_ writeback.SealedCellLister    = (*Cache)(nil)
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

const headerLen = 8 // uint32 payload length, uint32 CRC-32C of the payload

// putHeader writes the header of the record rec: its first headerLen
// bytes are room for it, the rest the payload. The write-ahead log and the
// quarantine file frame their records so.
func putHeader(rec []byte) {
	payload := rec[headerLen:]
	binary.LittleEndian.PutUint32(rec[0:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(rec[4:], crc32.Checksum(payload, crcTable))
}

// Open opens (creating it if needed) the cache in dir and replays its log:
// every generation found is rebuilt, the last one open, the others sealed.
// A torn record at the end of the open generation's file (a crash during a
// write) is cut off; corruption anywhere else fails Open with an error
// naming the file and offset. Only one process may open dir at a time.
func Open(dir string, opts *Options) (*Cache, error) {
	c := &Cache{dir: dir, stop: make(chan struct{})}
	if opts != nil {
		c.opts = *opts
	}
	if c.opts.SyncInterval <= 0 {
		c.opts.SyncInterval = DefaultSyncInterval
	}
	if c.opts.Shards <= 0 {
		c.opts.Shards = DefaultShards
	}
	if c.opts.IndexLabel == "" {
		c.opts.IndexLabel = DefaultIndexLabel
	}
	c.log = c.opts.Logger
	if c.log == nil {
		c.log = slog.Default()
	}
	switch c.opts.Fsync {
	case FsyncAlways:
		c.defaultDur = writeback.DurabilitySynced
	case FsyncInterval, FsyncNever:
		c.defaultDur = writeback.DurabilityLogged
	default:
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "localcache: unknown fsync policy %d", c.opts.Fsync)
	}
	c.syncCond = sync.NewCond(&c.syncMu)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("localcache: %w", err)
	}
	lf, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("localcache: %w", err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lf.Close()
		return nil, tsstore.Errorf(tsstore.ErrUnavailable, "localcache: %s is in use by another process: %w", dir, err)
	}
	c.lockFile = lf
	if err := c.replay(); err != nil {
		c.closeFiles()
		return nil, err
	}
	if err := c.loadWriter(); err != nil {
		_ = c.cur.f.Close()
		c.closeFiles()
		return nil, err
	}
	if err := c.loadQuarantine(); err != nil {
		_ = c.cur.f.Close()
		c.closeFiles()
		return nil, err
	}
	if c.opts.Fsync == FsyncInterval {
		c.wg.Add(1)
		go c.syncLoop()
	}
	return c, nil
}

func genPath(dir string, gen uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d.wal", gen))
}

func (c *Cache) replay() error {
	names, err := filepath.Glob(filepath.Join(c.dir, "*.wal"))
	if err != nil {
		return fmt.Errorf("localcache: %w", err)
	}
	var gens []uint64
	for _, n := range names {
		g, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(n), ".wal"), 10, 64)
		if err != nil {
			return fmt.Errorf("localcache: unexpected file %s in the log directory", n)
		}
		gens = append(gens, g)
	}
	slices.Sort(gens)
	for i, g := range gens {
		last := i == len(gens)-1
		gen := newGeneration(g, genPath(c.dir, g), c.opts.Shards)
		st, err := os.Stat(gen.path)
		if err != nil {
			return fmt.Errorf("localcache: %w", err)
		}
		gen.firstWrite.Store(st.ModTime().UnixNano())
		good, err := c.replayFile(gen)
		if err != nil {
			if !last || !errors.Is(err, errCorrupt) {
				return fmt.Errorf("localcache: replay %s at offset %d: %w", gen.path, good, err)
			}
			c.log.Warn("localcache: cutting a torn record off the end of the log", "file", gen.path, "offset", good, "err", err)
			if err := os.Truncate(gen.path, good); err != nil {
				return fmt.Errorf("localcache: truncate %s: %w", gen.path, err)
			}
		}
		if gen.points.Load() == 0 {
			gen.firstWrite.Store(0)
		}
		if last {
			w, err := openWAL(gen.path, g, good)
			if err != nil {
				return err
			}
			c.cur, c.open = w, gen
		} else {
			gen.sealed = true
			c.sealed = append(c.sealed, gen)
		}
	}
	if c.open == nil {
		next := uint64(1)
		if len(gens) > 0 {
			next = gens[len(gens)-1] + 1
		}
		return c.newOpen(next)
	}
	return nil
}

// replayFile merges every good record of gen's file into gen and returns
// the offset after the last good record.
func (c *Cache) replayFile(gen *generation) (int64, error) {
	var good int64
	d := newDecoder()
	err := readRecords(gen.path, func(payload []byte, end int64) error {
		if err := d.record(payload, true); err != nil {
			if errors.Is(err, errVersion) {
				return err
			}
			return errors.Join(errCorrupt, err)
		}
		c.mergeRecord(gen, d.raw.len(), d.processedSection().columns(d), d.width)
		good = end
		return nil
	})
	return good, err
}

// readBufferSize is the buffer of readRecords: a record that fits is
// handed to fn in it, not copied.
const readBufferSize = 1 << 20

// readRecords calls fn with each record's payload, valid until fn
// returns, and the offset after it. A short or failing record gives an
// error wrapping errCorrupt.
func readRecords(path string, fn func(payload []byte, end int64) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, readBufferSize)
	var off int64
	var hdr [headerLen]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if err == io.EOF {
				return nil
			}
			return errors.Join(errCorrupt, fmt.Errorf("short header: %w", err))
		}
		n := binary.LittleEndian.Uint32(hdr[0:])
		sum := binary.LittleEndian.Uint32(hdr[4:])
		if n > MaxRecordBytes {
			return errors.Join(errCorrupt, fmt.Errorf("record length %d too large", n))
		}
		payload, err := readPayload(br, int(n), &buf)
		if err != nil {
			return errors.Join(errCorrupt, fmt.Errorf("short record: %w", err))
		}
		if crc32.Checksum(payload, crcTable) != sum {
			return errors.Join(errCorrupt, errors.New("checksum mismatch"))
		}
		off += headerLen + int64(n)
		if err := fn(payload, off); err != nil {
			return err
		}
	}
}

// readPayload reads the next n bytes of br as io.ReadFull does: in br's
// buffer, valid until br is read again, when it can hold them (most
// records), else into *buf.
func readPayload(br *bufio.Reader, n int, buf *[]byte) ([]byte, error) {
	if n > br.Size() {
		if cap(*buf) < n {
			*buf = make([]byte, n)
		}
		*buf = (*buf)[:n]
		_, err := io.ReadFull(br, *buf)
		return *buf, err
	}
	p, err := br.Peek(n)
	if err != nil {
		if err == io.EOF && len(p) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	_, err = br.Discard(n) // buffered: no read, and p stays valid
	// Capped: the buffer's next bytes, the next records', are no room
	// for an append.
	return p[:n:n], err
}

// mergeRecord merges a batch of raw points, whose processed points are
// processed, into gen.
func (c *Cache) mergeRecord(gen *generation, raw int, processed *tsstore.Columns, width time.Duration) {
	m := mergerPool.Get().(*merger)
	nc, nb := m.merge(gen, processed, width, c.opts.IndexLabel)
	mergerPool.Put(m)
	gen.points.Add(int64(raw))
	gen.cells.Add(nc)
	gen.bytes.Add(nb)
	c.points.Add(int64(raw))
	c.cells.Add(nc)
	c.bytes.Add(nb)
}

func openWAL(path string, gen uint64, size int64) (*walFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("localcache: %w", err)
	}
	w := &walFile{gen: gen, path: path, f: f, synced: size}
	w.size.Store(size)
	return w, nil
}

// newOpen creates the file of generation num and makes it the open one.
func (c *Cache) newOpen(num uint64) error {
	path := genPath(c.dir, num)
	w, err := openWAL(path, num, 0)
	if err != nil {
		return err
	}
	if err := atomicfile.SyncDir(c.dir); err != nil {
		w.f.Close()
		return fmt.Errorf("localcache: %w", err)
	}
	c.walMu.Lock()
	c.cur = w
	c.walMu.Unlock()
	c.open = newGeneration(num, path, c.opts.Shards)
	return nil
}

// appender is what an Append needs besides the cache: the batch's points
// as columns and their encoding. Pooled.
type appender struct {
	raw, processed *grouper
	enc            *encoder
	buf            []byte
}

var appenderPool = sync.Pool{New: func() any {
	return &appender{raw: newGrouper(), processed: newGrouper(), enc: newEncoder(), buf: make([]byte, 0, 64<<10)}
}}

// release drops the appender's references to the batch and pools it.
func (a *appender) release() {
	a.raw.release()
	a.processed.release()
	a.enc.reset()
	appenderPool.Put(a)
}

// Append logs the batch and merges it into the open generation.
func (c *Cache) Append(ctx context.Context, b *writeback.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dur := b.Durability
	if dur == writeback.DurabilityDefault {
		dur = c.defaultDur
	}
	if dur == writeback.DurabilityReplicated {
		return tsstore.Errorf(tsstore.ErrInvalid, "localcache: durability %s is not offered (the cache has no replicas)", dur)
	}
	if len(b.Raw) == 0 {
		return nil
	}
	a := appenderPool.Get().(*appender)
	defer a.release()
	processed, encoded := a.raw.group(b.Raw), (*grouper)(nil)
	if !b.SameSlices() {
		processed, encoded = a.processed.group(b.Processed), a.processed
	}
	buf := append(a.buf[:0], make([]byte, headerLen)...)
	buf = a.enc.batch(buf, b.CellWidth, a.raw, encoded)
	a.buf = buf
	if n := len(buf) - headerLen; n > MaxRecordBytes {
		return tsstore.Errorf(tsstore.ErrInvalid, "localcache: batch of %d points encodes to %d bytes, more than %d", len(b.Raw), n, MaxRecordBytes)
	}
	putHeader(buf)

	c.genMu.RLock()
	if c.closed {
		c.genMu.RUnlock()
		return tsstore.Errorf(tsstore.ErrClosed, "localcache: append")
	}
	gen := c.open
	c.walMu.Lock()
	w := c.cur
	off := w.size.Load()
	if _, err := w.f.WriteAt(buf, off); err != nil {
		c.walMu.Unlock()
		c.genMu.RUnlock()
		// Nothing after off counts: the next write goes to the same
		// offset, and replay stops at a torn record.
		return tsstore.Errorf(tsstore.ErrUnavailable, "localcache: write log %s: %w", w.path, err)
	}
	end := off + int64(len(buf))
	w.size.Store(end)
	c.walMu.Unlock()
	gen.firstWrite.CompareAndSwap(0, time.Now().UnixNano())
	c.mergeRecord(gen, len(b.Raw), processed, b.CellWidth)
	c.genMu.RUnlock()

	if dur == writeback.DurabilitySynced {
		return c.waitSynced(w, end)
	}
	return nil
}

// waitSynced returns once w is fsynced up to end; concurrent callers share
// one fsync (group commit).
func (c *Cache) waitSynced(w *walFile, end int64) error {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	for w.synced < end {
		if c.syncing {
			c.syncCond.Wait()
			continue
		}
		if w.closed {
			// Sealing fsynced the whole file before closing it.
			return nil
		}
		c.syncing = true
		target := w.size.Load()
		c.syncMu.Unlock()
		err := w.f.Sync()
		c.syncMu.Lock()
		c.syncing = false
		c.syncCond.Broadcast()
		if err != nil {
			return tsstore.Errorf(tsstore.ErrUnavailable, "localcache: fsync %s: %w", w.path, err)
		}
		if target > w.synced {
			w.synced = target
		}
	}
	return nil
}

func (c *Cache) syncLoop() {
	defer c.wg.Done()
	t := time.NewTicker(c.opts.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.walMu.Lock()
			w := c.cur
			c.walMu.Unlock()
			if err := c.waitSynced(w, w.size.Load()); err != nil {
				c.log.Error("localcache: background fsync failed", "err", err)
			}
		}
	}
}

// Seal closes the open generation, fsyncing its file, and opens the next.
func (c *Cache) Seal(ctx context.Context) (uint64, bool, error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	c.genMu.Lock()
	defer c.genMu.Unlock()
	if c.closed {
		return 0, false, tsstore.Errorf(tsstore.ErrClosed, "localcache: seal")
	}
	if c.open.points.Load() == 0 {
		return 0, false, nil
	}
	old := c.cur
	if err := c.closeWAL(old); err != nil {
		return 0, false, err
	}
	gen := c.open
	if err := c.newOpen(gen.num + 1); err != nil {
		// Keep taking writes in a new file of the same generation
		// would break the one-file-per-generation layout; reopen the
		// old file instead so that nothing is lost.
		w, rerr := openWAL(old.path, old.gen, old.size.Load())
		if rerr != nil {
			return 0, false, errors.Join(err, rerr)
		}
		c.walMu.Lock()
		c.cur = w
		c.walMu.Unlock()
		return 0, false, tsstore.Errorf(tsstore.ErrUnavailable, "localcache: seal: %w", err)
	}
	gen.sealed = true
	c.sealed = append(c.sealed, gen)
	return gen.num, true, nil
}

// closeWAL fsyncs and closes w once no fsync is running on it.
func (c *Cache) closeWAL(w *walFile) error {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	for c.syncing {
		c.syncCond.Wait()
	}
	if err := w.f.Sync(); err != nil {
		return tsstore.Errorf(tsstore.ErrUnavailable, "localcache: fsync %s: %w", w.path, err)
	}
	w.synced = w.size.Load()
	w.closed = true
	c.syncCond.Broadcast()
	return w.f.Close()
}

// Sealed lists the sealed generations, oldest first.
func (c *Cache) Sealed(ctx context.Context) ([]writeback.Generation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.genMu.RLock()
	defer c.genMu.RUnlock()
	if c.closed {
		return nil, tsstore.Errorf(tsstore.ErrClosed, "localcache: sealed")
	}
	out := make([]writeback.Generation, 0, len(c.sealed))
	for _, g := range c.sealed {
		out = append(out, describe(g))
	}
	return out, nil
}

func describe(g *generation) writeback.Generation {
	d := writeback.Generation{Gen: g.num, Points: g.points.Load(), Cells: g.cells.Load()}
	if t := g.firstWrite.Load(); t != 0 {
		d.FirstWrite = time.Unix(0, t)
	}
	return d
}

func (c *Cache) sealedGen(gen uint64) (*generation, error) {
	c.genMu.RLock()
	defer c.genMu.RUnlock()
	if c.closed {
		return nil, tsstore.Errorf(tsstore.ErrClosed, "localcache")
	}
	for _, g := range c.sealed {
		if g.num == gen {
			return g, nil
		}
	}
	return nil, tsstore.Errorf(tsstore.ErrInvalid, "localcache: generation %d is not sealed and uncommitted", gen)
}

// SealedCells returns the cells of a sealed generation, in flush order
// (those of SealedCellList). The labels are shared with the cache: do not
// modify them.
func (c *Cache) SealedCells(ctx context.Context, gen uint64) ([]tsstore.Cell, error) {
	l, err := c.SealedCellList(ctx, gen)
	if err != nil {
		return nil, err
	}
	return l.AppendCells(make([]tsstore.Cell, 0, l.Len()), 0, l.Len()), nil
}

// SealedCellList implements writeback.SealedCellLister: the cells of a
// sealed generation in flush order, 8 bytes a cell until they are handed
// out. The labels are shared with the cache: do not modify them.
func (c *Cache) SealedCellList(ctx context.Context, gen uint64) (writeback.CellList, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	g, err := c.sealedGen(gen)
	if err != nil {
		return nil, err
	}
	return g.listCells(), nil
}

// Commit drops a sealed generation and deletes its log file.
func (c *Cache) Commit(ctx context.Context, gen uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.genMu.Lock()
	defer c.genMu.Unlock()
	if c.closed {
		return tsstore.Errorf(tsstore.ErrClosed, "localcache: commit")
	}
	i := slices.IndexFunc(c.sealed, func(g *generation) bool { return g.num == gen })
	if i < 0 {
		return nil
	}
	g := c.sealed[i]
	if err := os.Remove(g.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return tsstore.Errorf(tsstore.ErrUnavailable, "localcache: commit generation %d: %w", gen, err)
	}
	if err := atomicfile.SyncDir(c.dir); err != nil {
		return tsstore.Errorf(tsstore.ErrUnavailable, "localcache: commit generation %d: %w", gen, err)
	}
	c.sealed = slices.Delete(c.sealed, i, i+1)
	c.points.Add(-g.points.Load())
	c.cells.Add(-g.cells.Load())
	c.bytes.Add(-g.bytes.Load())
	return nil
}

// Cells returns the selected cells of every generation.
func (c *Cache) Cells(ctx context.Context, sel tsstore.Selector) ([]writeback.GenCell, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := sel.Validate(); err != nil {
		return nil, fmt.Errorf("localcache: cells: %w", err)
	}
	c.genMu.RLock()
	defer c.genMu.RUnlock()
	if c.closed {
		return nil, tsstore.Errorf(tsstore.ErrClosed, "localcache: cells")
	}
	var out []writeback.GenCell
	for _, g := range c.sealed {
		out = g.selectCells(out, &sel, c.opts.IndexLabel)
	}
	return c.open.selectCells(out, &sel, c.opts.IndexLabel), nil
}

// Stats returns the cache's totals.
func (c *Cache) Stats() writeback.CacheStats {
	s := writeback.CacheStats{Points: c.points.Load(), Cells: c.cells.Load(), Bytes: c.bytes.Load()}
	c.genMu.RLock()
	defer c.genMu.RUnlock()
	s.Sealed = len(c.sealed)
	gens := c.sealed
	if c.open != nil {
		gens = append(gens[:len(gens):len(gens)], c.open)
	}
	for _, g := range gens {
		if t := g.firstWrite.Load(); t != 0 {
			s.OldestWrite = time.Unix(0, t)
			break
		}
	}
	return s
}

// Close stops the background fsync, fsyncs the log and closes it. The
// cache's generations stay in the log for the next Open.
func (c *Cache) Close() error {
	c.genMu.Lock()
	if c.closed {
		c.genMu.Unlock()
		return nil
	}
	c.closed = true
	c.genMu.Unlock()
	close(c.stop)
	c.wg.Wait()
	var err error
	if c.cur != nil {
		err = c.closeWAL(c.cur)
	}
	c.closeQuarantine()
	c.closeFiles()
	return err
}

func (c *Cache) closeFiles() {
	if c.lockFile != nil {
		_ = c.lockFile.Close()
		c.lockFile = nil
	}
}
