package promapi_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/teststorage"
	"pgregory.net/rapid"

	"github.com/hourglass-io/hourglass/httpapi/promapi"
	"github.com/hourglass-io/hourglass/tsstore"
)

var propMetrics = []string{"m0", "m1"}

// genSelector draws a vector selector over the property test's series.
func genSelector(t *rapid.T, label string) string {
	name := rapid.SampledFrom([]string{"m0:count", "m0:sum", "m0:min", "m0:max", "m1:sum", "m1:count"}).Draw(t, label+"name")
	ms := rapid.SampledFrom([]string{"", `{k="x"}`, `{k!="y"}`, `{k=~"x|z"}`, `{merchant="a"}`, `{merchant!="b",k=""}`}).Draw(t, label+"matchers")
	if rapid.IntRange(0, 9).Draw(t, label+"regexname") == 0 {
		return `{__name__=~"m0:(sum|max)"` + map[bool]string{true: "", false: ",k!=\"z\""}[ms == ""] + "}"
	}
	return name + ms
}

// genExpr draws a PromQL expression of instant-vector type.
func genExpr(t *rapid.T) string {
	sel := genSelector(t, "a")
	rng := rapid.SampledFrom([]string{"1m", "5m", "7m", "1h"}).Draw(t, "range")
	switch rapid.IntRange(0, 13).Draw(t, "form") {
	case 0:
		return sel
	case 1:
		return rapid.SampledFrom([]string{"sum", "count", "max", "min", "avg"}).Draw(t, "agg") + " by (" + rapid.SampledFrom([]string{"k", "merchant", "k, merchant"}).Draw(t, "by") + ") (" + sel + ")"
	case 2:
		return rapid.SampledFrom([]string{"sum", "max", "min", "count", "avg", "last"}).Draw(t, "fn") + "_over_time(" + sel + "[" + rng + "])"
	case 3:
		return "sum by (merchant) (sum_over_time(" + sel + "[" + rng + "]))"
	case 4:
		return sel + " or " + genSelector(t, "b")
	case 5:
		return sel + " unless on(k) " + genSelector(t, "b")
	case 6:
		return "max_over_time(sum by (k) (" + sel + ")[" + rng + ":2m])"
	case 7:
		return `label_replace(` + sel + `, "z", "$1", "k", "(.*)")`
	case 8:
		return "absent(" + sel + ")"
	case 9:
		return "sum(" + sel + " offset 10m)"
	case 10:
		return "rate(" + sel + "[5m])"
	case 11:
		return "sum by (merchant) (" + sel + ") * on(merchant) group_left count by (merchant) (" + genSelector(t, "b") + ")"
	case 12:
		// Not topk: it breaks ties by the order of the series, which
		// Prometheus' storage gives by creation, not by labels.
		return "quantile(0.5, " + sel + ")"
	}
	return "count(" + sel + ") > 1"
}

