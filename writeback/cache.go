package writeback

import (
	"context"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
)

// Durability says when a write is acknowledged. Every level includes the
// ones before it.
type Durability int

// The durability levels. A cache that cannot give a level fails the write
// with tsstore.ErrInvalid rather than acknowledging less.
const (
	// DurabilityDefault is the level the cache was configured with.
	DurabilityDefault Durability = iota
	// DurabilityMemory acknowledges once the write is in the cache's
	// memory: lost if the process dies before the log is written.
	DurabilityMemory
	// DurabilityLogged acknowledges once the log record is handed to the
	// operating system (localcache) or to the Redis server (rediscache):
	// it survives a crash of this process, not of the machine.
	DurabilityLogged
	// DurabilitySynced acknowledges once the log is on stable storage
	// (fsync; for Redis, the server's AOF fsync policy applies).
	DurabilitySynced
	// DurabilityReplicated acknowledges once the cache's replicas have the
	// write (rediscache: WAIT for the configured number of replicas).
	DurabilityReplicated
)

// String names the level.
func (d Durability) String() string {
	switch d {
	case DurabilityDefault:
		return "default"
	case DurabilityMemory:
		return "memory"
	case DurabilityLogged:
		return "logged"
	case DurabilitySynced:
		return "synced"
	case DurabilityReplicated:
		return "replicated"
	}
	return "unknown"
}

// Batch is one acknowledged unit of writes, as the engine hands it to a
// Cache. Raw and Processed are valid (the engine validated them).
type Batch struct {
	// Raw are the points as written: what the log and the archive keep.
	Raw []tsstore.Point
	// Processed are what the processor made of Raw: what is aggregated
	// into cells. It may be the very same slice as Raw (the identity
	// processor), which a cache may use to log the points once.
	Processed []tsstore.Point
	// CellWidth is the width of the cells to merge Processed into.
	CellWidth time.Duration
	// Durability is the level to reach before Append returns.
	Durability Durability
}

// SameSlices reports whether Processed is Raw itself (not merely equal).
func (b *Batch) SameSlices() bool {
	return len(b.Raw) == len(b.Processed) && (len(b.Raw) == 0 || &b.Raw[0] == &b.Processed[0])
}

// GenCell is a cell held by a cache, with the generation that holds it.
// Its Seq is left to the engine (it follows from Gen). Cells of a sealed
// generation may be in the store already; so may cells that were in the
// open generation (Sealed false) when the cache was read, if a flush
// sealed and stored them since.
type GenCell struct {
	tsstore.Cell
	Gen    uint64
	Sealed bool
}

// Generation describes a sealed, uncommitted generation.
type Generation struct {
	Gen uint64
	// Points is the number of raw points logged in the generation.
	Points int64
	// Cells is the number of cells.
	Cells int64
	// FirstWrite is when the generation received its first write (for a
	// generation replayed after a restart, an approximation no later than
	// the truth).
	FirstWrite time.Time
}

// CacheStats are a cache's current totals over all its generations.
type CacheStats struct {
	Points int64
	Cells  int64
	// Bytes estimates the memory the cache's cells and buffers use.
	Bytes int64
	// OldestWrite is the first write of the oldest unflushed generation;
	// zero when the cache is empty.
	OldestWrite time.Time
	// Sealed counts sealed, uncommitted generations.
	Sealed int
}

// Cache is the driver interface of the write-back cache: the log of raw
// points and the cells merged from processed points, organised in
// generations. The open generation takes writes; Seal closes it and opens
// the next; a sealed generation is flushed by the engine and dropped by
// Commit. Generation numbers increase by one and are never reused, also
// across restarts.
//
// The engine owns validation, processing, Seq assignment, flushing and the
// read merge; a Cache only keeps bytes. All methods are safe for concurrent
// use. Conformance: writeback/cachetest.
type Cache interface {
	// Append logs b.Raw and merges b.Processed into cells of the open
	// generation, atomically: after a crash either both or neither are
	// there, and a concurrent Seal puts all of the batch in one
	// generation. It returns once b.Durability is reached. It must not
	// keep the slices b.Raw and b.Processed once it returns (it may keep
	// the points' metric names and label sets): the engine and its
	// callers reuse their memory.
	Append(ctx context.Context, b *Batch) error

	// Seal closes the open generation when it holds any write and returns
	// its number (ok true); new appends go to the next generation. It does
	// nothing when the open generation is empty.
	Seal(ctx context.Context) (gen uint64, ok bool, err error)

	// Sealed lists the sealed, uncommitted generations, oldest first.
	Sealed(ctx context.Context) ([]Generation, error)

	// SealedCells returns the cells of a sealed generation (Seq 0; the
	// engine assigns it).
	SealedCells(ctx context.Context, gen uint64) ([]tsstore.Cell, error)

	// SealedLog calls fn with the raw points of a sealed generation in log
	// order, in chunks of at most max points; the chunking is the same on
	// every call, so archive segments made from it are deterministic. The
	// slice passed to fn is only valid during the call.
	SealedLog(ctx context.Context, gen uint64, max int, fn func([]tsstore.Point) error) error

	// Commit drops a sealed generation once the engine has stored its
	// cells and archived its log. Committing an unknown (already
	// committed) generation is a no-op.
	Commit(ctx context.Context, gen uint64) error

	// Cells returns the cells of every generation (sealed and open)
	// selected by sel, as one consistent snapshot with respect to Seal
	// and Commit.
	Cells(ctx context.Context, sel tsstore.Selector) ([]GenCell, error)

	// Stats returns the current totals; it must be cheap.
	Stats() CacheStats

	// WriterID returns the cache's writer id and the first generation
	// written under it. The id is made once per storage (a data
	// directory, a Redis prefix) by NewWriterID when Open finds none, and
	// persisted, so it stays the same across restarts and differs between
	// two storages. since is the open generation at the moment the id was
	// made: 1 for new storage; for storage written by a version without
	// writer ids, the generations before since keep the legacy writer ""
	// (a crash-replayed flush of one must not store its cells a second
	// time under another identity). It must be cheap (set at Open).
	WriterID() (id string, since uint64)

	// Close releases resources. Unflushed generations stay in the log
	// (localcache) or the server (rediscache) for the next Open.
	Close() error
}

// SealedCellLister is an optional interface of a Cache that lists a sealed
// generation's cells in flush order (FlushOrder) and hands them out a range at a time, so
// that a flush holds one chunk of cells (Options.FlushChunk) rather than a
// copy of all the generation's, some 100 bytes a cell (localcache and
// rediscache implement it). Without it the engine takes SealedCells and
// sorts them.
type SealedCellLister interface {
	// SealedCellList returns the list of the sealed generation gen's
	// cells. It must list the same cells in the same order on every
	// call (a flush that ends at its budget resumes at an index) and stay
	// valid while the generation is sealed.
	SealedCellList(ctx context.Context, gen uint64) (CellList, error)
}

// CellList is a sealed generation's cells in flush order (Seq 0; the
// engine assigns it).
type CellList interface {
	// Len returns the number of cells.
	Len() int
	// AppendCells appends the cells from index from up to (not
	// including) to, and returns dst. Their labels are shared with the
	// cache: do not modify them.
	AppendCells(dst []tsstore.Cell, from, to int) []tsstore.Cell
}
