package dirarchive

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hourglass-io/hourglass/internal/gate"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/tsstore/archive/internal/manifest"
	"github.com/hourglass-io/hourglass/tsstore/archive/internal/scan"
	"github.com/hourglass-io/hourglass/tsstore/archive/internal/segment"
)

// Names of the files and directories in an archive directory besides the
// segments.
const (
	ManifestFile = "manifest.jsonl"
	lockFile     = ".lock"
	tmpDir       = ".tmp"
)

// DefaultRowGroupRows is the default number of points per Parquet row
// group.
const DefaultRowGroupRows = segment.DefaultRowGroupRows

// Options configures an Archive. The zero value (or nil) means defaults.
type Options struct {
	// RowGroupRows is the number of points per Parquet row group of a
	// segment; 0 means DefaultRowGroupRows.
	RowGroupRows int
	// Now returns the time recorded as a segment's Created; nil means
	// time.Now.
	Now func() time.Time
}

// Archive is an archive.Archive in a directory. It is safe for concurrent
// use by goroutines and by processes (see the package comment).
type Archive struct {
	dir  string
	opts Options

	lock     *os.File // <dir>/.lock, flocked during commits
	manifest *os.File // opened O_APPEND
	tmp      string   // this Archive's temporary directory
	tmpLock  *os.File // flocked while tmp is in use
	tmpSeq   atomic.Uint64

	// commitMu serialises this process's commits: flock(2) excludes other
	// open files, not goroutines sharing one.
	commitMu sync.Mutex

	calls gate.Gate // calls in progress; closed by Close

	mu     sync.Mutex // guards the fields below
	index  *manifest.Index
	offset int64 // bytes of the manifest parsed into index
	line   int   // number of the next manifest line
}

var (
	_ archive.Archive         = (*Archive)(nil)
	_ archive.ColumnsAppender = (*Archive)(nil)
)

// Open opens the archive in dir, creating the directory if needed. Its
// manifest is read, and a torn last line left by a crash is cut off.
func Open(dir string, opts *Options) (*Archive, error) {
	a := &Archive{dir: dir, index: manifest.NewIndex(), line: 1}
	if opts != nil {
		a.opts = *opts
	}
	if a.opts.Now == nil {
		a.opts.Now = time.Now
	}
	if err := a.open(); err != nil {
		a.release()
		return nil, err
	}
	return a, nil
}

func (a *Archive) open() error {
	if err := os.MkdirAll(filepath.Join(a.dir, tmpDir), 0o755); err != nil {
		return unavailable("open %s: %w", a.dir, err)
	}
	var err error
	if a.lock, err = os.OpenFile(filepath.Join(a.dir, lockFile), os.O_CREATE|os.O_RDWR, 0o644); err != nil {
		return unavailable("open %s: %w", a.dir, err)
	}
	if a.manifest, err = os.OpenFile(filepath.Join(a.dir, ManifestFile), os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644); err != nil {
		return unavailable("open %s: %w", a.dir, err)
	}
	if err := syncDir(a.dir); err != nil {
		return err
	}
	// Under the directory's lock: another process's cleanTemp must never
	// see this process's temporary directory before its lock file is
	// locked (it would take it for a dead process's and remove it). The
	// manifest is read under the lock too, so that a torn tail is cut.
	unlock, err := a.lockDir()
	if err != nil {
		return err
	}
	defer unlock()
	if err := a.cleanTemp(); err != nil {
		return err
	}
	if a.tmp, err = os.MkdirTemp(filepath.Join(a.dir, tmpDir), "p"+strconv.Itoa(os.Getpid())+"-"); err != nil {
		return unavailable("open %s: %w", a.dir, err)
	}
	if a.tmpLock, err = os.Create(filepath.Join(a.tmp, lockFile)); err != nil {
		return unavailable("open %s: %w", a.dir, err)
	}
	if err := flock(a.tmpLock, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return unavailable("open %s: lock %s: %w", a.dir, a.tmp, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.refreshLocked(true)
}

// cleanTemp removes the temporary directories of processes that are gone
// (whose lock file is not locked).
func (a *Archive) cleanTemp() error {
	root := filepath.Join(a.dir, tmpDir)
	ents, err := os.ReadDir(root)
	if err != nil {
		return unavailable("open %s: %w", a.dir, err)
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		d := filepath.Join(root, e.Name())
		f, err := os.Open(filepath.Join(d, lockFile))
		if err == nil {
			err = flock(f, syscall.LOCK_EX|syscall.LOCK_NB)
			if err == nil {
				_ = os.RemoveAll(d) // owner gone; the lock dies with f
			}
			_ = f.Close()
		} else if errors.Is(err, fs.ErrNotExist) {
			// A process died between creating the directory and its lock.
			_ = os.RemoveAll(d)
		}
	}
	return nil
}

// lockDir takes the directory's commit lock.
func (a *Archive) lockDir() (unlock func(), err error) {
	if err := flock(a.lock, syscall.LOCK_EX); err != nil {
		return nil, unavailable("lock %s: %w", a.dir, err)
	}
	return func() { _ = flock(a.lock, syscall.LOCK_UN) }, nil
}

func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			return err
		}
	}
}

