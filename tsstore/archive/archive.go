package archive

import (
	"context"
	"fmt"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
)

// SegmentID identifies a segment by the identity of its content: which
// writer produced it (Source: a write-back engine's writer id; several
// servers share one archive), which flush generation and which cache shard, and the time range
// of its points. Its Name is derived from it, so a retried flush writes the
// same name again.
type SegmentID struct {
	// Source names the writer: [a-zA-Z0-9_.-]{1,64}.
	Source string
	// Generation is the flush generation of the write-back cache.
	Generation uint64
	// Shard is the cache shard (0 when unsharded).
	Shard int
	// MinTime and MaxTime are the smallest and largest point timestamps
	// in the segment (ms, inclusive).
	MinTime, MaxTime int64
}

// Name returns the segment's path in the archive, laid out by the hour of
// MinTime: YYYY/MM/DD/HH/<source>-g<generation>-s<shard>-<min>-<max>.parquet.
func (id SegmentID) Name() string {
	t := time.UnixMilli(id.MinTime).UTC()
	return fmt.Sprintf("%04d/%02d/%02d/%02d/%s-g%016d-s%04d-%d-%d.parquet",
		t.Year(), t.Month(), t.Day(), t.Hour(), id.Source, id.Generation, id.Shard, id.MinTime, id.MaxTime)
}

// Validate checks the ID; errors are of kind tsstore.ErrInvalid.
func (id SegmentID) Validate() error {
	if id.Source == "" || len(id.Source) > 64 {
		return tsstore.Errorf(tsstore.ErrInvalid, "segment source %q: want 1 to 64 characters", id.Source)
	}
	for _, c := range []byte(id.Source) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return tsstore.Errorf(tsstore.ErrInvalid, "segment source %q: character %q not in [a-zA-Z0-9_.-]", id.Source, c)
		}
	}
	if id.Shard < 0 || id.Shard > 9999 {
		return tsstore.Errorf(tsstore.ErrInvalid, "segment shard %d outside [0, 9999]", id.Shard)
	}
	if id.MinTime < 0 || id.MaxTime < id.MinTime || id.MaxTime >= tsstore.MaxTimestamp {
		return tsstore.Errorf(tsstore.ErrInvalid, "segment time range [%d, %d] is not valid", id.MinTime, id.MaxTime)
	}
	return nil
}

// SegmentInfo describes a stored segment, as recorded in the manifest.
type SegmentInfo struct {
	Name   string
	ID     SegmentID
	Points int64
	// Bytes is the size of the segment file.
	Bytes int64
	// Checksum is the hex SHA-256 of the segment file.
	Checksum string
	// Created is when the segment was first written.
	Created time.Time
}

// ScanRequest selects points to scan: Timestamp in [From, To) and, when
// Metric is not empty, of that metric, and satisfying every matcher.
type ScanRequest struct {
	From, To int64
	Metric   string
	Matchers []tsstore.Matcher
}

// Stats summarises an archive.
type Stats struct {
	Segments int64
	Points   int64
	Bytes    int64
	// MinTime and MaxTime bound all points (ms); both 0 when empty.
	MinTime, MaxTime int64
}

// Archive is the permanent, append-only store of raw points. There is no
// delete. All methods are safe for concurrent use, also by several
// processes or hosts sharing the same archive.
type Archive interface {
	// Append writes points (in any order; at least one) as the segment
	// id. Nothing is visible until the whole segment is durable. Appending
	// a name that exists with the same content is a no-op returning the
	// stored info; with other content it fails with tsstore.ErrConflict.
	// Invalid points or ids fail with tsstore.ErrInvalid.
	Append(ctx context.Context, id SegmentID, points []tsstore.Point) (SegmentInfo, error)

	// Segments lists the segments whose [MinTime, MaxTime] overlaps
	// [from, to), sorted by name.
	Segments(ctx context.Context, from, to int64) ([]SegmentInfo, error)

	// Read calls fn for every point of the named segment, in timestamp
	// order, after verifying its checksum: a corrupt or truncated segment
	// fails with an error naming it.
	Read(ctx context.Context, name string, fn func(tsstore.Point) error) error

	// Scan calls fn for the points selected by r, in timestamp order across
	// all segments (ties in segment-name order). An error from fn stops the
	// scan and is returned.
	Scan(ctx context.Context, r ScanRequest, fn func(tsstore.Point) error) error

	// Stat returns totals over the manifest.
	Stat(ctx context.Context) (Stats, error)

	// Close releases resources.
	Close() error
}

// ColumnsAppender is an optional interface of an Archive: the bulk form of
// Append, for callers that hold a segment's points as columns (a flush
// reading a write-ahead log). Find it by type assertion; an Archive
// without it takes c.AppendPoints(nil) through Append.
type ColumnsAppender interface {
	// AppendColumns is Append of the points of c, with its contract: the
	// same points given as columns or as points make the same segment
	// (the same name, content digest and bytes), and invalid columns or
	// points fail with tsstore.ErrInvalid naming the point by its index
	// in c. Series of c may repeat content: two entries with equal metric
	// and labels are one series. AppendColumns may reorder c's slices
	// while it runs (the caller must not use their contents again), but
	// keeps neither c nor its slices once it returns: the caller may reuse
	// their memory for the next segment.
	AppendColumns(ctx context.Context, id SegmentID, c *tsstore.Columns) (SegmentInfo, error)
}
