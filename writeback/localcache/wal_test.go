package localcache_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/localcache"
)

var ctx = context.Background()

func batchOf(n int, v float64) *writeback.Batch {
	ps := make([]tsstore.Point, n)
	for i := range ps {
		ps[i] = tsstore.Point{Metric: "views", Labels: tsstore.Labels{{Name: "merchant", Value: "m1"}}, Timestamp: int64(1_700_000_000_000 + i), Value: v}
	}
	return &writeback.Batch{Raw: ps, Processed: ps, CellWidth: time.Minute}
}

func count(t *testing.T, c *localcache.Cache) uint64 {
	t.Helper()
	cells, err := c.Cells(ctx, tsstore.Selector{Metric: "views", From: 0, To: tsstore.MaxTimestamp - 1})
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, c := range cells {
		n += c.Count
	}
	return n
}

func walFiles(t *testing.T, dir string) []string {
	fs, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestTornTailIsCutOff(t *testing.T) {
	dir := t.TempDir()
	c, err := localcache.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Append(ctx, batchOf(10, 1)); err != nil {
		t.Fatal(err)
	}
	if err := c.Append(ctx, batchOf(10, 2)); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	f := walFiles(t, dir)[0]
	st, _ := os.Stat(f)
	// Cut the second record in half, as a crash during its write would.
	if err := os.Truncate(f, st.Size()-30); err != nil {
		t.Fatal(err)
	}
	c, err = localcache.Open(dir, nil)
	if err != nil {
		t.Fatalf("Open after a torn tail: %v", err)
	}
	if n := count(t, c); n != 10 {
		t.Errorf("after a torn tail %d points remain, want the 10 of the whole record", n)
	}
	// New writes after the cut are kept.
	if err := c.Append(ctx, batchOf(5, 3)); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c, err = localcache.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n := count(t, c); n != 15 {
		t.Errorf("after writing past a cut tail and reopening: %d points, want 15", n)
	}
}

func TestCorruptSealedGenerationFailsOpen(t *testing.T) {
	dir := t.TempDir()
	c, err := localcache.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Append(ctx, batchOf(10, 1)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Append(ctx, batchOf(1, 1)); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	sealed := walFiles(t, dir)[0]
	b, err := os.ReadFile(sealed)
	if err != nil {
		t.Fatal(err)
	}
	b[20] ^= 0xff
	if err := os.WriteFile(sealed, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = localcache.Open(dir, nil)
	if err == nil || !strings.Contains(err.Error(), filepath.Base(sealed)) {
		t.Fatalf("Open with a corrupt sealed generation: %v, want an error naming %s", err, sealed)
	}
}

func TestOneProcessPerDirectory(t *testing.T) {
	dir := t.TempDir()
	c, err := localcache.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := localcache.Open(dir, nil); !errors.Is(err, tsstore.ErrUnavailable) {
		t.Errorf("second Open of the same directory: %v, want ErrUnavailable", err)
	}
}

func TestReplicatedDurabilityIsRefused(t *testing.T) {
	c, err := localcache.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b := batchOf(1, 1)
	b.Durability = writeback.DurabilityReplicated
	if err := c.Append(ctx, b); !errors.Is(err, tsstore.ErrInvalid) {
		t.Errorf("Append with DurabilityReplicated: %v, want ErrInvalid", err)
	}
	if n := count(t, c); n != 0 {
		t.Errorf("a refused batch left %d points", n)
	}
}

// TestSealedLogOwned checks that the chunks of SealedLogOwned are the
// callee's to keep: kept until the end, they hold what SealedLog gives.
func TestSealedLogOwned(t *testing.T) {
	c, err := localcache.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for v := range 5 {
		if err := c.Append(ctx, batchOf(7, float64(v))); err != nil {
			t.Fatal(err)
		}
	}
	gen, _, err := c.Seal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var copied, kept [][]tsstore.Point
	if err := c.SealedLog(ctx, gen, 4, func(ps []tsstore.Point) error {
		copied = append(copied, append([]tsstore.Point(nil), ps...))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.SealedLogOwned(ctx, gen, 4, func(ps []tsstore.Point) error {
		kept = append(kept, ps)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(kept) != 9 || len(kept) != len(copied) {
		t.Fatalf("%d owned chunks, %d copied, want 9", len(kept), len(copied))
	}
	for i := range kept {
		if len(kept[i]) != len(copied[i]) {
			t.Fatalf("chunk %d: %d points, want %d", i, len(kept[i]), len(copied[i]))
		}
		for j := range kept[i] {
			if a, b := kept[i][j], copied[i][j]; a.Timestamp != b.Timestamp || a.Value != b.Value || !a.Labels.Equal(b.Labels) {
				t.Fatalf("chunk %d point %d: %v, want %v", i, j, a, b)
			}
		}
	}
}

// TestSealedColumnsFailsAsSealedLog checks that SealedColumns fails where
// SealedLog does, with the same error: a corrupt or torn record, a done
// context, an error of fn, a bad chunk size or generation.
func TestSealedColumnsFailsAsSealedLog(t *testing.T) {
	dir := t.TempDir()
	c, err := localcache.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for v := range 3 {
		if err := c.Append(ctx, batchOf(10, float64(v))); err != nil {
			t.Fatal(err)
		}
	}
	gen, _, err := c.Seal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	path := walFiles(t, dir)[0]
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	both := func(ctx context.Context, max int, gen uint64, fail error) (logErr, colErr error) {
		logErr = c.SealedLog(ctx, gen, max, func([]tsstore.Point) error { return fail })
		colErr = c.SealedColumns(ctx, gen, max, func(*tsstore.Columns) error { return fail })
		return logErr, colErr
	}
	corrupt := slices.Clone(good)
	corrupt[len(corrupt)/2] ^= 0xff
	for _, tc := range []struct {
		name string
		file []byte
	}{{"corrupt", corrupt}, {"torn", good[:len(good)-3]}} {
		if err := os.WriteFile(path, tc.file, 0o644); err != nil {
			t.Fatal(err)
		}
		logErr, colErr := both(ctx, 100, gen, nil)
		if logErr == nil || colErr == nil || logErr.Error() != colErr.Error() {
			t.Errorf("a %s log: SealedLog: %v, SealedColumns: %v, want the same error", tc.name, logErr, colErr)
		}
	}
	if err := os.WriteFile(path, good, 0o644); err != nil {
		t.Fatal(err)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	stop := errors.New("stop")
	for _, tc := range []struct {
		name string
		ctx  context.Context
		max  int
		gen  uint64
		fail error
		want error
	}{
		{"done context", done, 100, gen, nil, context.Canceled},
		{"error of fn", ctx, 7, gen, stop, stop},
		{"chunk size 0", ctx, 0, gen, nil, tsstore.ErrInvalid},
		{"open generation", ctx, 100, gen + 1, nil, tsstore.ErrInvalid},
	} {
		logErr, colErr := both(tc.ctx, tc.max, tc.gen, tc.fail)
		if !errors.Is(logErr, tc.want) || !errors.Is(colErr, tc.want) {
			t.Errorf("%s: SealedLog: %v, SealedColumns: %v, want %v", tc.name, logErr, colErr, tc.want)
		}
	}
}
