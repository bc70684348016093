package s3archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/tsstore/archive/internal/manifest"
	"github.com/hourglass-io/hourglass/tsstore/archive/internal/scan"
	"github.com/hourglass-io/hourglass/tsstore/archive/internal/segment"
)

var (
	errNotOneRecord = errors.New("not exactly one manifest record")
	errOtherName    = errors.New("the record is of another segment")
)

// refresh adds the manifest entries that other writers created to the
// index, unless Options.RefreshInterval says the index is fresh enough.
func (a *Archive) refresh(ctx context.Context) error {
	asked := time.Now()
	if iv := a.opts.RefreshInterval; iv > 0 {
		a.mu.Lock()
		fresh := asked.Sub(a.refreshed) < iv
		a.mu.Unlock()
		if fresh {
			return nil
		}
	}
	a.refreshMu.Lock()
	defer a.refreshMu.Unlock()
	a.mu.Lock()
	// A refresh that started after this call did (and has ended, as we
	// hold refreshMu) saw everything this one would.
	done := a.refreshed.After(asked)
	a.mu.Unlock()
	if done {
		return nil
	}
	return a.refreshLocked(ctx)
}

// refreshLocked lists the manifest and reads the entries that are not in
// the index. a.refreshMu must be held.
func (a *Archive) refreshLocked(ctx context.Context) error {
	start := time.Now()
	dir := a.prefix + ManifestDir
	var names []string
	after := ""
	err := a.try(ctx, func(ctx context.Context) error {
		lctx, cancel := context.WithCancel(ctx)
		defer cancel() // stops the listing goroutine on an early return
		for obj := range a.client.ListObjects(lctx, a.bucket, minio.ListObjectsOptions{Prefix: dir, Recursive: true, StartAfter: after}) {
			if obj.Err != nil {
				return obj.Err
			}
			after = obj.Key // a retry resumes after it
			if name, ok := strings.CutSuffix(strings.TrimPrefix(obj.Key, dir), ".json"); ok {
				names = append(names, name)
			}
		}
		return nil
	})
	if err != nil {
		return a.fail("list the manifest", err)
	}
	a.mu.Lock()
	names = slices.DeleteFunc(names, func(n string) bool { _, ok := a.index.Get(n); return ok })
	a.mu.Unlock()
	recs, err := a.getEntries(ctx, names)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if err := a.add(ctx, r); err != nil {
			return err
		}
	}
	a.mu.Lock()
	a.refreshed = start
	a.mu.Unlock()
	return nil
}

// getEntries reads the manifest entries of names, Options.ListParallelism
// at a time.
func (a *Archive) getEntries(ctx context.Context, names []string) ([]manifest.Record, error) {
	recs := make([]manifest.Record, len(names))
	errs := make([]error, len(names))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < min(a.opts.ListParallelism, len(names)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				var ok bool
				recs[i], ok, errs[i] = a.getEntry(ctx, names[i])
				if errs[i] == nil && !ok {
					// Listed, so created: never deleted by the archive.
					errs[i] = tsstore.Errorf(archive.ErrCorrupt, "s3archive %s: manifest entry of %s listed but missing", a.where, names[i])
				}
				if errs[i] != nil {
					cancel()
				}
			}
		}()
	}
feed:
	for i := range names {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return recs, nil
}

// Segments implements archive.Archive.
func (a *Archive) Segments(ctx context.Context, from, to int64) ([]archive.SegmentInfo, error) {
	if err := a.enter(ctx); err != nil {
		return nil, err
	}
	defer a.leave()
	if err := scan.ValidateRange(from, to); err != nil {
		return nil, err
	}
	recs, err := a.overlapping(ctx, from, to)
	if err != nil {
		return nil, err
	}
	out := make([]archive.SegmentInfo, len(recs))
	for i := range recs {
		out[i] = recs[i].Info()
	}
	return out, nil
}

func (a *Archive) overlapping(ctx context.Context, from, to int64) ([]manifest.Record, error) {
	if err := a.refresh(ctx); err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.index.Overlapping(from, to), nil
}

// Read implements archive.Archive.
func (a *Archive) Read(ctx context.Context, name string, fn func(tsstore.Point) error) error {
	if err := a.enter(ctx); err != nil {
		return err
	}
	defer a.leave()
	if err := a.refresh(ctx); err != nil {
		return err
	}
	r, ok := a.get(name)
	if !ok {
		return tsstore.Errorf(tsstore.ErrInvalid, "segment %q in %s: %w", name, a.where, archive.ErrNotFound)
	}
	c, err := a.openSegment(ctx, r)
	if err != nil {
		return err
	}
	defer c.Close()
	return scan.Each(ctx, c, fn)
}

// Scan implements archive.Archive.
func (a *Archive) Scan(ctx context.Context, r archive.ScanRequest, fn func(tsstore.Point) error) error {
	if err := a.enter(ctx); err != nil {
		return err
	}
	defer a.leave()
	f, err := scan.Compile(r)
	if err != nil {
		return err
	}
	recs, err := a.overlapping(ctx, f.From, f.To)
	if err != nil {
		return err
	}
	return scan.Merge(ctx, f, recs, a.openSegment, fn)
}

// openSegment downloads the segment of r, verifies it against r (size,
// SHA-256) and opens it.
func (a *Archive) openSegment(ctx context.Context, r manifest.Record) (scan.Cursor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, err := a.getObject(ctx, a.segmentKey(r.Name), r.Bytes)
	if errorCode(err) == "NoSuchKey" {
		return nil, tsstore.Errorf(archive.ErrCorrupt, "s3archive %s: segment %s: object missing: %w", a.where, r.Name, err)
	}
	if err != nil {
		return nil, a.fail("read segment "+r.Name, err)
	}
	if int64(len(data)) != r.Bytes {
		got := fmt.Sprint(len(data))
		if int64(len(data)) > r.Bytes {
			got = "more than " + fmt.Sprint(r.Bytes)
		}
		return nil, tsstore.Errorf(archive.ErrCorrupt, "s3archive %s: segment %s: object has %s bytes, the manifest says %d (truncated or replaced)",
			a.where, r.Name, got, r.Bytes)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != r.SHA256 {
		return nil, tsstore.Errorf(archive.ErrCorrupt, "s3archive %s: segment %s: SHA-256 %x, the manifest says %s", a.where, r.Name, sum, r.SHA256)
	}
	rd, err := segment.NewReader(bytes.NewReader(data), r.Bytes)
	if err != nil {
		return nil, tsstore.Errorf(archive.ErrCorrupt, "s3archive %s: segment %s: %w", a.where, r.Name, err)
	}
	return scan.Checked(rd, r), nil
}

// Stat implements archive.Archive.
func (a *Archive) Stat(ctx context.Context) (archive.Stats, error) {
	if err := a.enter(ctx); err != nil {
		return archive.Stats{}, err
	}
	defer a.leave()
	if err := a.refresh(ctx); err != nil {
		return archive.Stats{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.index.Stats(), nil
}
