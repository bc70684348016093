package writeback_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/writeback"
)

// TestProcessedPointErrors checks that an invalid point made by the
// processor is named by the raw point and its place among what that point
// made, and that nothing of the batch is kept.
func TestProcessedPointErrors(t *testing.T) {
	proc := tsstore.ProcessorFunc{V: "split/1", F: func(dst []tsstore.Point, p tsstore.Point) ([]tsstore.Point, error) {
		bad := p
		bad.Metric = "bad metric"
		if p.Value == 2 {
			return append(dst, p, bad), nil
		}
		if p.Value == -2 {
			// A processor may return nil with its error.
			return nil, tsstore.Errorf(tsstore.ErrInvalid, "minus two")
		}
		if p.Value < 0 {
			return dst, tsstore.Errorf(tsstore.ErrInvalid, "negative")
		}
		return append(dst, p, p), nil
	}}
	e := newEnv(t, &writeback.Options{Processor: proc})
	now := e.clock.Millis()
	for _, c := range []struct {
		values []float64
		want   string
	}{
		{[]float64{1, 1, 2, 1}, "point 2: processor split/1 made point 1: metric name \"bad metric\""},
		{[]float64{1, 2, -1}, "point 1: processor split/1 made point 1:"},
		{[]float64{1, -1}, "point 1: processor split/1: negative"},
		{[]float64{1, 1, -2}, "point 2: processor split/1: minus two"},
	} {
		var b []tsstore.Point
		for _, v := range c.values {
			b = append(b, pt("order", "m1", now, v))
		}
		err := e.eng.Write(ctx, b)
		if !errors.Is(err, tsstore.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: Write = %v; want ErrInvalid saying %q", c.values, err, c.want)
		}
	}
	if st := e.eng.Stats(); st.CachePoints != 0 {
		t.Errorf("rejected batches left %d points", st.CachePoints)
	}
}

// TestPassThroughProcessorLogsOnce checks that points a processor makes
// into themselves are logged once, as with the identity processor.
func TestPassThroughProcessorLogsOnce(t *testing.T) {
	pass := tsstore.ProcessorFunc{V: "pass/1", F: func(dst []tsstore.Point, p tsstore.Point) ([]tsstore.Point, error) {
		return append(dst, p), nil
	}}
	double := tsstore.ProcessorFunc{V: "double/1", F: func(dst []tsstore.Point, p tsstore.Point) ([]tsstore.Point, error) {
		p.Value *= 2
		return append(dst, p), nil
	}}
	sizes := map[string]int64{}
	for name, proc := range map[string]tsstore.Processor{"identity": nil, "pass": pass, "double": double} {
		e := newEnv(t, &writeback.Options{Processor: proc})
		now := e.clock.Millis()
		var b []tsstore.Point
		for i := range 100 {
			b = append(b, pt("views", "m1", now, float64(i)))
		}
		if err := e.eng.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
		names, _ := filepath.Glob(filepath.Join(e.dir, "*.wal"))
		for _, n := range names {
			fi, err := os.Stat(n)
			if err != nil {
				t.Fatal(err)
			}
			sizes[name] += fi.Size()
		}
	}
	if sizes["pass"] != sizes["identity"] || sizes["double"] <= sizes["identity"] {
		t.Errorf("log bytes %v: want pass = identity < double", sizes)
	}
}

// TestProcessedBuffersConcurrentWriters: writers at once through a
// processor that makes points of its own, which the engine makes in a
// pooled buffer and reuses once the cache has them: every cell is exact,
// cached and flushed (and the race detector sees no buffer reused while a
// cache reads it).
func TestProcessedBuffersConcurrentWriters(t *testing.T) {
	split := tsstore.ProcessorFunc{V: "split/1", F: func(dst []tsstore.Point, p tsstore.Point) ([]tsstore.Point, error) {
		a, b := p, p
		a.Metric, b.Metric, b.Value = "a", "b", 2*p.Value
		return append(dst, a, b), nil
	}}
	e := newEnv(t, &writeback.Options{Processor: split})
	now := e.clock.Millis()
	o := newOracle()
	const writers, batches, size = 4, 30, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range batches {
				raw := make([]tsstore.Point, size)
				for j := range raw {
					raw[j] = pt("views", fmt.Sprintf("m%d", j%7), now-int64((w*batches+i)*size+j), float64(w*1000+j))
				}
				var processed []tsstore.Point
				for _, p := range raw {
					processed, _ = split.Process(processed, p)
				}
				if err := e.eng.Write(ctx, raw); err != nil {
					t.Error(err)
					return
				}
				o.add(raw, processed)
			}
		})
	}
	wg.Wait()
	check := func(when string) {
		t.Helper()
		for _, metric := range []string{"a", "b"} {
			q := tsstore.Query{Metric: metric, From: now - time.Hour.Milliseconds(), To: now + time.Minute.Milliseconds(), Step: time.Minute, GroupBy: []string{"merchant"}}
			got, err := e.eng.Query(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if d := diff(o.query(t, q), got); d != "" {
				t.Errorf("%s, %s (-want +got):\n%s", when, metric, d)
			}
		}
	}
	check("cached")
	e.flush(t)
	check("flushed")
}
