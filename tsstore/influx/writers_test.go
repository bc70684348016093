package influx_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/influx"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/tsstore/storetest"
)

// byWriter is c as written by writer w.
func byWriter(c tsstore.Cell, w string) tsstore.Cell {
	c.Writer = w
	return c
}

// storedByWriter reads the stored aggregates of cellAt(m, k, ·) by writer.
func storedByWriter(t *testing.T, s *influx.Store, m string, k int64) map[string]tsstore.Agg {
	t.Helper()
	c := cellAt(m, k, 0)
	got, err := s.Cells(context.Background(), tsstore.Selector{Metric: "orders", Matchers: []tsstore.Matcher{{Type: tsstore.MatchEqual, Name: "merchant", Value: m}}, From: c.Start, To: c.Start + 1})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]tsstore.Agg{}
	for _, c := range got {
		out[c.Writer] = c.Agg
	}
	return out
}

// TestConflictTwoWriters: the bounds and the conflict check are per writer.
// Another writer's cells of the same identities are written (its first
// write reads its own bound), later ones after its bound without a read;
// each writer's changed cells conflict, also after a reopen, and the
// other writer's partial stays.
func TestConflictTwoWriters(t *testing.T) {
	qc := newQueryCounter(t)
	s := qc.open(t, 0)
	const b = "b0b/1"
	var legacy, other []tsstore.Cell
	for k := range int64(10) {
		legacy = append(legacy, cellAt("a", k, float64(k)))
		other = append(other, byWriter(cellAt("a", k, float64(100+k)), b))
	}
	if _, err := qc.write(s, legacy...); err != nil {
		t.Fatal(err)
	}
	if n, err := qc.write(s, other...); err != nil || n == 0 {
		t.Fatalf("writer %q, same identities: %v after %d queries; want success after reading its bound", b, err, n)
	}
	if n, err := qc.write(s, byWriter(cellAt("a", 10, 110), b)); err != nil || n != 0 {
		t.Fatalf("writer %q after its bound: %v after %d queries; want success without a query", b, err, n)
	}
	if n, err := qc.write(s, cellAt("a", 10, 10)); err != nil || n != 0 {
		t.Fatalf("legacy writer after its bound, below the other writer's: %v after %d queries; want success without a query", err, n)
	}
	check := func(s *influx.Store, when string) {
		t.Helper()
		for _, c := range []tsstore.Cell{cellAt("a", 5, 5), byWriter(cellAt("a", 5, 105), b), cellAt("a", 10, 10), byWriter(cellAt("a", 10, 110), b)} {
			if _, err := qc.write(s, c); err != nil {
				t.Errorf("%s: identical rewrite by %q: %v", when, c.Writer, err)
			}
			changed := c
			changed.Add(1)
			if _, err := qc.write(s, changed); !errors.Is(err, tsstore.ErrConflict) || !strings.Contains(err.Error(), c.Writer) {
				t.Errorf("%s: changed cell by %q: %v, want ErrConflict naming the writer", when, c.Writer, err)
			}
		}
		for _, k := range []int64{5, 10} {
			want := map[string]tsstore.Agg{"": tsstore.AggOf(float64(k)), b: tsstore.AggOf(float64(100 + k))}
			if d := cmp.Diff(want, storedByWriter(t, s, "a", k)); d != "" {
				t.Errorf("%s: cell %d by writer (-want +got):\n%s", when, k, d)
			}
		}
	}
	check(s, "same store")
	check(qc.open(t, 0), "after a reopen")
}

// legacyLines are points as the Store wrote them before cells had writers
// (produced by appendLine at commit a790c97): no writer tag.
const legacyLines = "revenue,currency=EUR,merchant=demo count=1i,max=10,min=10,sum=10 1767225600001\n" +
	"revenue,currency=EUR,merchant=demo count=2i,max=10,min=2.5,sum=12.5 1767225660001\n" +
	"revenue,currency=EUR,merchant=shop2 count=1i,max=3,min=3,sum=3 1767225600001\n" +
	"revenue,currency=EUR,merchant=demo,__time=a\\ b count=1i,max=1,min=1,sum=1 1767225600002\n"

// TestLegacyPoints: points written before cells had writers read back as
// the legacy writer "", a new writer's partials of the same cells add up
// with them in every query path (InfluxDB aggregating or the store), the
// writer never shows in results, and the legacy writer's changed cells
// still conflict; through both write APIs.
func TestLegacyPoints(t *testing.T) {
	for _, api := range []influx.WriteAPI{influx.WriteV1, influx.WriteV2} {
		t.Run(map[influx.WriteAPI]string{influx.WriteV1: "v1", influx.WriteV2: "v2"}[api], func(t *testing.T) {
			testLegacyPoints(t, api)
		})
	}
}

