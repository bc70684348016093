// Package manifest is the record format of an archive's append-only
// manifest, shared by the archive backends, and an in-memory index of it.
//
// The manifest is a sequence of lines, one JSON object (a Record) per
// segment, each ending in '\n', in the order the segments were committed.
// A line is only ever appended. A writer that crashes may leave the last
// line torn (no newline, or not valid JSON); Parse stops before it and a
// writer drops it before appending. An invalid line followed by more lines
// is corruption and an error.
package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/tsstore/archive/internal/segment"
)

// Record is one manifest line: a committed segment.
type Record struct {
	Name       string `json:"name"`
	Source     string `json:"source"`
	Generation uint64 `json:"generation"`
	Shard      int    `json:"shard"`
	MinTime    int64  `json:"min_time"`
	MaxTime    int64  `json:"max_time"`
	Points     int64  `json:"points"`
	Bytes      int64  `json:"bytes"`
	// SHA256 is the hex SHA-256 of the segment file.
	SHA256 string `json:"sha256"`
	// Content is the content digest of the segment's points
	// (segment.Digest), of the version its writer computed (see
	// segment.VersionOf: records of older writers hold version 1), which
	// decides whether a second append of the name is a no-op or a
	// conflict.
	Content string    `json:"content_sha256"`
	Created time.Time `json:"created"`
}

// NewRecord returns the record of a segment.
func NewRecord(id archive.SegmentID, points, bytes int64, sha, content string, created time.Time) Record {
	return Record{
		Name: id.Name(), Source: id.Source, Generation: id.Generation, Shard: id.Shard,
		MinTime: id.MinTime, MaxTime: id.MaxTime, Points: points, Bytes: bytes,
		SHA256: sha, Content: content, Created: created.UTC(),
	}
}

// ID returns the segment's id.
func (r *Record) ID() archive.SegmentID {
	return archive.SegmentID{Source: r.Source, Generation: r.Generation, Shard: r.Shard, MinTime: r.MinTime, MaxTime: r.MaxTime}
}

// Info returns the record as a SegmentInfo.
func (r *Record) Info() archive.SegmentInfo {
	return archive.SegmentInfo{Name: r.Name, ID: r.ID(), Points: r.Points, Bytes: r.Bytes, Checksum: r.SHA256, Created: r.Created}
}

// AppendAgain answers an Append of the name of r, which is already
// listed, with points of content c: r's info when they are r's points
// (compared in the version of r's digest: a retried append is a no-op,
// also of a segment written before version 2), otherwise an error of kind
// tsstore.ErrConflict naming the segment. When r's digest is of a version
// this program does not know (a newer writer's), the points cannot be
// compared: an error of kind tsstore.ErrUnavailable, until a program
// that knows it appends them.
func (r *Record) AppendAgain(c segment.Content) (archive.SegmentInfo, error) {
	same, err := c.Same(r.Content)
	if err != nil {
		return archive.SegmentInfo{}, tsstore.Errorf(tsstore.ErrUnavailable, "segment %s exists: %w", r.Name, err)
	}
	if !same {
		return archive.SegmentInfo{}, tsstore.Errorf(tsstore.ErrConflict,
			"segment %s exists with other points (content %s, appended %s)", r.Name, r.Content, c.Digest)
	}
	return r.Info(), nil
}

// Line returns the record as a manifest line, ending in '\n'.
func (r *Record) Line() []byte {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err) // a struct of strings and numbers always marshals
	}
	return append(b, '\n')
}

// plainRecord is a Record without its JSON methods.
type plainRecord Record

// recordJSON is a record as JSON: content_sha256 always holds the bare 64
// hex digits of the content digest, and content_version its version
// from version 2 (absent: version 1). A program older than version 2
// ignores the field and still parses every line (it would take the
// version 2 digest of a name for other points: an append of it conflicts,
// nothing is cut or lost), where a "v2:" prefix in content_sha256 would
// make it take a last line for a torn one and cut it.
type recordJSON struct {
	plainRecord
	ContentVersion int `json:"content_version,omitempty"`
}

