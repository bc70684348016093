package s3archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"

	"github.com/minio/minio-go/v7"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/tsstore/archive/internal/manifest"
	"github.com/hourglass-io/hourglass/tsstore/archive/internal/scan"
	"github.com/hourglass-io/hourglass/tsstore/archive/internal/segment"
)

// Content types of the objects written.
const (
	segmentContentType = "application/vnd.apache.parquet"
	entryContentType   = "application/json"
)

// Append implements archive.Archive: it uploads the segment object (one
// conditional PUT, or a multipart upload above Options.PartSize), then
// creates its manifest entry; see the package comment.
func (a *Archive) Append(ctx context.Context, id archive.SegmentID, points []tsstore.Point) (archive.SegmentInfo, error) {
	if err := a.enter(ctx); err != nil {
		return archive.SegmentInfo{}, err
	}
	defer a.leave()
	return a.appendColumns(ctx, id, segment.ColumnsOf(points))
}

// AppendColumns implements archive.ColumnsAppender: Append of the points
// of c.
func (a *Archive) AppendColumns(ctx context.Context, id archive.SegmentID, c *tsstore.Columns) (archive.SegmentInfo, error) {
	if err := a.enter(ctx); err != nil {
		return archive.SegmentInfo{}, err
	}
	defer a.leave()
	return a.appendColumns(ctx, id, c)
}

func (a *Archive) appendColumns(ctx context.Context, id archive.SegmentID, c *tsstore.Columns) (archive.SegmentInfo, error) {
	if err := scan.ValidateAppend(id, c); err != nil {
		return archive.SegmentInfo{}, err
	}
	batch := segment.PrepareColumns(c)
	content := batch.Content()
	name := id.Name()
	if r, ok := a.get(name); ok {
		return r.AppendAgain(content)
	}
	data, err := batch.EncodeBytes(name, content.Digest, segment.EncodeOptions{RowGroupRows: a.opts.RowGroupRows})
	if err != nil {
		return archive.SegmentInfo{}, tsstore.Errorf(tsstore.ErrInvalid, "s3archive %s: append %s: %w", a.where, name, err)
	}
	sum := sha256.Sum256(data)
	if err := ctx.Err(); err != nil {
		return archive.SegmentInfo{}, err
	}
	rec := manifest.NewRecord(id, int64(batch.Len()), int64(len(data)), hex.EncodeToString(sum[:]), content.Digest, a.opts.Now())
	rec, listed, err := a.putSegment(ctx, rec, data)
	if err != nil {
		return archive.SegmentInfo{}, err
	}
	if listed {
		return rec.AppendAgain(content)
	}
	return a.commit(ctx, rec, content)
}

// get returns the indexed record of name.
func (a *Archive) get(name string) (manifest.Record, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.index.Get(name)
}

// add indexes a record read from the bucket or committed by this Archive.
// A record of an indexed name whose digest is of another version than the
// indexed one's (manifest.ErrOtherVersion: the entry object was replaced
// between two reads, by a writer of another version, on a server that
// ignores If-None-Match) is decided by the points of the segment object:
// see sameSegment.
func (a *Archive) add(ctx context.Context, r manifest.Record) error {
	a.mu.Lock()
	err := a.index.Add(r)
	had, _ := a.index.Get(r.Name)
	a.mu.Unlock()
	if errors.Is(err, manifest.ErrOtherVersion) {
		return a.sameSegment(ctx, had, r, err)
	}
	if err != nil {
		return tsstore.Errorf(archive.ErrCorrupt, "s3archive %s: %w", a.where, err)
	}
	return nil
}

