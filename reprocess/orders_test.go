package reprocess_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/hourglass-io/hourglass/reprocess"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/tsstore/archive/dirarchive"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/tsstore/promtsdb"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/localcache"
)

// The raw events are order{merchant, kind="sale"|"refund"} with the amount
// in cents. Both processors count sales (orders) and refunds (refunds) per
// merchant; the buggy one adds sales to revenue and ignores refunds, the
// fixed one subtracts refunds.
var (
	buggy = tsstore.ProcessorFunc{V: "orders/1", F: func(dst []tsstore.Point, p tsstore.Point) ([]tsstore.Point, error) {
		return process(dst, p, false)
	}}
	fixed = tsstore.ProcessorFunc{V: "orders/2", F: func(dst []tsstore.Point, p tsstore.Point) ([]tsstore.Point, error) {
		return process(dst, p, true)
	}}
)

func process(dst []tsstore.Point, p tsstore.Point, refunds bool) ([]tsstore.Point, error) {
	ls := tsstore.Labels{{Name: "merchant", Value: p.Labels.Get("merchant")}}
	d := tsstore.Point{Labels: ls, Timestamp: p.Timestamp}
	switch p.Labels.Get("kind") {
	case "sale":
		d.Metric, d.Value = "orders", 1
		dst = append(dst, d)
		d.Metric, d.Value = "revenue", p.Value
		dst = append(dst, d)
	case "refund":
		d.Metric, d.Value = "refunds", 1
		dst = append(dst, d)
		if refunds {
			d.Metric, d.Value = "revenue", -p.Value
			dst = append(dst, d)
		}
	default:
		return dst, tsstore.Errorf(tsstore.ErrInvalid, "order without kind")
	}
	return dst, nil
}

var metricNames = []string{"orders", "refunds", "revenue"}

// orders returns n raw events in [from, to), seeded: 6 merchants, one in
// ten a refund, amounts in whole cents.
func orders(seed uint64, n int, from, to int64) []tsstore.Point {
	r := rand.New(rand.NewPCG(seed, 1))
	ps := make([]tsstore.Point, n)
	for i := range ps {
		kind := "sale"
		if r.IntN(10) == 0 {
			kind = "refund"
		}
		ps[i] = tsstore.Point{
			Metric:    "order",
			Labels:    tsstore.Labels{{Name: "kind", Value: kind}, {Name: "merchant", Value: fmt.Sprintf("m%d", r.IntN(6))}},
			Timestamp: from + r.Int64N(to-from),
			Value:     float64(100 + r.IntN(10000)),
		}
	}
	return ps
}

// oracle is memstore built from raw points, each processed by the
// processor procAt picks for it.
func oracle(t testing.TB, raw []tsstore.Point, procAt func(tsstore.Point) tsstore.Processor) *memstore.Store {
	t.Helper()
	type key struct {
		series string
		start  int64
	}
	cells := map[key]*tsstore.Cell{}
	var order []key
	for _, p := range raw {
		out, err := procAt(p).Process(nil, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range out {
			k := key{tsstore.SeriesKey(d.Metric, d.Labels), tsstore.CellStart(d.Timestamp, time.Minute)}
			c := cells[k]
			if c == nil {
				c = &tsstore.Cell{Metric: d.Metric, Labels: d.Labels, Start: k.start}
				cells[k] = c
				order = append(order, k)
			}
			c.Agg.Add(d.Value)
		}
	}
	ms := memstore.New(nil)
	var cs []tsstore.Cell
	for _, k := range order {
		cs = append(cs, *cells[k])
	}
	if err := ms.Write(context.Background(), cs); err != nil {
		t.Fatal(err)
	}
	return ms
}

// env is a live deployment: a writeback engine over localcache and a
// Switchable over the live promtsdb store, archiving to dirarchive.
type env struct {
	dir      string
	arch     *dirarchive.Archive
	live     *promtsdb.Store
	versions *reprocess.Versions
	sw       *reprocess.Switchable
	cache    *localcache.Cache
	eng      *writeback.Engine
}

func newEnv(t testing.TB, dir string) *env {
	t.Helper()
	e := &env{dir: dir}
	var err error
	if e.arch, err = dirarchive.Open(filepath.Join(dir, "archive"), nil); err != nil {
		t.Fatal(err)
	}
	if e.live, err = promtsdb.Open(filepath.Join(dir, "live"), nil); err != nil {
		t.Fatal(err)
	}
	if e.versions, err = reprocess.OpenVersions(filepath.Join(dir, "root"), nil); err != nil {
		t.Fatal(err)
	}
	if e.sw, err = reprocess.NewSwitchable(e.live, e.versions); err != nil {
		t.Fatal(err)
	}
	if e.cache, err = localcache.Open(filepath.Join(dir, "cache"), nil); err != nil {
		t.Fatal(err)
	}
	e.deploy(t, buggy)
	t.Cleanup(func() { e.close(t) })
	return e
}

// deploy (re)starts the live engine with processor p.
func (e *env) deploy(t testing.TB, p tsstore.Processor) {
	t.Helper()
	if e.eng != nil {
		if err := e.eng.Close(); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	// A test makes far fewer than 60000 generations (the cell width in
	// ms), so Seqs cannot collide without the default seal spacing.
	e.eng, err = writeback.New(e.cache, e.sw, &writeback.Options{
		Processor: p, Archives: []archive.Archive{e.arch}, Source: "live", FlushInterval: -1, SegmentPoints: 2000,
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (e *env) close(t testing.TB) {
	if e.eng == nil {
		return
	}
	for _, c := range []interface{ Close() error }{e.eng, e.cache, e.sw, e.live, e.arch} {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	}
	e.eng = nil
}

// write writes ps through the live engine in batches, flushing every
// flushEvery batches.
func (e *env) write(t testing.TB, ps []tsstore.Point, flushEvery int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i*500 < len(ps); i++ {
		if err := e.eng.Write(ctx, ps[i*500:min((i+1)*500, len(ps))]); err != nil {
			t.Fatal(err)
		}
		if flushEvery > 0 && (i+1)%flushEvery == 0 {
			if _, err := e.eng.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// history is the time layout of the tests: three hours of history before
// the cut-over, 50 minutes of live data after it, all in the last 4 hours.
type history struct{ t0, cutover, end int64 }

func newHistory() history {
	t0 := time.Now().UTC().Truncate(time.Hour).Add(-4 * time.Hour).UnixMilli()
	return history{t0: t0, cutover: t0 + 3*3_600_000, end: t0 + 3*3_600_000 + 50*60_000}
}

var cmpResults = []cmp.Option{cmpopts.EquateEmpty()}

// allCells returns the cells of every metric in [from, to), sorted.
func allCells(t testing.TB, st tsstore.Store, from, to int64) []tsstore.Cell {
	t.Helper()
	var out []tsstore.Cell
	for _, m := range metricNames {
		cs, err := st.Cells(context.Background(), tsstore.Selector{Metric: m, From: from, To: to})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, cs...)
	}
	slices.SortFunc(out, func(a, b tsstore.Cell) int {
		if a.Metric != b.Metric {
			if a.Metric < b.Metric {
				return -1
			}
			return 1
		}
		if c := a.Labels.Compare(b.Labels); c != 0 {
			return c
		}
		if a.Start != b.Start {
			return int(a.Start - b.Start)
		}
		if a.Writer != b.Writer {
			return strings.Compare(a.Writer, b.Writer)
		}
		return int(a.Seq) - int(b.Seq)
	})
	return out
}
