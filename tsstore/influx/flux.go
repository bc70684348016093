package influx

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api"

	"github.com/hourglass-io/hourglass/tsstore"
)

// fluxString quotes a Flux string literal.
func fluxString(s string) string {
	return `"` + fluxReplacer.Replace(s) + `"`
}

var fluxReplacer = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "${", `\${`, "\n", `\n`, "\r", `\r`, "\t", `\t`)

// fluxTime formats ms as a Flux datetime literal.
func fluxTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }

// fluxQuery builds the Flux query that returns the four fields of the
// points of metric with time in [lo, hi] (ms) in bucket, with the matchers
// pushed down as in InfluxQL (a superset, filtered exactly afterwards).
// The answer is not pivoted, so that a tag cannot collide with a field's
// column.
func fluxQuery(bucket, metric string, ms []tsstore.Matcher, lo, hi int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "from(bucket: %s)\n", fluxString(bucket))
	fmt.Fprintf(&b, "  |> range(start: %s, stop: %s)\n", fluxTime(lo), fluxTime(hi+1))
	fmt.Fprintf(&b, "  |> filter(fn: (r) => r._measurement == %s)\n", fluxString(metric))
	b.WriteString(`  |> filter(fn: (r) => r._field == "count" or r._field == "sum" or r._field == "min" or r._field == "max")` + "\n")
	for i := range ms {
		m := &ms[i]
		if m.Matches("") || m.Name == writerTag {
			continue // the writer tag is not a label: left to the exact filter
		}
		col := "r[" + fluxString(tagKey(m.Name)) + "]"
		enc := col + " =~ /^" + encodedPrefix + "/"
		switch m.Type {
		case tsstore.MatchEqual:
			fmt.Fprintf(&b, "  |> filter(fn: (r) => exists %s and %s == %s)\n", col, col, fluxString(encodeTagValue(m.Value)))
		case tsstore.MatchRegexp:
			fmt.Fprintf(&b, "  |> filter(fn: (r) => exists %s and (%s =~ %s or %s))\n", col, col, quoteRegex(anchored(m.Value)), enc)
		case tsstore.MatchNotRegexp:
			fmt.Fprintf(&b, "  |> filter(fn: (r) => exists %s and (%s !~ %s or %s))\n", col, col, quoteRegex(anchored(m.Value)), enc)
		}
	}
	return b.String()
}

// fluxColumns are the columns of a Flux answer that are not tags.
var fluxColumns = map[string]bool{
	"result": true, "table": true, "_start": true, "_stop": true, "_time": true,
	"_value": true, "_field": true, "_measurement": true,
}

// fluxPartial collects the four field records of one point.
type fluxPartial struct {
	labels tsstore.Labels
	writer string
	t      int64
	agg    tsstore.Agg
	seen   int // bit per field
}

// readFlux reads the records of a Flux answer (annotated CSV, as parsed by
// the client's QueryTableResult), joins the four fields of every point and
// calls emit for each complete point in no particular order.
func readFlux(res *api.QueryTableResult, emit func(metric string, ls tsstore.Labels, writer string, t int64, a tsstore.Agg)) error {
	type key struct {
		series, writer string
		t              int64
	}
	points := map[key]*fluxPartial{}
	metrics := map[key]string{}
	for res.Next() {
		r := res.Record()
		vals := r.Values()
		tags := make(map[string]string, len(vals))
		for k, v := range vals {
			if fluxColumns[k] {
				continue
			}
			if s, ok := v.(string); ok {
				tags[k] = s
			}
		}
		ls, writer := labelsOfTags(tags)
		t := r.Time().UnixMilli()
		k := key{tsstore.SeriesKey(r.Measurement(), ls), writer, t}
		p := points[k]
		if p == nil {
			p = &fluxPartial{labels: ls, writer: writer, t: t}
			points[k] = p
			metrics[k] = r.Measurement()
		}
		switch f, v := r.Field(), r.Value(); f {
		case fieldCount:
			switch n := v.(type) {
			case int64:
				p.agg.Count = uint64(n)
			case uint64:
				p.agg.Count = n
			default:
				return fmt.Errorf("flux: field count of %s%s@%d is %T, not an integer", r.Measurement(), ls, t, v)
			}
			p.seen |= 1
		case fieldSum, fieldMin, fieldMax:
			x, ok := v.(float64)
			if !ok {
				return fmt.Errorf("flux: field %s of %s%s@%d is %T, not a float", f, r.Measurement(), ls, t, v)
			}
			switch f {
			case fieldSum:
				p.agg.Sum, p.seen = x, p.seen|2
			case fieldMin:
				p.agg.Min, p.seen = x, p.seen|4
			case fieldMax:
				p.agg.Max, p.seen = x, p.seen|8
			}
		}
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("flux: read answer: %w", err)
	}
	for k, p := range points {
		if p.seen == 15 {
			emit(metrics[k], p.labels, p.writer, p.t, p.agg)
		}
	}
	return nil
}

// fluxCells reads the cells of metric with points in [lo, hi] through Flux.
func (s *Store) fluxCells(ctx context.Context, metric string, ms []tsstore.Matcher, lo, hi int64, emit func(string, tsstore.Labels, string, int64, tsstore.Agg)) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	res, err := s.queryV2.Query(ctx, fluxQuery(s.opts.Bucket, metric, ms, lo, hi))
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("flux query: %w", err)
		}
		return tsstore.Errorf(tsstore.ErrUnavailable, "flux query to %s: %w", s.url, err)
	}
	defer res.Close()
	if err := readFlux(res, emit); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("flux query: %w", ctx.Err())
		}
		return tsstore.Errorf(tsstore.ErrUnavailable, "%w", err)
	}
	return nil
}
