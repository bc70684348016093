package promremote

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/hourglass-io/hourglass/internal/httpretry"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/internal/bounds"
)

// The labels of the encoding (see the package comment): the series name
// and the writer, as promtsdb names them.
const (
	nameLabel   = tsstore.ReservedLabel
	writerLabel = tsstore.WriterLabel
)

// components are the suffixes of a cell's four series, in the order of
// comps.v: count, sum, min, max.
var components = [numComps]string{"count", "sum", "min", "max"}

const numComps = 4

// pending is a cell of a Write with what the Store works out about it.
type pending struct {
	c      *tsstore.Cell
	index  int    // in the caller's batch
	series string // key of (metric, labels, writer)
	stripe int
	ts     int64 // Start+Seq
}

// seriesKey returns the key of c's series: metric, labels and writer.
func seriesKey(c *tsstore.Cell) string {
	return tsstore.SeriesKey(c.Metric, c.Labels) + "\xfc" + c.Writer
}

// Write stores cells as samples of four series each (see the package
// comment). It first reads back the stored samples of the cells that may
// already be stored: a cell stored with the same aggregate is not sent
// again, one stored with another fails the whole batch with
// tsstore.ErrConflict before anything is sent. It returns once the engine
// acknowledged every request and the flush URLs answered, so that Cells
// and Query see the cells.
func (s *Store) Write(ctx context.Context, cells []tsstore.Cell) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("promremote: write: %w", err)
	}
	if err := tsstore.ValidateCells(cells, s.width); err != nil {
		return fmt.Errorf("promremote: write: %w", err)
	}
	if len(s.extKeys) > 0 {
		for i := range cells {
			for _, l := range cells[i].Labels {
				if s.extKeys[l.Name] {
					return tsstore.Errorf(tsstore.ErrInvalid, "promremote: write: cell %d %s%s: label %q is one of the store's external labels", i, cells[i].Metric, cells[i].Labels, l.Name)
				}
			}
		}
	}
	if err := s.checkKept(cells); err != nil {
		return err
	}
	if err := s.begin("write"); err != nil {
		return err
	}
	defer s.end()

	// One sample set per identity: identical duplicates are dropped,
	// differing ones are a conflict within the batch.
	todo := make([]pending, 0, len(cells))
	seen := make(map[tsstore.CellID]int, len(cells))
	var prev *tsstore.Cell
	var series string
	for i := range cells {
		c := &cells[i]
		if prev == nil || c.Metric != prev.Metric || c.Writer != prev.Writer || !c.Labels.Equal(prev.Labels) {
			series, prev = seriesKey(c), c
		}
		id := tsstore.CellID{Series: series, Start: c.Start, Seq: c.Seq}
		if j, ok := seen[id]; ok {
			if cells[j].Agg != c.Agg {
				return tsstore.Errorf(tsstore.ErrConflict, "promremote: write: cell %d %s appears twice in the batch (also cell %d) with different aggregates", i, c.IDString(), j)
			}
			continue
		}
		seen[id] = i
		todo = append(todo, pending{c: c, index: i, series: series, stripe: bounds.Stripe(series), ts: c.Start + int64(c.Seq)})
	}
	slices.SortFunc(todo, func(a, b pending) int {
		if c := strings.Compare(a.series, b.series); c != 0 {
			return c
		}
		return cmp.Compare(a.ts, b.ts)
	})

	unlock := s.bounds.Lock(len(todo), func(i int) int { return todo[i].stripe })
	defer unlock()
	todo, err := s.checkConflicts(ctx, todo)
	if err != nil {
		return err
	}
	if len(todo) == 0 {
		return nil
	}
	var enc encoder
	for lo := 0; lo < len(todo); lo += s.opts.BatchSize {
		chunk := todo[lo:min(lo+s.opts.BatchSize, len(todo))]
		body, err := enc.encode(chunk, s.opts.ExternalLabels)
		if err != nil {
			return tsstore.Errorf(tsstore.ErrInvalid, "promremote: write: encoding a request: %w", err)
		}
		if _, err := s.do(ctx, request{method: http.MethodPost, url: s.writeURL, body: body, header: remoteWriteHeader}); err != nil {
			return s.writeError(err, chunk)
		}
	}
	return s.settle(ctx)
}

// checkKept refuses cells the engine would drop behind a 2xx: outside
// VictoriaMetrics' retention around the present.
func (s *Store) checkKept(cells []tsstore.Cell) error {
	if s.retention <= 0 && s.future <= 0 {
		return nil
	}
	now := time.Now()
	for i := range cells {
		c := &cells[i]
		t := tsstore.TimeOf(c.Start + int64(c.Seq))
		if s.retention > 0 && t.Before(now.Add(-s.retention)) {
			return tsstore.Errorf(tsstore.ErrInvalid, "promremote: write: cell %d %s is older than the engine's retention of %v: it would be dropped", i, c.IDString(), s.retention)
		}
		if s.future > 0 && t.After(now.Add(s.future)) {
			return tsstore.Errorf(tsstore.ErrInvalid, "promremote: write: cell %d %s is more than the engine's -futureRetention of %v ahead: it would be dropped", i, c.IDString(), s.future)
		}
	}
	return nil
}

var remoteWriteHeader = http.Header{
	"Content-Encoding":                  {"snappy"},
	"Content-Type":                      {"application/x-protobuf"},
	"User-Agent":                        {"hourglass-promremote"},
	"X-Prometheus-Remote-Write-Version": {"0.1.0"},
}

