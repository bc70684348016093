package localcache

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/hourglass-io/hourglass/tsstore"
)

// writeLog writes the log file of generation 1 in dir: version 1 records
// (payloads made by encodeV1) and version 2 ones, as an upgrade leaves
// them.
func writeLog(t interface{ Fatal(...any) }, dir string, payloads [][]byte) {
	var file []byte
	for _, p := range payloads {
		rec := append(make([]byte, headerLen), p...)
		putHeader(rec)
		file = append(file, rec...)
	}
	if err := os.WriteFile(genPath(dir, 1), file, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSealedColumnsIsSealedLog checks, for random logs of both record
// versions and every chunk size, that SealedColumns gives the points
// SealedLog and SealedLogOwned give, in log order, in full chunks but the
// last, each with valid columns and its series in the order of their
// first points, each once (in a log of version 2 records): what makes a
// chunk's archive segment is all fixed.
func TestSealedColumnsIsSealedLog(t *testing.T) {
	ctx := context.Background()
	rapid.Check(t, func(t *rapid.T) {
		dir, err := os.MkdirTemp("", "sealedcolumns")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		series := genSeries(t)
		var all []tsstore.Point
		var payloads [][]byte
		v1 := false
		for range rapid.IntRange(1, 6).Draw(t, "records") {
			raw := genPoints(t, series, "raw")
			all = append(all, raw...)
			if rapid.Bool().Draw(t, "v1") {
				v1 = true
				payloads = append(payloads, encodeV1(nil, time.Minute, raw, nil))
			} else {
				payloads = append(payloads, encodeV2(time.Minute, raw))
			}
		}
		writeLog(t, dir, payloads)
		c, err := Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		gen, ok, err := c.Seal(ctx)
		if err != nil || !ok {
			t.Fatalf("Seal: %v %v", ok, err)
		}
		max := rapid.IntRange(1, len(all)+1).Draw(t, "max")
		var logged, owned, columns []tsstore.Point
		if err := c.SealedLog(ctx, gen, max, func(ps []tsstore.Point) error {
			logged = append(logged, ps...)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := c.SealedLogOwned(ctx, gen, max, func(ps []tsstore.Point) error {
			owned = append(owned, ps...)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		var chunks []*tsstore.Columns
		if err := c.SealedColumns(ctx, gen, max, func(cols *tsstore.Columns) error {
			chunks = append(chunks, cols)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for i, cols := range chunks { // all kept, then read
			if err := cols.Check(); err != nil {
				t.Fatalf("chunk %d: %v", i, err)
			}
			if n := cols.Len(); n > max || n == 0 || (n < max && i < len(chunks)-1) {
				t.Fatalf("chunk %d of %d: %d points, max %d", i, len(chunks), n, max)
			}
			if ids := firstIDs(cols.IDs); len(ids) != len(cols.Series) || !slices.Equal(ids, seq(len(ids))) {
				t.Fatalf("chunk %d of %d series: the ids of its points, each first time, are %v", i, len(cols.Series), ids)
			}
			if !v1 {
				for j := range cols.Series {
					for k := range j {
						if a, b := cols.Series[j], cols.Series[k]; a.Metric == b.Metric && a.Labels.Equal(b.Labels) {
							t.Fatalf("chunk %d: series %d and %d are both %s%v", i, k, j, a.Metric, a.Labels)
						}
					}
				}
			}
			columns = cols.AppendPoints(columns)
		}
		for name, got := range map[string][]tsstore.Point{"SealedLog": logged, "SealedLogOwned": owned, "SealedColumns": columns} {
			if !samePoints(got, all) {
				t.Fatalf("%s gave\n%v\nwant\n%v", name, got, all)
			}
		}
		if n := int64(len(all)); c.Stats().Points != n {
			t.Fatalf("replay counted %d points, want %d", c.Stats().Points, n)
		}
	})
}

// firstIDs returns the ids of ids, each where it first stands.
func firstIDs(ids []int32) []int {
	var out []int
	seen := map[int32]bool{}
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, int(id))
		}
	}
	return out
}

// TestSealedColumnsCorruptRecord checks that a record that passes its
// checksum but not its decoding (its last point cut short, or a point of
// a series the record does not list) fails SealedColumns with
// SealedLog's error, and that fn got no point of it: the chunks the
// records before it filled, and no other.
func TestSealedColumnsCorruptRecord(t *testing.T) {
	ctx := context.Background()
	ls := tsstore.Labels{{Name: "merchant", Value: "m1"}}
	points := func(n int, metric string) []tsstore.Point {
		ps := make([]tsstore.Point, n)
		for i := range ps {
			ps[i] = tsstore.Point{Metric: metric, Labels: ls, Timestamp: 1_700_000_000_000 + int64(i), Value: float64(i) + 0.5}
		}
		return ps
	}
	first, second := points(7, "views"), points(9, "ms")
	good := encodeV2(time.Minute, second)
	// The first point's header is 0: series 0, a float. The record lists
	// one series: series 1 is none of its.
	d := newDecoder()
	if err := d.rawRecord(good); err != nil {
		t.Fatal(err)
	}
	noSeries := slices.Clone(good)
	if at := len(good) - len(d.pts.b); noSeries[at] != 0 {
		t.Fatalf("the first point's header is %d, want 0", noSeries[at])
	} else {
		noSeries[at] = 1 << 1
	}
	for _, tc := range []struct {
		name    string
		payload []byte
	}{
		{"cut short", good[:len(good)-2]}, // the processed flag and a byte of the last value
		{"point of no series", noSeries},
	} {
		for _, max := range []int{1, 2, 3, 7, 8, 100} {
			// A corrupt sealed log fails Open: it turns corrupt after.
			dir := t.TempDir()
			writeLog(t, dir, [][]byte{encodeV2(time.Minute, first), good})
			c, err := Open(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			gen, ok, err := c.Seal(ctx)
			if err != nil || !ok {
				t.Fatalf("Seal: %v %v", ok, err)
			}
			writeLog(t, dir, [][]byte{encodeV2(time.Minute, first), tc.payload})
			var logged, columns []tsstore.Point
			logErr := c.SealedLog(ctx, gen, max, func(ps []tsstore.Point) error {
				logged = append(logged, ps...)
				return nil
			})
			colErr := c.SealedColumns(ctx, gen, max, func(cols *tsstore.Columns) error {
				columns = cols.AppendPoints(columns)
				return nil
			})
			c.Close()
			if !errors.Is(colErr, errCorrupt) || logErr == nil || colErr.Error() != logErr.Error() {
				t.Errorf("%s, chunks of %d: SealedLog: %v, SealedColumns: %v, want the same corrupt error", tc.name, max, logErr, colErr)
			}
			want := first[:len(first)/max*max]
			if !samePoints(logged, want) || !samePoints(columns, want) {
				t.Errorf("%s, chunks of %d: SealedLog gave %d points, SealedColumns %d, want the %d of the full chunks before the record", tc.name, max, len(logged), len(columns), len(want))
			}
		}
	}
}