// TestPropertyMatchesPrometheusStorage: random PromQL over random data, the
// data written through a write-back engine with random flushes, answers as
// the promql engine answers over Prometheus' own test storage holding the
// oracle's cells (every point aggregated straight into its cell).
func TestPropertyMatchesPrometheusStorage(t *testing.T) {
	dir := t.TempDir()
	width := tsstore.DefaultCellWidth
	runs, nonEmpty := 0, 0
	defer func() {
		t.Logf("%d of %d comparisons had a non-empty answer", nonEmpty, runs)
		if runs > 10 && nonEmpty < runs/4 {
			t.Errorf("only %d of %d comparisons had a non-empty answer: the generator misses the data", nonEmpty, runs)
		}
	}()
	rapid.Check(t, func(t *rapid.T) {
		edir, err := os.MkdirTemp(dir, "env")
		if err != nil {
			t.Fatal(err)
		}
		e, err := openEnv(edir, t0.Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := e.close(); err != nil {
				t.Error(err)
			}
		}()
		type key struct {
			series string
			start  int64
		}
		oracle := map[key]*tsstore.Agg{}
		oracleLabels := map[string]labels.Labels{}
		batches := rapid.IntRange(1, 6).Draw(t, "batches")
		for range batches {
			n := rapid.IntRange(1, 40).Draw(t, "points")
			var ps []tsstore.Point
			for range n {
				kv := []string{"merchant", rapid.SampledFrom([]string{"a", "b"}).Draw(t, "merchant")}
				if k := rapid.SampledFrom([]string{"", "x", "y", "z"}).Draw(t, "k"); k != "" {
					kv = append(kv, "k", k)
				}
				p := pt(rapid.SampledFrom(propMetrics).Draw(t, "metric"), time.Duration(rapid.IntRange(0, 90*60-1).Draw(t, "at"))*time.Second,
					float64(rapid.IntRange(-5, 20).Draw(t, "v")), kv...)
				ps = append(ps, p)
				start := tsstore.CellStart(p.Timestamp, width)
				sk := tsstore.SeriesKey(p.Metric, p.Labels)
				if oracle[key{sk, start}] == nil {
					oracle[key{sk, start}] = &tsstore.Agg{}
				}
				oracle[key{sk, start}].Add(p.Value)
				for f, field := range promapi.Fields {
					b := labels.NewScratchBuilder(3)
					b.Add("__name__", promapi.SeriesName(p.Metric, field))
					for _, l := range p.Labels {
						b.Add(l.Name, l.Value)
					}
					b.Sort()
					oracleLabels[fmt.Sprint(sk, f)] = b.Labels()
				}
			}
			if err := e.eng.Write(context.Background(), ps); err != nil {
				t.Fatal(err)
			}
			if rapid.Bool().Draw(t, "flush") {
				if _, err := e.eng.Flush(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
		}

		ts, err := teststorage.NewWithError()
		if err != nil {
			t.Fatal(err)
		}
		defer ts.Close()
		type sample struct {
			ls labels.Labels
			t  int64
			v  float64
		}
		var samples []sample
		for k, a := range oracle {
			for f := range promapi.Fields {
				v := []float64{float64(a.Count), a.Sum, a.Min, a.Max}[f]
				samples = append(samples, sample{oracleLabels[fmt.Sprint(k.series, f)], k.start, v})
			}
		}
		slices.SortFunc(samples, func(a, b sample) int { return int(a.t - b.t) })
		app := ts.Appender(context.Background())
		for _, s := range samples {
			if _, err := app.Append(0, s.ls, s.t, s.v); err != nil {
				t.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}

		expr := genExpr(t)
		start := t0.Add(time.Duration(rapid.IntRange(-10, 80).Draw(t, "start")) * time.Minute)
		end := start.Add(time.Duration(rapid.IntRange(0, 60).Draw(t, "len")) * time.Minute)
		step := time.Duration(rapid.SampledFrom([]int{30, 60, 300, 420}).Draw(t, "step")) * time.Second
		// The engine is a BucketSource; hidden behind cellsOnly, the
		// storage reads its partials with Cells and sums them itself.
		var src promapi.CellSource = e.eng
		if rapid.Bool().Draw(t, "viaCells") {
			src = cellsOnly{e.eng}
		}
		ours := promapi.NewStorage(src, &promapi.StorageOptions{Metrics: func(context.Context) ([]string, error) { return propMetrics, nil }})
		check := func(what, qs string, q storage.Queryable) {
			want, werr := rangeQuery(ts, qs, start, end, step)
			got, gerr := rangeQuery(q, qs, start, end, step)
			if (werr != nil) != (gerr != nil) {
				t.Fatalf("%s %s: error %v, Prometheus' storage %v", what, qs, gerr, werr)
			}
			runs++
			if len(want) > 0 {
				nonEmpty++
			}
			opts := cmp.Options{cmpopts.EquateApprox(0, 1e-9), cmpopts.EquateNaNs(), cmp.Comparer(func(a, b labels.Labels) bool { return labels.Equal(a, b) })}
			if diff := cmp.Diff(want, got, opts); diff != "" {
				t.Fatalf("%s %s over [%v, %v] step %v (-Prometheus' storage +promapi):\n%s\nPrometheus' storage:\n%v\npromapi:\n%v", what, qs, start, end, step, diff, want, got)
			}
		}
		check("all merchants:", expr, ours)
		// A merchant's storage and enforced expression answer as the
		// enforced expression over all the data.
		pe, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
		if err != nil {
			t.Fatal(err)
		}
		if err := promapi.EnforceExpr(pe, "a"); err == nil {
			check("merchant a:", pe.String(), ours.ForMerchant("a"))
		}
	})
}

// cellsOnly hides every method of a source but Cells and CellWidth.
type cellsOnly struct{ src promapi.CellSource }

func (c cellsOnly) Cells(ctx context.Context, sel tsstore.Selector) ([]tsstore.Cell, error) {
	return c.src.Cells(ctx, sel)
}
func (c cellsOnly) CellWidth() time.Duration { return c.src.CellWidth() }

var propEngine = promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: time.Minute, LookbackDelta: 5 * time.Minute, EnableAtModifier: true})

func rangeQuery(q storage.Queryable, qs string, start, end time.Time, step time.Duration) (promql.Matrix, error) {
	qry, err := propEngine.NewRangeQuery(context.Background(), q, nil, qs, start, end, step)
	if err != nil {
		return nil, err
	}
	defer qry.Close()
	res := qry.Exec(context.Background())
	if res.Err != nil {
		return nil, res.Err
	}
	m, err := res.Matrix()
	if err != nil {
		return nil, err
	}
	// Close hands the points back to the engine's pool: copy them.
	out := make(promql.Matrix, len(m))
	for i := range m {
		out[i] = promql.Series{Metric: m[i].Metric.Copy(), Floats: slices.Clone(m[i].Floats)}
		if len(out[i].Floats) == 0 {
			out[i].Floats = nil
		}
		for _, p := range out[i].Floats {
			if math.IsInf(p.F, 0) {
				return nil, errors.New("infinite value")
			}
		}
	}
	return out, nil
}
