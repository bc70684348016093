// Package segment is the file format of archive segments, shared by the
// archive backends: the Parquet schema of a point, the canonical order and
// content digest of a segment's points, and encoding and decoding.
//
// A segment is an Apache Parquet file whose rows are points, sorted by
// Compare (time first), with the schema
//
//	message hourglass_point {
//	  required int64 time (TIMESTAMP(MILLIS,true));
//	  required binary metric (STRING);
//	  required group labels (MAP) {
//	    repeated group key_value {
//	      required binary key (STRING);
//	      required binary value (STRING);
//	    }
//	  }
//	  required double value;
//	}
//
// Labels are a Parquet MAP, the standard logical type for name/value pairs:
// DuckDB, Spark, Athena and pyarrow read it as map<string,string> and query
// it as labels['merchant'], whereas a bare repeated key/value group is read
// as a list of structs and a JSON string hides the labels from the reader's
// type system. Within a row the keys are sorted, as tsstore.Labels are.
// Pages are zstd-compressed; time is delta-encoded, metric and labels
// dictionary-encoded, value byte-stream-split (Parquet's BYTE_STREAM_SPLIT,
// format 2.8, which DuckDB reads since 0.10, Trino (so Athena engine 3)
// since 2022, Spark through parquet-mr 1.12, Arrow and parquet-go; files
// of earlier versions have plain values and read the same); the label
// columns carry no page bounds (a min and max label across series prune
// nothing). The file's key/value metadata records the segment name
// (KeyName), the content digest (KeyContent) and the format version
// (KeyFormat), which names the schema and the metadata, not the pages'
// encodings (each page says its own).
//
// Files are written by Batch.Encode, this package's own writer of the
// schema (see encode.go), with data pages v2 and no page index; files
// written before it by parquet.Writer (with a page index) read the same.
package segment

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"

	"github.com/hourglass-io/hourglass/tsstore"
)

// Keys of the Parquet key/value metadata of a segment file.
const (
	KeyName    = "hourglass.segment"
	KeyContent = "hourglass.content_sha256"
	KeyFormat  = "hourglass.format"
	// Format is the value of KeyFormat written by this package.
	Format = "1"
)

// DefaultRowGroupRows is the number of rows per Parquet row group.
const DefaultRowGroupRows = 1 << 20

// Row is the Parquet row of one point.
type Row struct {
	Time   int64             `parquet:"time,timestamp(millisecond),delta"`
	Metric string            `parquet:"metric,dict"`
	Labels map[string]string `parquet:"labels" parquet-key:",dict" parquet-value:",dict"`
	Value  float64           `parquet:"value,split"`
}

// Schema is the Parquet schema of a segment.
var Schema = parquet.NewSchema("hourglass_point", parquet.SchemaOf(Row{}))

// Compare orders points canonically: by timestamp, metric, labels, value
// (and the sign of zero), so that a segment's bytes and digest do not depend
// on the order in which its points were given.
func Compare(a, b *tsstore.Point) int {
	if c := cmp.Compare(a.Timestamp, b.Timestamp); c != 0 {
		return c
	}
	if c := strings.Compare(a.Metric, b.Metric); c != 0 {
		return c
	}
	if c := a.Labels.Compare(b.Labels); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Value, b.Value); c != 0 {
		return c
	}
	return cmp.Compare(math.Float64bits(a.Value), math.Float64bits(b.Value))
}

// Sorted returns a copy of ps (the slice, not the labels) sorted by Compare.
func Sorted(ps []tsstore.Point) []tsstore.Point { return Prepare(ps).Points() }

// EncodeOptions tunes Batch.Encode; the zero value is the default.
type EncodeOptions struct {
	// RowGroupRows is the number of rows per row group; 0 means
	// DefaultRowGroupRows.
	RowGroupRows int

	pageRows int // rows per data page; 0 means defaultPageRows (tests make small pages)
	// zstdLevel, when not 0, is the compression level instead of
	// zstdLevel (the benchmark compares them).
	zstdLevel zstd.EncoderLevel
}

// ErrFormat reports a file that is not a segment of the expected schema.
var ErrFormat = errors.New("not an hourglass segment")

// Reader reads the points of a segment file in file order. Not safe for
// concurrent use.
type Reader struct {
	file                                 *parquet.File
	rowGroup                             int
	rows                                 parquet.Rows
	buf                                  []parquet.Row
	n, i                                 int
	colTime, colMetric, colKey, colLabel int
	colValue                             int
	strs                                 map[string]string
	sets                                 map[string]tsstore.Labels
	key                                  []byte
	names, values                        [][]byte
	err                                  error
}