// MarshalJSON writes r as recordJSON.
func (r Record) MarshalJSON() ([]byte, error) {
	w := recordJSON{plainRecord: plainRecord(r)}
	if v, err := segment.VersionOf(r.Content); err == nil && v > segment.DigestV1 {
		_, sum, _ := strings.Cut(r.Content, ":")
		w.Content, w.ContentVersion = sum, v
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads r from recordJSON.
func (r *Record) UnmarshalJSON(data []byte) error {
	var w recordJSON
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*r = Record(w.plainRecord)
	if w.ContentVersion != 0 {
		// check refuses a version below 2 and a digest that is not 64
		// hex digits.
		r.Content = "v" + strconv.Itoa(w.ContentVersion) + ":" + r.Content
	}
	return nil
}

func (r *Record) check() error {
	id := r.ID()
	if err := id.Validate(); err != nil {
		return err
	}
	if r.Name != id.Name() {
		return fmt.Errorf("name %q does not match its id (%q)", r.Name, id.Name())
	}
	if r.Points <= 0 || r.Bytes <= 0 || len(r.SHA256) != 64 {
		return fmt.Errorf("segment %s: missing points, bytes or checksums", r.Name)
	}
	if _, err := segment.VersionOf(r.Content); err != nil {
		return fmt.Errorf("segment %s: %w", r.Name, err)
	}
	return nil
}

// Parse parses the manifest bytes data, which start at line number line
// (1-based, for messages). It returns the records of the complete, valid
// lines and the number of bytes they take; the rest (a torn last line) is
// left unconsumed. A line that is invalid and followed by another line is
// corruption: the error names its line number.
func Parse(data []byte, line int) (recs []Record, n int, err error) {
	for n < len(data) {
		end := bytes.IndexByte(data[n:], '\n')
		if end < 0 {
			return recs, n, nil // torn: no newline yet
		}
		raw := data[n : n+end]
		var r Record
		err := json.Unmarshal(raw, &r)
		if err == nil {
			err = r.check()
		}
		if err != nil {
			if n+end+1 == len(data) {
				return recs, n, nil // torn last line
			}
			return recs, n, fmt.Errorf("manifest line %d is corrupt: %w", line, err)
		}
		recs = append(recs, r)
		n += end + 1
		line++
	}
	return recs, n, nil
}

// Index holds the records of a manifest by name. Not safe for concurrent
// use.
type Index struct {
	byName map[string]int
	recs   []Record
	stats  archive.Stats
}

// NewIndex returns an empty index.
func NewIndex() *Index { return &Index{byName: make(map[string]int)} }

// Len returns the number of records.
func (x *Index) Len() int { return len(x.recs) }

// ErrOtherVersion reports a second record of an indexed name whose content
// digest is of another version than the first's: the digests cannot tell
// whether the points are the same; the segment's points can (see
// Index.Add).
var ErrOtherVersion = errors.New("content digests of different versions")

// Add adds r. A second record of a name already indexed is ignored when it
// has the same content digest (the same record read again, or a writer
// that lost the race to a concurrent writer of the same segment) and an
// error when it has another of the same version (other points). When
// the two digests are of different versions (writers of both versions
// raced), Add indexes nothing and returns an error wrapping
// ErrOtherVersion: the caller decides from the segment's points (both
// digests name them, or the manifest is corrupt), as only it can read
// them.
func (x *Index) Add(r Record) error {
	if i, ok := x.byName[r.Name]; ok {
		had := x.recs[i].Content
		if had == r.Content {
			return nil
		}
		v0, _ := segment.VersionOf(had)
		if v1, _ := segment.VersionOf(r.Content); v0 != v1 {
			return fmt.Errorf("manifest lists segment %s twice, with content %s and %s: %w", r.Name, had, r.Content, ErrOtherVersion)
		}
		return fmt.Errorf("manifest lists segment %s twice with different content", r.Name)
	}
	x.byName[r.Name] = len(x.recs)
	x.recs = append(x.recs, r)
	s := &x.stats
	if s.Segments == 0 || r.MinTime < s.MinTime {
		s.MinTime = r.MinTime
	}
	if s.Segments == 0 || r.MaxTime > s.MaxTime {
		s.MaxTime = r.MaxTime
	}
	s.Segments++
	s.Points += r.Points
	s.Bytes += r.Bytes
	return nil
}

// Get returns the record of name.
func (x *Index) Get(name string) (Record, bool) {
	i, ok := x.byName[name]
	if !ok {
		return Record{}, false
	}
	return x.recs[i], true
}

// Overlapping returns the records whose [MinTime, MaxTime] overlaps
// [from, to), sorted by name.
func (x *Index) Overlapping(from, to int64) []Record {
	var out []Record
	for i := range x.recs {
		if r := &x.recs[i]; r.MinTime < to && r.MaxTime >= from {
			out = append(out, *r)
		}
	}
	slices.SortFunc(out, func(a, b Record) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Stats returns the totals of the index.
func (x *Index) Stats() archive.Stats { return x.stats }
