package segment

import (
	"fmt"
	"io"
	"strings"
	"unsafe"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
)

// columns are the indexes of the schema's leaf columns.
type columns struct {
	time, metric, key, value, label int
}

var schemaColumns = func() columns {
	at := func(path ...string) int {
		leaf, ok := Schema.Lookup(path...)
		if !ok {
			panic("segment: no column " + strings.Join(path, "."))
		}
		return leaf.ColumnIndex
	}
	return columns{
		time: at("time"), metric: at("metric"), value: at("value"),
		key: at("labels", "key_value", "key"), label: at("labels", "key_value", "value"),
	}
}()

// bytesOf returns the bytes of s without copying them; Parquet only reads
// them.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// writerOptions are the Parquet writer's options for segment name with
// content digest content.
func writerOptions(name, content string) []parquet.WriterOption {
	return []parquet.WriterOption{
		Schema,
		parquet.Compression(&zstd.Codec{}),
		// The label columns' bounds (what a reader prunes pages by) mean
		// nothing across series: they are left out of the page index and
		// the page headers. The time's and the metric's are kept.
		parquet.SkipPageBounds("labels", "key_value", "key"),
		parquet.SkipPageBounds("labels", "key_value", "value"),
		parquet.SkipPageStatistics("labels", "key_value", "key"),
		parquet.SkipPageStatistics("labels", "key_value", "value"),
		parquet.CreatedBy("hourglass", "", ""),
		parquet.KeyValueMetadata(KeyName, name),
		parquet.KeyValueMetadata(KeyContent, content),
		parquet.KeyValueMetadata(KeyFormat, Format),
	}
}

// encodeValues is the encoder before the segment writer (the baseline of
// its tests and benchmark): it writes the batch as a segment file named
// name with content digest content through parquet.Writer, column by
// column, each series' values (its metric, its labels as map entries with
// their repetition and definition levels) made once and repeated for its
// points.
func (b *Batch) encodeValues(w io.Writer, name, content string, o EncodeOptions) error {
	rg := o.RowGroupRows
	if rg <= 0 {
		rg = DefaultRowGroupRows
	}
	col := schemaColumns
	metrics := make([]parquet.Value, len(b.tab))
	keys := make([][]parquet.Value, len(b.tab))
	labels := make([][]parquet.Value, len(b.tab))
	for i := range b.tab {
		s := &b.tab[i]
		metrics[i] = parquet.ByteArrayValue(bytesOf(s.Metric)).Level(0, 0, col.metric)
		if len(s.Labels) == 0 {
			// An empty map: one null entry at definition level 0.
			keys[i] = []parquet.Value{parquet.NullValue().Level(0, 0, col.key)}
			labels[i] = []parquet.Value{parquet.NullValue().Level(0, 0, col.label)}
			continue
		}
		for j, l := range s.Labels {
			rep := min(j, 1)
			keys[i] = append(keys[i], parquet.ByteArrayValue(bytesOf(l.Name)).Level(rep, 1, col.key))
			labels[i] = append(labels[i], parquet.ByteArrayValue(bytesOf(l.Value)).Level(rep, 1, col.label))
		}
	}
	pw := parquet.NewWriter(w, writerOptions(name, content)...)
	const batch = 4096
	var times, ms, ks, ls, vs []parquet.Value
	fail := func(err error) error { return fmt.Errorf("encode segment %s: %w", name, err) }
	inGroup := 0
	for start := 0; start < b.Len(); {
		n := min(batch, b.Len()-start, rg-inGroup)
		times, ms, ks, ls, vs = times[:0], ms[:0], ks[:0], ls[:0], vs[:0]
		for j := start; j < start+n; j++ {
			id := b.ids[j]
			// Required flat columns ignore levels and column indexes.
			times = append(times, parquet.Int64Value(b.times[j]))
			ms = append(ms, metrics[id])
			ks = append(ks, keys[id]...)
			ls = append(ls, labels[id]...)
			vs = append(vs, parquet.DoubleValue(b.values[j]))
		}
		cws := pw.ColumnWriters()
		for _, c := range [...]struct {
			at   int
			vals []parquet.Value
		}{{col.time, times}, {col.metric, ms}, {col.key, ks}, {col.label, ls}, {col.value, vs}} {
			if _, err := cws[c.at].WriteRowValues(c.vals); err != nil {
				return fail(err)
			}
		}
		start += n
		if inGroup += n; inGroup == rg {
			if err := pw.Flush(); err != nil {
				return fail(err)
			}
			inGroup = 0
		}
	}
	if err := pw.Close(); err != nil {
		return fail(err)
	}
	return nil
}