// NewReader opens the segment file r of size bytes.
func NewReader(r io.ReaderAt, size int64) (*Reader, error) {
	f, err := parquet.OpenFile(r, size, parquet.SkipBloomFilters(true), parquet.ReadBufferSize(256<<10))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	rd := &Reader{file: f, strs: make(map[string]string), sets: make(map[string]tsstore.Labels)}
	s := f.Schema()
	for _, c := range []struct {
		dst  *int
		path []string
		kind parquet.Kind
	}{
		{&rd.colTime, []string{"time"}, parquet.Int64},
		{&rd.colMetric, []string{"metric"}, parquet.ByteArray},
		{&rd.colKey, []string{"labels", "key_value", "key"}, parquet.ByteArray},
		{&rd.colLabel, []string{"labels", "key_value", "value"}, parquet.ByteArray},
		{&rd.colValue, []string{"value"}, parquet.Double},
	} {
		leaf, ok := s.Lookup(c.path...)
		if !ok || leaf.Node.Type().Kind() != c.kind {
			return nil, fmt.Errorf("%w: no column %s of type %v in schema %s", ErrFormat, strings.Join(c.path, "."), c.kind, s)
		}
		*c.dst = leaf.ColumnIndex
	}
	rd.buf = make([]parquet.Row, 512)
	return rd, nil
}

// Lookup returns the value of a key of the file's key/value metadata.
func (r *Reader) Lookup(key string) (string, bool) { return r.file.Lookup(key) }

// NumRows returns the number of rows of the file.
func (r *Reader) NumRows() int64 { return r.file.NumRows() }

// Next returns the next point, or io.EOF after the last. The labels of the
// points returned may share memory with each other; they are never modified.
func (r *Reader) Next() (tsstore.Point, error) {
	for r.i >= r.n {
		if err := r.fill(); err != nil {
			return tsstore.Point{}, err
		}
	}
	row := r.buf[r.i]
	r.i++
	return r.decode(row)
}

func (r *Reader) fill() error {
	if r.err != nil {
		return r.err
	}
	if r.rows == nil {
		rgs := r.file.RowGroups()
		if r.rowGroup >= len(rgs) {
			r.err = io.EOF
			return r.err
		}
		r.rows = rgs[r.rowGroup].Rows()
		r.rowGroup++
	}
	n, err := r.rows.ReadRows(r.buf)
	r.n, r.i = n, 0
	if err == io.EOF {
		cerr := r.rows.Close()
		r.rows = nil
		if cerr != nil {
			r.err = fmt.Errorf("%w: %w", ErrFormat, cerr)
		}
		return nil
	}
	if err != nil {
		r.err = fmt.Errorf("%w: %w", ErrFormat, err)
		return r.err
	}
	return nil
}

func (r *Reader) str(b []byte) string {
	if s, ok := r.strs[string(b)]; ok {
		return s
	}
	s := string(b)
	r.strs[s] = s
	return s
}

func (r *Reader) decode(row parquet.Row) (tsstore.Point, error) {
	var p tsstore.Point
	r.names, r.values = r.names[:0], r.values[:0]
	r.key = r.key[:0]
	seen := 0
	for _, v := range row {
		switch v.Column() {
		case r.colTime:
			p.Timestamp = v.Int64()
			seen |= 1
		case r.colMetric:
			p.Metric = r.str(v.ByteArray())
			seen |= 2
		case r.colKey:
			if !v.IsNull() {
				b := v.ByteArray()
				r.names = append(r.names, b)
				r.key = append(r.key, b...)
				r.key = append(r.key, 0xfe)
			}
		case r.colLabel:
			if !v.IsNull() {
				b := v.ByteArray()
				r.values = append(r.values, b)
				r.key = append(r.key, b...)
				r.key = append(r.key, 0xff)
			}
		case r.colValue:
			p.Value = v.Double()
			seen |= 4
		}
	}
	if seen != 7 || len(r.names) != len(r.values) {
		return p, fmt.Errorf("%w: malformed row %v", ErrFormat, row)
	}
	if len(r.names) > 0 {
		// One lookup of the whole label set: its strings are made (and
		// shared) only the first time it is seen.
		ls, ok := r.sets[string(r.key)]
		if !ok {
			ls = make(tsstore.Labels, len(r.names))
			for i := range r.names {
				ls[i] = tsstore.Label{Name: r.str(r.names[i]), Value: r.str(r.values[i])}
			}
			slices.SortFunc(ls, func(a, b tsstore.Label) int { return strings.Compare(a.Name, b.Name) })
			r.sets[string(r.key)] = ls
		}
		p.Labels = ls
	}
	return p, nil
}

// Close releases the reader's row buffers. It does not close the
// underlying file.
func (r *Reader) Close() error {
	if r.rows != nil {
		err := r.rows.Close()
		r.rows = nil
		return err
	}
	return nil
}

// ReadAll decodes every point of the segment file r of size bytes, in file
// order. Backends use it to compare the content of a stored file with the
// points of an append (Prepare(ps).Digest()).
func ReadAll(r io.ReaderAt, size int64) ([]tsstore.Point, error) {
	rd, err := NewReader(r, size)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	ps := make([]tsstore.Point, 0, rd.NumRows())
	for {
		p, err := rd.Next()
		if err == io.EOF {
			return ps, nil
		}
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
}
