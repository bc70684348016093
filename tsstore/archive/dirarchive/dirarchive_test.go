package dirarchive_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/tsstore/archive/archivetest"
	"github.com/hourglass-io/hourglass/tsstore/archive/dirarchive"
)

func allRequest() archive.ScanRequest { return archive.ScanRequest{From: 0, To: tsstore.MaxTimestamp} }

func readAll(t testing.TB, a archive.Archive, name string) []tsstore.Point {
	t.Helper()
	var out []tsstore.Point
	if err := a.Read(context.Background(), name, func(p tsstore.Point) error { out = append(out, p); return nil }); err != nil {
		t.Fatalf("Read(%s): %v", name, err)
	}
	return out
}

func sortedPoints(ps []tsstore.Point) []tsstore.Point {
	out := slices.Clone(ps)
	slices.SortStableFunc(out, func(a, b tsstore.Point) int {
		if a.Timestamp != b.Timestamp {
			return int(a.Timestamp - b.Timestamp)
		}
		if c := strings.Compare(a.Metric, b.Metric); c != 0 {
			return c
		}
		if c := a.Labels.Compare(b.Labels); c != 0 {
			return c
		}
		switch {
		case a.Value < b.Value:
			return -1
		case a.Value > b.Value:
			return 1
		}
		return 0
	})
	return out
}

