package replicate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/hourglass-io/hourglass/tsstore"
)

func testCells(n int, start int64) []tsstore.Cell {
	var cs []tsstore.Cell
	for i := range n {
		ls, _ := tsstore.NewLabels("merchant", "m"+string(rune('a'+i%26)), "page", "/x")
		cs = append(cs, tsstore.Cell{Metric: "orders", Labels: ls, Start: start + int64(i)*60_000, Seq: uint32(i % 3),
			Agg: tsstore.Agg{Count: uint64(i + 1), Sum: float64(i) * 1.5, Min: -1, Max: float64(i)}})
	}
	return cs
}

func TestCodecRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 20).Draw(t, "n")
		var cs []tsstore.Cell
		for range n {
			var ls tsstore.Labels
			for j := range rapid.IntRange(0, 3).Draw(t, "labels") {
				ls = append(ls, tsstore.Label{Name: "l" + string(rune('a'+j)), Value: rapid.String().Draw(t, "value")})
			}
			cs = append(cs, tsstore.Cell{Metric: rapid.StringMatching(`[a-z_]{1,10}`).Draw(t, "metric"), Labels: ls,
				Start: rapid.Int64().Draw(t, "start"), Writer: rapid.SampledFrom([]string{"", "w1", "w2/3"}).Draw(t, "writer"), Seq: rapid.Uint32().Draw(t, "seq"),
				Agg: tsstore.Agg{Count: rapid.Uint64().Draw(t, "count"), Sum: rapid.Float64().Draw(t, "sum"),
					Min: rapid.Float64().Draw(t, "min"), Max: rapid.Float64().Draw(t, "max")}})
		}
		buf := newRecordBuf(cs)
		sealRecord(buf, 7, 9)
		rec, got, err := parseRecord(buf)
		if err != nil {
			t.Fatal(err)
		}
		if rec.seq != 7 || rec.at != 9 || rec.size != int64(len(buf)) {
			t.Fatalf("header %+v", rec)
		}
		if len(cs) == 0 {
			cs = []tsstore.Cell{}
		}
		if d := cmp.Diff(cs, got); d != "" {
			t.Fatalf("round trip (-want +got):\n%s", d)
		}
		// Any flipped byte is detected.
		i := rapid.IntRange(0, len(buf)-1).Draw(t, "flip")
		buf[i] ^= 0x40
		if _, _, err := parseRecord(buf); err == nil && i >= 4 {
			t.Fatalf("flipped byte %d not detected", i)
		}
	})
}

func appendN(t *testing.T, l *hintLog, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		buf := newRecordBuf(testCells(3, int64(i)*60_000))
		sealRecord(buf, uint64(i), int64(i))
		if _, _, err := l.append(buf); err != nil {
			t.Fatal(err)
		}
	}
}

func seqs(recs []*record) []uint64 {
	var out []uint64
	for _, r := range recs {
		out = append(out, r.seq)
	}
	return out
}

// Records survive a reopen across segments; a torn append at the end of
// the last segment is cut off; corruption elsewhere fails the open.
func TestHintLogReopen(t *testing.T) {
	dir := t.TempDir()
	l, recs, err := openHintLog(dir, 1000, 60_000)
	if err != nil || len(recs) != 0 {
		t.Fatal(recs, err)
	}
	appendN(t, l, 1, 20)
	if len(l.segs) < 3 {
		t.Fatalf("%d segments for 20 records of 1000-byte segments, want several", len(l.segs))
	}
	l.close()
	l, recs, err = openHintLog(dir, 1000, 60_000)
	if err != nil {
		t.Fatal(err)
	}
	want := []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}
	if d := cmp.Diff(want, seqs(recs)); d != "" {
		t.Fatalf("records after reopen (-want +got):\n%s", d)
	}
	cells, err := l.read(recs[4])
	if err != nil || cmp.Diff(testCells(3, 5*60_000), cells) != "" {
		t.Fatalf("record 5 read back: %v %v", cells, err)
	}
	last := l.active().path
	l.close()

	// A torn append: half a record at the end.
	buf := newRecordBuf(testCells(3, 0))
	sealRecord(buf, 21, 21)
	f, _ := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	_, _ = f.Write(buf[:len(buf)/2])
	_ = f.Close()
	l, recs, err = openHintLog(dir, 1000, 60_000)
	if err != nil || len(recs) != 20 {
		t.Fatalf("after a torn append: %d records, %v; want the 20 whole ones", len(recs), err)
	}
	appendN(t, l, 21, 1) // appends after the cut
	l.close()
	if _, recs, err = openHintLog(dir, 1000, 60_000); err != nil || len(recs) != 21 {
		t.Fatalf("append after the cut: %d records, %v", len(recs), err)
	}

	// Corruption in the middle of a segment.
	first := filepath.Join(dir, "0000000000000000.hint")
	b, _ := os.ReadFile(first)
	b[recordHeader+2] ^= 1
	if err := os.WriteFile(first, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := openHintLog(dir, 1000, 60_000); err == nil || !strings.Contains(err.Error(), first) {
		t.Fatalf("open with a corrupt first segment: %v, want an error naming it", err)
	}
}