func testLegacyPoints(t *testing.T, api influx.WriteAPI) {
	u := servertest.InfluxURL(t)
	db := newDatabase(t, u)
	resp, err := http.Post(u+"/write?precision=ms&db="+db, "text/plain", strings.NewReader(legacyLines))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST /write: %s", resp.Status)
	}
	if api == influx.WriteV2 {
		u = newV2Proxy(t, u).URL // InfluxDB 1.6 has no /api/v2/write
	}
	s, err := influx.Open(u, &influx.Options{Database: db, WriteAPI: api})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	const base, minute = int64(1767225600000), int64(60_000)
	eur := func(kv ...string) tsstore.Labels {
		ls, err := tsstore.NewLabels(append([]string{"currency", "EUR"}, kv...)...)
		if err != nil {
			t.Fatal(err)
		}
		return ls
	}
	legacy := []tsstore.Cell{
		{Metric: "revenue", Labels: eur("merchant", "demo"), Start: base, Seq: 1, Agg: tsstore.AggOf(10)},
		{Metric: "revenue", Labels: eur("merchant", "demo"), Start: base + minute, Seq: 1, Agg: tsstore.Agg{Count: 2, Sum: 12.5, Min: 2.5, Max: 10}},
		{Metric: "revenue", Labels: eur("merchant", "shop2"), Start: base, Seq: 1, Agg: tsstore.AggOf(3)},
		{Metric: "revenue", Labels: eur("merchant", "demo", "time", "a b"), Start: base, Seq: 2, Agg: tsstore.AggOf(1)},
	}
	ctx := context.Background()
	sel := tsstore.Selector{Metric: "revenue", From: base, To: base + 60*minute}
	cells, err := s.Cells(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(legacy, cells, storetest.CellOrder); d != "" {
		t.Fatalf("legacy points read back (-want +got):\n%s", d)
	}

	// A new writer's partials of the same identities.
	const writer = "a1b2c3d4/1"
	all := append([]tsstore.Cell(nil), legacy...)
	for _, c := range legacy {
		c.Writer = writer
		c.Add(1000)
		all = append(all, c)
	}
	if err := s.Write(ctx, all[len(legacy):]); err != nil {
		t.Fatalf("writer %q, the legacy cells' identities: %v", writer, err)
	}
	if err := s.Write(ctx, all); err != nil {
		t.Fatalf("both writers' cells again (no-ops): %v", err)
	}
	if cells, err = s.Cells(ctx, sel); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(all, cells, storetest.CellOrder); d != "" {
		t.Errorf("cells of both writers (-want +got):\n%s", d)
	}
	oracle := memstore.New(nil)
	if err := oracle.Write(ctx, all); err != nil {
		t.Fatal(err)
	}
	eq := func(n, v string) tsstore.Matcher { return tsstore.Matcher{Type: tsstore.MatchEqual, Name: n, Value: v} }
	for _, q := range []tsstore.Query{
		{Step: time.Minute}, // the store aggregates
		{Step: time.Hour, Matchers: []tsstore.Matcher{eq("merchant", "demo")}}, // InfluxDB aggregates
		{Step: time.Hour, Matchers: []tsstore.Matcher{eq("currency", "EUR")}, GroupBy: []string{"currency"}},
		{Step: time.Hour, GroupBy: []string{}},
		{Step: time.Hour, Matchers: []tsstore.Matcher{eq(tsstore.WriterLabel, "")}},     // sees "": all
		{Step: time.Hour, Matchers: []tsstore.Matcher{eq(tsstore.WriterLabel, writer)}}, // sees "": none
	} {
		q.Metric, q.From, q.To = "revenue", base, base+60*minute
		want, _ := oracle.Query(ctx, q)
		got, err := s.Query(ctx, q)
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		if d := storetest.Diff(want, got); d != "" {
			t.Errorf("query %+v, both writers summed (-want +got):\n%s", q, d)
		}
	}

	// Each writer's changed cells still conflict.
	for _, c := range []tsstore.Cell{all[0], all[len(legacy)+1]} {
		c.Add(1)
		if err := s.Write(ctx, []tsstore.Cell{c}); !errors.Is(err, tsstore.ErrConflict) {
			t.Errorf("writer %q changing a stored cell: %v, want ErrConflict", c.Writer, err)
		}
	}
}