// sameSegment decides whether the records had (indexed) and r of one
// name, whose content digests are of different versions (the error
// listed), are of the same points: when both digests are of the points
// of the segment object, r is ignored (the index keeps had); otherwise the
// manifest is corrupt. Two records that name other points never both
// name the object's.
func (a *Archive) sameSegment(ctx context.Context, had, r manifest.Record, listed error) error {
	data, err := a.getObject(ctx, a.segmentKey(r.Name), -1)
	if errorCode(err) == "NoSuchKey" {
		return tsstore.Errorf(archive.ErrCorrupt, "s3archive %s: %w; segment object missing: %w", a.where, listed, err)
	}
	if err != nil {
		return a.fail("read segment "+r.Name+" to compare its two manifest records", err)
	}
	ps, err := segment.ReadAll(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return tsstore.Errorf(archive.ErrCorrupt, "s3archive %s: %w; segment object: %w", a.where, listed, err)
	}
	c := segment.Prepare(ps).Content()
	for _, rec := range []manifest.Record{had, r} {
		same, err := c.Same(rec.Content)
		if err != nil {
			return tsstore.Errorf(tsstore.ErrUnavailable, "s3archive %s: %w: %w", a.where, listed, err)
		}
		if !same {
			return tsstore.Errorf(archive.ErrCorrupt, "s3archive %s: %w, and the segment object's points are not those of content %s",
				a.where, listed, rec.Content)
		}
	}
	return nil
}

// putSegment creates the segment object of rec with the bytes data, unless
// an object of that name exists: then, when that object holds the same
// points, it is adopted (rec gets its checksum and size); when it holds
// other points, the name's manifest entry decides: listed is true and rec
// the stored entry when there is one, otherwise the append is a conflict.
func (a *Archive) putSegment(ctx context.Context, rec manifest.Record, data []byte) (_ manifest.Record, listed bool, _ error) {
	key := a.segmentKey(rec.Name)
	// The check first: a retried flush finds its segment and uploads
	// nothing, and on a server that ignores If-None-Match only a writer
	// racing between this check and its upload can overwrite.
	exists, err := a.exists(ctx, key)
	if err != nil {
		return rec, false, a.fail("append "+rec.Name+": check the segment object", err)
	}
	if !exists {
		opts := minio.PutObjectOptions{
			ContentType:    segmentContentType,
			PartSize:       uint64(a.partSize),
			SendContentMd5: true,
			UserMetadata:   map[string]string{"hourglass-sha256": rec.SHA256, "hourglass-content-sha256": rec.Content},
		}
		opts.SetMatchETagExcept("*") // If-None-Match: *
		err = a.try(ctx, func(ctx context.Context) error {
			_, err := a.client.PutObject(ctx, a.bucket, key, bytes.NewReader(data), int64(len(data)), opts)
			return err
		})
		if err == nil {
			return rec, false, nil
		}
		if errorCode(err) != "PreconditionFailed" {
			return rec, false, a.fail("append "+rec.Name+": upload the segment", err)
		}
		// Created meanwhile, or by our own attempt whose answer was lost.
	}
	return a.adopt(ctx, rec)
}

// adopt handles a segment object that exists before its manifest entry
// was seen: see putSegment.
func (a *Archive) adopt(ctx context.Context, rec manifest.Record) (_ manifest.Record, listed bool, _ error) {
	data, err := a.getObject(ctx, a.segmentKey(rec.Name), -1)
	if err != nil {
		return rec, false, a.fail("append "+rec.Name+": read the existing segment object", err)
	}
	ps, derr := segment.ReadAll(bytes.NewReader(data), int64(len(data)))
	// rec is this append's: its digest is of the current version.
	if derr == nil && segment.Digest(ps) == rec.Content {
		sum := sha256.Sum256(data)
		rec.SHA256, rec.Bytes = hex.EncodeToString(sum[:]), int64(len(data))
		return rec, false, nil
	}
	entry, ok, err := a.getEntry(ctx, rec.Name)
	if err != nil {
		return rec, false, err
	}
	if ok {
		return entry, true, a.add(ctx, entry)
	}
	what := "other points"
	if derr != nil {
		what = "bytes that are not a segment (" + derr.Error() + ")"
	}
	return rec, false, tsstore.Errorf(tsstore.ErrConflict,
		"s3archive %s: segment %s: an object of %s holds the name but is not in the manifest "+
			"(left by a writer that crashed, or being committed by a concurrent one); objects are never overwritten",
		a.where, rec.Name, what)
}