// refreshLocked parses the manifest lines appended since the last call
// (by this or another process). With cut (only under the directory lock),
// a torn last line is truncated away. a.mu must be held.
func (a *Archive) refreshLocked(cut bool) error {
	fi, err := a.manifest.Stat()
	if err != nil {
		return unavailable("read manifest of %s: %w", a.dir, err)
	}
	size := fi.Size()
	if size < a.offset {
		return tsstore.Errorf(archive.ErrCorrupt, "manifest of %s shrank from %d to %d bytes", a.dir, a.offset, size)
	}
	if size > a.offset {
		buf := make([]byte, size-a.offset)
		if _, err := a.manifest.ReadAt(buf, a.offset); err != nil {
			return unavailable("read manifest of %s: %w", a.dir, err)
		}
		recs, n, err := manifest.Parse(buf, a.line)
		for _, r := range recs {
			if aerr := a.index.Add(r); aerr != nil && err == nil {
				err = aerr
			}
		}
		a.offset += int64(n)
		a.line += len(recs)
		if err != nil {
			// A name listed twice is corruption too, also with content
			// digests of different versions (manifest.ErrOtherVersion),
			// which cannot be compared: writers of every version commit
			// under the directory's lock after reading the whole
			// manifest, so they never list a listed name; a second line
			// comes from outside (manifests joined by hand).
			return tsstore.Errorf(archive.ErrCorrupt, "manifest of %s: %w", a.dir, err)
		}
	}
	if cut && size > a.offset {
		if err := a.manifest.Truncate(a.offset); err != nil {
			return unavailable("cut torn manifest line of %s: %w", a.dir, err)
		}
		if err := a.manifest.Sync(); err != nil {
			return unavailable("sync manifest of %s: %w", a.dir, err)
		}
	}
	return nil
}

// enter starts a call; leave ends it.
func (a *Archive) enter(ctx context.Context) error {
	if !a.calls.Enter() {
		return tsstore.Errorf(tsstore.ErrClosed, "dirarchive %s is closed", a.dir)
	}
	if err := ctx.Err(); err != nil {
		a.calls.Leave()
		return err
	}
	return nil
}

func (a *Archive) leave() { a.calls.Leave() }

func (a *Archive) lookup(name string) (manifest.Record, bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.refreshLocked(false); err != nil {
		return manifest.Record{}, false, err
	}
	r, ok := a.index.Get(name)
	return r, ok, nil
}

// Append implements archive.Archive.
func (a *Archive) Append(ctx context.Context, id archive.SegmentID, points []tsstore.Point) (archive.SegmentInfo, error) {
	if err := a.enter(ctx); err != nil {
		return archive.SegmentInfo{}, err
	}
	defer a.leave()
	return a.appendColumns(ctx, id, segment.ColumnsOf(points))
}

// AppendColumns implements archive.ColumnsAppender.
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
	if r, ok, err := a.lookup(name); err != nil {
		return archive.SegmentInfo{}, err
	} else if ok {
		return r.AppendAgain(content)
	}
	tmp, sum, size, err := a.writeTemp(name, content.Digest, batch)
	if err != nil {
		return archive.SegmentInfo{}, err
	}
	defer os.Remove(tmp) // the final name is a second link
	if err := ctx.Err(); err != nil {
		return archive.SegmentInfo{}, err
	}
	rec := manifest.NewRecord(id, int64(batch.Len()), size, sum, content.Digest, a.opts.Now())
	return a.commit(rec, tmp, content)
}