func TestLayoutAndReopen(t *testing.T) {
	dir := t.TempDir()
	w := newWorkload()
	a := open(t, dir, nil)
	ps := w.points(1, 1000, base+59*60000, 2*60000) // crosses 01:00
	info := mustAppend(t, a, idOf("host-a", 12, 3, ps), ps)
	want := "2026/01/01/00/host-a-g0000000000000012-s0003-"
	if !strings.HasPrefix(info.Name, want) {
		t.Errorf("name %s, want it under %s", info.Name, want)
	}
	path := filepath.Join(dir, filepath.FromSlash(info.Name))
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != info.Bytes || fi.Mode().Perm()&0o222 != 0 {
		t.Errorf("segment file: %d bytes, mode %v; want %d bytes, read-only", fi.Size(), fi.Mode(), info.Bytes)
	}
	// The manifest is one JSON line per segment.
	m, err := os.ReadFile(filepath.Join(dir, dirarchive.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(m), &rec); err != nil || rec["name"] != info.Name || rec["sha256"] != info.Checksum {
		t.Errorf("manifest %q: %v; want one JSON line naming %s with its checksum", m, err, info.Name)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// Nothing is left in .tmp after Close.
	if ents, _ := os.ReadDir(filepath.Join(dir, ".tmp")); len(ents) != 0 {
		t.Errorf(".tmp holds %d entries after Close", len(ents))
	}
	b := open(t, dir, nil)
	segs, err := b.Segments(context.Background(), 0, tsstore.MaxTimestamp)
	if err != nil || len(segs) != 1 {
		t.Fatalf("after reopening: %v, %v", segs, err)
	}
	if d := cmp.Diff(info, segs[0]); d != "" {
		t.Errorf("info after reopening (-before +after):\n%s", d)
	}
	if d := cmp.Diff(sortedPoints(ps), readAll(t, b, info.Name)); d != "" {
		t.Errorf("points after reopening (-want +got):\n%s", d)
	}
	// Appending again after reopening is a no-op.
	again := mustAppend(t, b, idOf("host-a", 12, 3, ps), ps)
	if again != info {
		t.Errorf("append after reopening: %+v, want %+v", again, info)
	}
}

// genericRow is how a user of a generic Parquet reader would declare the
// archive's rows: nothing here comes from the archive's code.
type genericRow struct {
	Time   int64             `parquet:"time"`
	Metric string            `parquet:"metric"`
	Labels map[string]string `parquet:"labels"`
	Value  float64           `parquet:"value"`
}

func TestGenericParquetReader(t *testing.T) {
	dir := t.TempDir()
	a := open(t, dir, &dirarchive.Options{RowGroupRows: 700})
	w := newWorkload()
	ps := w.points(2, 2000, base, 3600_000)
	ps = append(ps, tsstore.Point{Metric: "bare", Timestamp: base, Value: 1})
	ps = append(ps, tsstore.Point{Metric: "awkward", Labels: tsstore.Labels{{Name: "v", Value: "a, \"b\"=\\c\nü"}}, Timestamp: base + 1, Value: -2.5})
	info := mustAppend(t, a, idOf("src", 1, 0, ps), ps)

	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(info.Name)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := parquet.Read[genericRow](f, info.Bytes)
	if err != nil {
		t.Fatalf("generic reader: %v", err)
	}
	var got []tsstore.Point
	for i, r := range rows {
		ls, err := tsstore.FromMap(r.Labels)
		if err != nil {
			t.Fatalf("row %d: labels %v: %v", i, r.Labels, err)
		}
		if len(ls) == 0 {
			ls = nil
		}
		if i > 0 && r.Time < rows[i-1].Time {
			t.Errorf("row %d: time %d before the previous row's %d: not sorted by time", i, r.Time, rows[i-1].Time)
		}
		got = append(got, tsstore.Point{Metric: r.Metric, Labels: ls, Timestamp: r.Time, Value: r.Value})
	}
	if d := cmp.Diff(sortedPoints(ps), sortedPoints(got)); d != "" {
		t.Errorf("points through a generic Parquet reader (-want +got):\n%s", d)
	}

	// The schema a person sees: a millisecond timestamp, strings, a map,
	// a double; zstd everywhere; several row groups.
	pf, err := parquet.OpenFile(f, info.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	schema := pf.Schema().String()
	for _, want := range []string{
		"required int64 time (TIMESTAMP(isAdjustedToUTC=true,unit=MILLIS))",
		"required binary metric (STRING)",
		"required group labels (MAP)",
		"repeated group key_value",
		"required binary key (STRING)",
		"required binary value (STRING)",
		"required double value",
	} {
		if !strings.Contains(schema, want) {
			t.Errorf("schema lacks %q:\n%s", want, schema)
		}
	}
	if len(pf.RowGroups()) != 3 {
		t.Errorf("%d row groups, want 3 of at most 700 rows", len(pf.RowGroups()))
	}
	for _, rg := range pf.Metadata().RowGroups {
		for _, c := range rg.Columns {
			if c.MetaData.Codec != format.Zstd {
				t.Errorf("column %v compressed with %v, want zstd", c.MetaData.PathInSchema, c.MetaData.Codec)
			}
		}
	}
	if v, ok := pf.Lookup("hourglass.segment"); !ok || v != info.Name {
		t.Errorf("key/value metadata hourglass.segment = %q, want %q", v, info.Name)
	}
}

// corrupt applies damage to the file of a segment.
func corrupt(t *testing.T, path string, damage func(b []byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, damage(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptionDetected(t *testing.T) {
	w := newWorkload()
	for _, tc := range []struct {
		name   string
		damage func(path string)
		want   string
	}{
		{"flipped byte", func(path string) {
			corrupt(t, path, func(b []byte) []byte { b[len(b)/2] ^= 0x01; return b })
		}, "SHA-256"},
		{"flipped byte in the footer", func(path string) {
			corrupt(t, path, func(b []byte) []byte { b[len(b)-10] ^= 0x80; return b })
		}, "SHA-256"},
		{"truncated", func(path string) {
			corrupt(t, path, func(b []byte) []byte { return b[:len(b)-100] })
		}, "bytes"},
		{"emptied", func(path string) {
			corrupt(t, path, func(b []byte) []byte { return nil })
		}, "bytes"},
		{"replaced by another segment of the same size", func(path string) {
			corrupt(t, path, func(b []byte) []byte { return append(b[len(b)/2:], b[:len(b)/2]...) })
		}, "SHA-256"},
		{"missing", func(path string) {
			if err := os.Rename(path, path+".gone"); err != nil {
				t.Fatal(err)
			}
		}, "missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := open(t, t.TempDir(), nil)
			var infos []archive.SegmentInfo
			for i := 0; i < 3; i++ {
				ps := w.points(uint64(i), 500, base+int64(i)*3600_000, 3600_000)
				infos = append(infos, mustAppend(t, a, idOf("src", uint64(i), 0, ps), ps))
			}
			bad := infos[1]
			tc.damage(filepath.Join(a.Dir(), filepath.FromSlash(bad.Name)))
			ctx := context.Background()
			check := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, archive.ErrCorrupt) || !strings.Contains(err.Error(), bad.Name) || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: got %v, want archive.ErrCorrupt naming %s and saying %q", what, err, bad.Name, tc.want)
				}
			}
			n := 0
			check("Read", a.Read(ctx, bad.Name, func(tsstore.Point) error { n++; return nil }))
			if n != 0 {
				t.Errorf("Read of a corrupt segment passed on %d points before failing", n)
			}
			_, err := count(ctx, a, allRequest())
			check("Scan of everything", err)
			_, err = count(ctx, a, archive.ScanRequest{From: bad.ID.MinTime, To: bad.ID.MinTime + 1})
			check("Scan of its first millisecond", err)
			// The other segments are intact and still readable.
			for _, info := range []archive.SegmentInfo{infos[0], infos[2]} {
				if got := readAll(t, a, info.Name); len(got) != 500 {
					t.Errorf("Read(%s) of an intact segment: %d points", info.Name, len(got))
				}
				if n, err := count(ctx, a, archive.ScanRequest{From: info.ID.MinTime, To: info.ID.MaxTime + 1}); err != nil || n != 500 {
					t.Errorf("Scan of an intact segment: %d points, %v", n, err)
				}
			}
		})
	}
}

func TestTornManifestLine(t *testing.T) {
	dir := t.TempDir()
	w := newWorkload()
	a := open(t, dir, nil)
	ps := w.points(1, 100, base, 60000)
	first := mustAppend(t, a, idOf("src", 1, 0, ps), ps)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	mpath := filepath.Join(dir, dirarchive.ManifestFile)
	whole, err := os.ReadFile(mpath)
	if err != nil {
		t.Fatal(err)
	}
	for _, torn := range []string{
		string(whole[:len(whole)/2]),            // half a line
		strings.TrimSuffix(string(whole), "\n"), // a whole record without its newline
		"\x00\x00\x00\x00\n",                    // zeros after a crash
		"{\"name\":\n",                          // a line cut inside
	} {
		if err := os.WriteFile(mpath, append(slices.Clone(whole), torn...), 0o644); err != nil {
			t.Fatal(err)
		}
		b := open(t, dir, nil)
		segs, err := b.Segments(context.Background(), 0, tsstore.MaxTimestamp)
		if err != nil || len(segs) != 1 || segs[0] != first {
			t.Errorf("torn tail %q: Segments %v, %v; want just the first segment", torn, segs, err)
		}
		m, _ := os.ReadFile(mpath)
		if !bytes.Equal(m, whole) {
			t.Errorf("torn tail %q not cut on Open: manifest is %q", torn, m)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Appends after a cut tail make a valid manifest.
	if err := os.WriteFile(mpath, append(slices.Clone(whole), whole[:20]...), 0o644); err != nil {
		t.Fatal(err)
	}
	b := open(t, dir, nil)
	ps2 := w.points(2, 100, base, 60000)
	mustAppend(t, b, idOf("src", 2, 0, ps2), ps2)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	c := open(t, dir, nil)
	if st, err := c.Stat(context.Background()); err != nil || st.Segments != 2 {
		t.Errorf("after a cut tail and an append: %+v, %v; want 2 segments", st, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// A bad line followed by a good one is corruption, not a torn tail.
	m, _ := os.ReadFile(mpath)
	lines := bytes.SplitAfter(m, []byte("\n"))
	bad := append(append([]byte("{not json}\n"), lines[0]...), lines[1]...)
	if err := os.WriteFile(mpath, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := dirarchive.Open(dir, nil); !errors.Is(err, archive.ErrCorrupt) || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("Open with a corrupt first line: got %v, want archive.ErrCorrupt naming line 1", err)
	}
}

// TestUnlistedFile covers a crash between linking a segment and listing it
// in the manifest: the next append of the name adopts the file when it holds
// the same points, and otherwise moves it aside without removing it.
func TestUnlistedFile(t *testing.T) {
	w := newWorkload()
	ps := w.points(1, 300, base, 60000)
	id := idOf("src", 1, 0, ps)
	// A file of the same name from another archive stands for the orphan.
	src := open(t, t.TempDir(), nil)
	info := mustAppend(t, src, id, ps)
	orphan, err := os.ReadFile(filepath.Join(src.Dir(), filepath.FromSlash(info.Name)))
	if err != nil {
		t.Fatal(err)
	}
	plant := func(t *testing.T, name string, b []byte) (*dirarchive.Archive, string) {
		a := open(t, t.TempDir(), nil)
		path := filepath.Join(a.Dir(), filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o444); err != nil {
			t.Fatal(err)
		}
		if n, err := count(context.Background(), a, allRequest()); err != nil || n != 0 {
			t.Fatalf("an unlisted file is visible: %d points, %v", n, err)
		}
		return a, path
	}
	t.Run("same points", func(t *testing.T) {
		a, _ := plant(t, info.Name, orphan)
		got := mustAppend(t, a, id, ps)
		if got.Checksum != info.Checksum || got.Bytes != info.Bytes {
			t.Errorf("adopted %+v, want the file's checksum and size %+v", got, info)
		}
		if n, err := count(context.Background(), a, allRequest()); err != nil || n != len(ps) {
			t.Errorf("after adopting: %d points, %v", n, err)
		}
	})
	// A file of b2a3712, its KeyContent a digest of version 1.
	t.Run("same points, written before version 2", func(t *testing.T) {
		v1 := archivetest.V1(t)
		a, _ := plant(t, v1.ID.Name(), v1.File)
		got := mustAppend(t, a, v1.ID, v1.Points)
		if sum := sha256.Sum256(v1.File); got.Checksum != hex.EncodeToString(sum[:]) || got.Bytes != int64(len(v1.File)) {
			t.Errorf("adopted %+v, want the checksum and size of the file of version 1", got)
		}
		other := append(v1.Points[:len(v1.Points):len(v1.Points)], v1.Points[0])
		if _, err := a.Append(context.Background(), v1.ID, other); !errors.Is(err, tsstore.ErrConflict) {
			t.Errorf("other points after the adoption: got %v, want ErrConflict", err)
		}
	})
	t.Run("other bytes", func(t *testing.T) {
		a, path := plant(t, info.Name, []byte("half a segment"))
		mustAppend(t, a, id, ps)
		if got := readAll(t, a, info.Name); len(got) != len(ps) {
			t.Errorf("Read: %d points, want %d", len(got), len(ps))
		}
		aside, _ := filepath.Glob(path + ".orphan-*")
		if len(aside) != 1 {
			t.Fatalf("orphan not kept aside: %v", aside)
		}
		if b, _ := os.ReadFile(aside[0]); string(b) != "half a segment" {
			t.Errorf("orphan kept aside holds %q", b)
		}
	})
}

// TestSharedDirectory opens one directory twice, as two processes would:
// each sees the other's segments and conflicts are detected across them.
func TestSharedDirectory(t *testing.T) {
	dir := t.TempDir()
	a, b := open(t, dir, nil), open(t, dir, nil)
	w := newWorkload()
	ps := w.points(1, 200, base, 60000)
	id := idOf("src", 1, 0, ps)
	info := mustAppend(t, a, id, ps)
	segs, err := b.Segments(context.Background(), 0, tsstore.MaxTimestamp)
	if err != nil || len(segs) != 1 || segs[0] != info {
		t.Fatalf("the second archive sees %v, %v; want %+v", segs, err, info)
	}
	if got := mustAppend(t, b, id, ps); got != info {
		t.Errorf("same append through the second archive: %+v, want %+v", got, info)
	}
	other := slices.Clone(ps)
	other[0].Value++
	if _, err := b.Append(context.Background(), id, other); !errors.Is(err, tsstore.ErrConflict) {
		t.Errorf("other points through the second archive: got %v, want ErrConflict", err)
	}
	m, err := os.ReadFile(filepath.Join(dir, dirarchive.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(m, []byte("\n")); n != 1 {
		t.Errorf("manifest has %d lines, want 1", n)
	}
}

// TestTwoArchives writes one flush to two directories (two regions), and
// closes one while the other goes on.
func TestTwoArchives(t *testing.T) {
	a, b := open(t, t.TempDir(), nil), open(t, t.TempDir(), nil)
	w := newWorkload()
	ps := w.points(1, 200, base, 60000)
	id := idOf("src", 1, 0, ps)
	ia, ib := mustAppend(t, a, id, ps), mustAppend(t, b, id, ps)
	if ia.Checksum != ib.Checksum {
		t.Errorf("the same segment has checksums %s and %s in two archives", ia.Checksum, ib.Checksum)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, b, ib.Name); len(got) != len(ps) {
		t.Errorf("the second archive after closing the first: %d points", len(got))
	}
}

func scanLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		out = append(out, s.Text())
	}
	return out
}
