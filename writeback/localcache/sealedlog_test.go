package localcache

import (
	"context"
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
func writeLog(t *rapid.T, dir string, payloads [][]byte) {
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