// writeTemp encodes the segment into a new, fsynced temporary file and
// returns its path, SHA-256 and size.
func (a *Archive) writeTemp(name, content string, batch *segment.Batch) (path, sum string, size int64, err error) {
	path = filepath.Join(a.tmp, "seg-"+strconv.FormatUint(a.tmpSeq.Add(1), 10)+".tmp")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o444)
	if err != nil {
		return "", "", 0, unavailable("append %s: %w", name, err)
	}
	fail := func(err error) (string, string, int64, error) {
		_ = f.Close()
		_ = os.Remove(path)
		return "", "", 0, unavailable("append %s: %w", name, err)
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	bw := bufio.NewWriterSize(cw, 256<<10)
	if err := batch.Encode(bw, name, content, segment.EncodeOptions{RowGroupRows: a.opts.RowGroupRows}); err != nil {
		return fail(err)
	}
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return "", "", 0, unavailable("append %s: %w", name, err)
	}
	return path, hex.EncodeToString(h.Sum(nil)), cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// commit makes the temporary file tmp, of the points of content, the
// segment of rec and lists it in the manifest, under the directory lock.
func (a *Archive) commit(rec manifest.Record, tmp string, content segment.Content) (archive.SegmentInfo, error) {
	a.commitMu.Lock()
	defer a.commitMu.Unlock()
	unlock, err := a.lockDir()
	if err != nil {
		return archive.SegmentInfo{}, err
	}
	defer unlock()
	a.mu.Lock()
	err = a.refreshLocked(true)
	r, ok := a.index.Get(rec.Name)
	a.mu.Unlock()
	if err != nil {
		return archive.SegmentInfo{}, err
	}
	if ok { // a concurrent writer committed the name first
		return r.AppendAgain(content)
	}
	final := a.path(rec.Name)
	if err := a.mkdirs(filepath.Dir(final)); err != nil {
		return archive.SegmentInfo{}, err
	}
	if err := os.Link(tmp, final); errors.Is(err, fs.ErrExist) {
		// Not in the manifest, yet there: left by a writer that crashed
		// between link and manifest (we hold the lock, so it is not
		// committing now).
		if rec, err = a.orphan(rec, tmp, final); err != nil {
			return archive.SegmentInfo{}, err
		}
	} else if err != nil {
		return archive.SegmentInfo{}, unavailable("append %s: %w", rec.Name, err)
	}
	if err := syncDir(filepath.Dir(final)); err != nil {
		return archive.SegmentInfo{}, err
	}
	line := rec.Line()
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.manifest.Write(line); err != nil {
		// Cut what may have been written; the segment stays unlisted.
		_ = a.manifest.Truncate(a.offset)
		return archive.SegmentInfo{}, unavailable("append %s: write manifest: %w", rec.Name, err)
	}
	if err := a.manifest.Sync(); err != nil {
		// The line may or may not be durable: leave it, a later refresh
		// reads it if it is there.
		return archive.SegmentInfo{}, unavailable("append %s: sync manifest: %w", rec.Name, err)
	}
	if err := a.index.Add(rec); err != nil {
		return archive.SegmentInfo{}, tsstore.Errorf(archive.ErrCorrupt, "manifest of %s: %w", a.dir, err)
	}
	a.offset += int64(len(line))
	a.line++
	return rec.Info(), nil
}

// orphan handles an unlisted segment file at final: when its points are
// rec's, it is adopted (rec gets its checksum and size; the file's
// KeyContent may be a digest of an older version, of the same points);
// otherwise it is renamed aside, never removed, and tmp linked in its
// place.
func (a *Archive) orphan(rec manifest.Record, tmp, final string) (manifest.Record, error) {
	sum, size, ps, err := fileContent(final)
	// rec is this append's: its digest is of the current version.
	if err == nil && segment.Digest(ps) == rec.Content {
		rec.SHA256, rec.Bytes = sum, size
		return rec, nil
	}
	aside := final + ".orphan-" + strconv.FormatInt(time.Now().UnixNano(), 10)
	if err := os.Rename(final, aside); err != nil {
		return rec, unavailable("append %s: move unlisted file aside: %w", rec.Name, err)
	}
	if err := os.Link(tmp, final); err != nil {
		return rec, unavailable("append %s: %w", rec.Name, err)
	}
	return rec, nil
}

// fileContent returns the SHA-256, size and points of a segment file.
func fileContent(path string) (sum string, size int64, ps []tsstore.Point, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, nil, err
	}
	defer f.Close()
	h := sha256.New()
	if size, err = io.Copy(h, f); err != nil {
		return "", 0, nil, err
	}
	if ps, err = segment.ReadAll(f, size); err != nil {
		return "", 0, nil, err
	}
	return hex.EncodeToString(h.Sum(nil)), size, ps, nil
}

func (a *Archive) path(name string) string { return filepath.Join(a.dir, filepath.FromSlash(name)) }