// Released records free their segments.
func TestHintLogRelease(t *testing.T) {
	l, _, err := openHintLog(t.TempDir(), 1000, 60_000)
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	var recs []*record
	for i := 1; i <= 20; i++ {
		buf := newRecordBuf(testCells(3, 0))
		sealRecord(buf, uint64(i), 0)
		seg, off, err := l.append(buf)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &record{seq: uint64(i), seg: seg, off: off, size: int64(len(buf))})
	}
	for _, r := range recs {
		l.release(r)
	}
	if len(l.segs) != 1 {
		t.Fatalf("%d segments left after releasing every record, want the active one", len(l.segs))
	}
	ents, _ := os.ReadDir(l.dir)
	if len(ents) != 1 {
		t.Fatalf("%d files left, want 1", len(ents))
	}
}

// A span keeps the legacy writer's Seq values in Seqs (as spans persisted
// before cells had writers did for every cell) and the other cells'
// (Writer, Seq) in Flushes; merging keeps each once.
func TestSpanFlushes(t *testing.T) {
	cs := testCells(6, 0)
	for i := range cs {
		cs[i].Writer = []string{"", "a", "a/2"}[i%3]
	}
	sp := spanOf(cs, 60_000)
	want := span{From: 0, To: 6 * 60_000, Metrics: []string{"orders"}, Seqs: []uint32{0},
		Flushes: []flushID{{"a", 1}, {"a/2", 2}}}
	if d := cmp.Diff(want, sp); d != "" {
		t.Fatalf("spanOf (-want +got):\n%s", d)
	}
	sp.merge(span{From: 0, To: 60_000, Metrics: []string{"orders"}, Seqs: []uint32{0, 4}, Flushes: []flushID{{"a", 1}, {"b", 1}}})
	want.Seqs, want.Flushes = []uint32{0, 4}, []flushID{{"a", 1}, {"a/2", 2}, {"b", 1}}
	if d := cmp.Diff(want, sp); d != "" {
		t.Fatalf("merge (-want +got):\n%s", d)
	}
	var old staleRange // as persisted in state.json before writers
	if err := json.Unmarshal([]byte(`{"min_seq":3,"max_seq":9,"From":0,"To":60000,"Metrics":["orders"],"Seqs":[5,6]}`), &old); err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(old.Seqs, []uint32{5, 6}) || old.Flushes != nil {
		t.Fatalf("a stale range persisted before writers: %+v, want Seqs 5 and 6 of the legacy writer", old)
	}
}

// flushGeneration inverts the write-back engine's naming of a
// generation's cells: Writer id below the cell width in ms, "id/<g/wms>"
// after, Seq g mod wms.
func TestFlushGeneration(t *testing.T) {
	const wms = 60_000
	for _, tc := range []struct {
		f    flushID
		want genKey
		ok   bool
	}{
		{flushID{"abc", 5}, genKey{"abc", 5}, true},
		{flushID{"abc/1", 0}, genKey{"abc", 60_000}, true},
		{flushID{"abc/2", 7}, genKey{"abc", 120_007}, true},
		{flushID{"abc/0", 7}, genKey{}, false},
		{flushID{"abc/x", 7}, genKey{}, false},
		{flushID{"/3", 7}, genKey{}, false},
		{flushID{"abc/" + "307445734561825861", 7}, genKey{}, false}, // overflows
	} {
		got, ok := flushGeneration(tc.f, wms)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("flushGeneration(%+v) = %+v, %v; want %+v, %v", tc.f, got, ok, tc.want, tc.ok)
		}
	}
	if _, ok := flushGeneration(flushID{"abc/307445734561825", 0}, wms); !ok {
		t.Errorf("a generation below 2^64 is refused")
	}
}