// commit creates the manifest entry of rec, of the points of content, and
// returns the entry that the bucket then holds: rec's, or that of a
// concurrent writer who created it first (the same points, whatever the
// version of its digest: its info; other points: a conflict).
func (a *Archive) commit(ctx context.Context, rec manifest.Record, content segment.Content) (archive.SegmentInfo, error) {
	entry, ok, err := a.getEntry(ctx, rec.Name)
	if err != nil {
		return archive.SegmentInfo{}, err
	}
	if !ok {
		line := rec.Line()
		opts := minio.PutObjectOptions{ContentType: entryContentType, SendContentMd5: true}
		opts.SetMatchETagExcept("*")
		key := a.entryKey(rec.Name)
		err := a.try(ctx, func(ctx context.Context) error {
			_, err := a.client.PutObject(ctx, a.bucket, key, bytes.NewReader(line), int64(len(line)), opts)
			return err
		})
		if err != nil && errorCode(err) != "PreconditionFailed" {
			return archive.SegmentInfo{}, a.fail("append "+rec.Name+": create the manifest entry", err)
		}
		// Read it back: the stored entry is the truth, also on a server
		// that ignores If-None-Match and lets a racing writer replace it.
		if entry, ok, err = a.getEntry(ctx, rec.Name); err != nil {
			return archive.SegmentInfo{}, err
		}
		if !ok {
			return archive.SegmentInfo{}, tsstore.Errorf(tsstore.ErrUnavailable,
				"s3archive %s: append %s: the manifest entry just created is not there", a.where, rec.Name)
		}
	}
	if err := a.add(ctx, entry); err != nil {
		return archive.SegmentInfo{}, err
	}
	return entry.AppendAgain(content)
}

// exists reports whether the object key exists.
func (a *Archive) exists(ctx context.Context, key string) (bool, error) {
	var found bool
	err := a.try(ctx, func(ctx context.Context) error {
		_, err := a.client.StatObject(ctx, a.bucket, key, minio.StatObjectOptions{})
		if errorCode(err) == "NoSuchKey" {
			found = false
			return nil
		}
		found = err == nil
		return err
	})
	return found, err
}

// getObject reads the object key whole. With want >= 0, an object larger
// than want bytes is read up to want+1 bytes (enough to tell that it is
// too large).
func (a *Archive) getObject(ctx context.Context, key string, want int64) ([]byte, error) {
	var data []byte
	err := a.try(ctx, func(ctx context.Context) error {
		obj, err := a.client.GetObject(ctx, a.bucket, key, minio.GetObjectOptions{})
		if err != nil {
			return err
		}
		defer obj.Close()
		var buf bytes.Buffer
		var r io.Reader = obj
		if want >= 0 {
			buf.Grow(int(want) + bytes.MinRead)
			r = io.LimitReader(obj, want+1)
		}
		if _, err := buf.ReadFrom(r); err != nil {
			return err
		}
		data = buf.Bytes()
		return nil
	})
	return data, err
}

// getEntry reads the manifest entry of name; ok is false when there is
// none.
func (a *Archive) getEntry(ctx context.Context, name string) (_ manifest.Record, ok bool, _ error) {
	key := a.entryKey(name)
	data, err := a.getObject(ctx, key, 64<<10)
	if errorCode(err) == "NoSuchKey" {
		return manifest.Record{}, false, nil
	}
	if err != nil {
		return manifest.Record{}, false, a.fail("read manifest entry "+key, err)
	}
	recs, n, perr := manifest.Parse(data, 1)
	if perr == nil && (len(recs) != 1 || n != len(data)) {
		perr = errNotOneRecord
	}
	if perr == nil && recs[0].Name != name {
		perr = errOtherName
	}
	if perr != nil {
		return manifest.Record{}, false, tsstore.Errorf(archive.ErrCorrupt, "s3archive %s: manifest entry %s: %w", a.where, key, perr)
	}
	return recs[0], true, nil
}