// mkdirs creates dir and fsyncs the directories that now hold new entries.
func (a *Archive) mkdirs(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	// Find the deepest existing ancestor.
	top := dir
	for {
		parent := filepath.Dir(top)
		if _, err := os.Stat(parent); err == nil || parent == top {
			break
		}
		top = parent
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return unavailable("create %s: %w", dir, err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if err := syncDir(filepath.Dir(d)); err != nil {
			return err
		}
		if d == top {
			return nil
		}
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return unavailable("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return unavailable("sync directory %s: %w", dir, err)
	}
	return nil
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
	recs, err := a.overlapping(from, to)
	if err != nil {
		return nil, err
	}
	out := make([]archive.SegmentInfo, len(recs))
	for i := range recs {
		out[i] = recs[i].Info()
	}
	return out, nil
}

func (a *Archive) overlapping(from, to int64) ([]manifest.Record, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.refreshLocked(false); err != nil {
		return nil, err
	}
	return a.index.Overlapping(from, to), nil
}

// Read implements archive.Archive.
func (a *Archive) Read(ctx context.Context, name string, fn func(tsstore.Point) error) error {
	if err := a.enter(ctx); err != nil {
		return err
	}
	defer a.leave()
	r, ok, err := a.lookup(name)
	if err != nil {
		return err
	}
	if !ok {
		return tsstore.Errorf(tsstore.ErrInvalid, "segment %q in %s: %w", name, a.dir, archive.ErrNotFound)
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
	recs, err := a.overlapping(f.From, f.To)
	if err != nil {
		return err
	}
	return scan.Merge(ctx, f, recs, a.openSegment, fn)
}

// openSegment verifies the segment of r against its record and opens it.
func (a *Archive) openSegment(ctx context.Context, r manifest.Record) (scan.Cursor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(a.path(r.Name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, tsstore.Errorf(archive.ErrCorrupt, "segment %s: file missing: %w", r.Name, err)
	}
	if err != nil {
		return nil, unavailable("segment %s: %w", r.Name, err)
	}
	c, err := verify(f, r)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return c, nil
}

func verify(f *os.File, r manifest.Record) (scan.Cursor, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, unavailable("segment %s: %w", r.Name, err)
	}
	if fi.Size() != r.Bytes {
		return nil, tsstore.Errorf(archive.ErrCorrupt, "segment %s: file has %d bytes, the manifest says %d (truncated or replaced)", r.Name, fi.Size(), r.Bytes)
	}
	h := sha256.New()
	if err := hashFile(h, f, r.Bytes); err != nil {
		return nil, unavailable("segment %s: %w", r.Name, err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != r.SHA256 {
		return nil, tsstore.Errorf(archive.ErrCorrupt, "segment %s: SHA-256 %s, the manifest says %s", r.Name, sum, r.SHA256)
	}
	rd, err := segment.NewReader(f, r.Bytes)
	if err != nil {
		return nil, tsstore.Errorf(archive.ErrCorrupt, "segment %s: %w", r.Name, err)
	}
	return scan.Checked(&fileCursor{Reader: rd, f: f}, r), nil
}

func hashFile(h hash.Hash, f *os.File, size int64) error {
	buf := make([]byte, 256<<10)
	_, err := io.CopyBuffer(h, io.NewSectionReader(f, 0, size), buf)
	return err
}

type fileCursor struct {
	*segment.Reader
	f *os.File
}

func (c *fileCursor) Close() error {
	err := c.Reader.Close()
	if cerr := c.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Stat implements archive.Archive.
func (a *Archive) Stat(ctx context.Context) (archive.Stats, error) {
	if err := a.enter(ctx); err != nil {
		return archive.Stats{}, err
	}
	defer a.leave()
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.refreshLocked(false); err != nil {
		return archive.Stats{}, err
	}
	return a.index.Stats(), nil
}

// Dir returns the archive's directory.
func (a *Archive) Dir() string { return a.dir }

// Close waits for the calls in progress and releases the archive's files.
// Later calls fail with tsstore.ErrClosed; Close itself returns nil again.
func (a *Archive) Close() error {
	if !a.calls.Close() {
		return nil
	}
	return a.release()
}

func (a *Archive) release() error {
	var errs []error
	if a.tmp != "" {
		errs = append(errs, os.RemoveAll(a.tmp))
	}
	for _, f := range []*os.File{a.tmpLock, a.manifest, a.lock} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return unavailable("close %s: %w", a.dir, err)
	}
	return nil
}

func unavailable(format string, args ...any) error {
	return tsstore.Errorf(tsstore.ErrUnavailable, "dirarchive: "+format, args...)
}