// settle makes what was written visible to reads: it requests the flush
// URLs and waits Options.SettleDelay.
func (s *Store) settle(ctx context.Context) error {
	for _, u := range s.flushURLs {
		if _, err := s.do(ctx, request{method: http.MethodGet, url: u}); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("promremote: write: flush %s: %w", u, ctx.Err())
			}
			return tsstore.Errorf(tsstore.ErrUnavailable, "promremote: write: written, but the flush %s failed, so reads may not see it yet: %w", u, err)
		}
	}
	if s.opts.SettleDelay > 0 {
		t := time.NewTimer(s.opts.SettleDelay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return fmt.Errorf("promremote: write: settling: %w", ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// writeError classifies the failure of a request that carried chunk,
// naming the series the engine's message names (or the first of the
// request's).
func (s *Store) writeError(err error, chunk []pending) error {
	var f *httpretry.Failure
	if !errors.As(err, &f) {
		return fmt.Errorf("promremote: write: %w", err)
	}
	kind := kindOf(f)
	if kind != tsstore.ErrInvalid {
		return tsstore.Errorf(kind, "promremote: write to %s: %w", s.writeURL, f)
	}
	named := chunk[0]
	for _, p := range chunk {
		if mentions(f.Msg, p.c) {
			named = p
			break
		}
	}
	c := named.c
	return tsstore.Errorf(tsstore.ErrInvalid, "promremote: write: the engine refused a request of %d cells with cell %d %s: %w", len(chunk), named.index, c.IDString(), f)
}

// mentions reports whether an engine's error message names c's series.
func mentions(msg string, c *tsstore.Cell) bool {
	if !strings.Contains(msg, c.Metric+":") {
		return false
	}
	for _, l := range c.Labels {
		if !strings.Contains(msg, l.Value) {
			return false
		}
	}
	return true
}

// encoder builds remote-write request bodies, reusing its buffers.
type encoder struct {
	req     prompb.WriteRequest
	raw     []byte
	out     []byte
	labels  []prompb.Label
	samples []prompb.Sample
}

// encode returns the snappy-compressed WriteRequest of the cells of
// chunk (sorted by series, then time): four time series per series, one
// sample per cell in each. The result is valid until the next call.
func (e *encoder) encode(chunk []pending, ext tsstore.Labels) ([]byte, error) {
	// Size the buffers first: the time series point into them.
	nl := 0
	for lo := 0; lo < len(chunk); {
		hi := lo + 1
		for hi < len(chunk) && chunk[hi].series == chunk[lo].series {
			hi++
		}
		nl += numComps * (2 + len(chunk[lo].c.Labels) + len(ext))
		lo = hi
	}
	if cap(e.labels) < nl {
		e.labels = make([]prompb.Label, 0, nl)
	}
	if cap(e.samples) < numComps*len(chunk) {
		e.samples = make([]prompb.Sample, numComps*len(chunk))
	}
	e.labels, e.samples = e.labels[:0], e.samples[:numComps*len(chunk)]
	e.req.Timeseries = e.req.Timeseries[:0]
	for lo := 0; lo < len(chunk); {
		hi := lo + 1
		for hi < len(chunk) && chunk[hi].series == chunk[lo].series {
			hi++
		}
		c := chunk[lo].c
		// The series' labels, sorted once: only __name__'s value differs
		// between its four series.
		first := len(e.labels)
		e.labels = append(e.labels, prompb.Label{Name: nameLabel})
		if c.Writer != "" {
			e.labels = append(e.labels, prompb.Label{Name: writerLabel, Value: c.Writer})
		}
		for _, l := range c.Labels {
			e.labels = append(e.labels, prompb.Label{Name: l.Name, Value: l.Value})
		}
		for _, l := range ext {
			e.labels = append(e.labels, prompb.Label{Name: l.Name, Value: l.Value})
		}
		tmpl := e.labels[first:]
		slices.SortFunc(tmpl, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
		name := slices.IndexFunc(tmpl, func(l prompb.Label) bool { return l.Name == nameLabel })
		for k := range numComps {
			var ls []prompb.Label
			if k == 0 {
				ls = tmpl
			} else {
				start := len(e.labels)
				e.labels = append(e.labels, tmpl...)
				ls = e.labels[start:len(e.labels):len(e.labels)]
			}
			ls[name].Value = c.Metric + ":" + components[k]
			samples := e.samples[numComps*lo+k*(hi-lo) : numComps*lo+(k+1)*(hi-lo)]
			for j := lo; j < hi; j++ {
				samples[j-lo] = prompb.Sample{Timestamp: chunk[j].ts, Value: componentValue(chunk[j].c, k)}
			}
			e.req.Timeseries = append(e.req.Timeseries, prompb.TimeSeries{Labels: ls[:len(ls):len(ls)], Samples: samples})
		}
		lo = hi
	}
	n := e.req.Size()
	if cap(e.raw) < n {
		e.raw = make([]byte, n)
	}
	e.raw = e.raw[:n]
	if _, err := e.req.MarshalToSizedBuffer(e.raw); err != nil {
		return nil, err
	}
	e.out = snappy.Encode(e.out[:cap(e.out)], e.raw)
	return e.out, nil
}

func componentValue(c *tsstore.Cell, k int) float64 {
	switch k {
	case 0:
		return float64(c.Count)
	case 1:
		return c.Sum
	case 2:
		return c.Min
	}
	return c.Max
}
