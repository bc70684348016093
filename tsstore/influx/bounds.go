package influx

import (
	"context"
	"fmt"
	"strings"

	"github.com/hourglass-io/hourglass/tsstore"
)

// The Store remembers, per series (metric and labels) and writer it has
// written since Open, an upper bound of the times of the points the writer
// stored in the series: none is stored after its bound. A cell whose point
// lies after the bound cannot collide with a stored point of its writer
// (other writers' points are other InfluxDB series), so Write sends it
// without reading anything. The bound is established by one read (the
// newest point of the series and writer from the earliest cell of that
// first write on) and raised by every write of the Store; it is only valid
// as long as nobody else writes the series as the same writer (the
// one-Store-per-writer assumption in the package comment).
//
// The bounds are kept in a bounds.Table, striped by series key (all
// writers of a series share its stripe). It holds at most MaxTrackedSeries
// series; adding one more evicts an arbitrary one, whose next write is
// checked and reads its bound back again.

// boundKey is what a bound is kept for: a series (its key) and a writer,
// whose points are an InfluxDB series of their own.
type boundKey struct{ series, writer string }

// unknownSeries is a series without a bound in a Write: lo is the earliest
// point time of its cells.
type unknownSeries struct {
	cell   *tsstore.Cell // one of its cells, for the metric and labels
	stripe int
	lo     int64
}

// readBounds establishes the bounds of the series in unknown (keyed by
// series key): per metric and group of up to checkMaxSeries series, one
// InfluxQL statement reads the newest stored point of each series from the
// group's earliest cell on (all statements in one request). A series with
// no point there gets the bound lo-1. It returns the bounds, which the
// caller remembers.
func (s *Store) readBounds(ctx context.Context, unknown map[boundKey]*unknownSeries) (map[boundKey]int64, error) {
	byMetric := map[string][]boundKey{}
	for k, u := range unknown {
		byMetric[u.cell.Metric] = append(byMetric[u.cell.Metric], k)
	}
	type group struct {
		lo   int64
		keys []boundKey
	}
	var groups []group
	var stmts []string
	for metric, keys := range byMetric {
		for lo := 0; lo < len(keys); lo += checkMaxSeries {
			g := group{lo: maxInfluxMillis, keys: keys[lo:min(lo+checkMaxSeries, len(keys))]}
			cs := make([]*tsstore.Cell, len(g.keys))
			for i, k := range g.keys {
				cs[i] = unknown[k].cell
				g.lo = min(g.lo, unknown[k].lo)
			}
			groups = append(groups, g)
			stmts = append(stmts, newestQuery(s.from+quoteIdent(metric), g.lo, seriesConds(cs)))
		}
	}
	newest := make(map[boundKey]int64, len(unknown))
	err := s.influxQL(ctx, strings.Join(stmts, "; "), func(stmt int, se *respSeries, r row) error {
		if stmt < 0 || stmt >= len(groups) {
			return fmt.Errorf("answer to statement %d of %d", stmt, len(groups))
		}
		ls, writer := labelsOfTags(se.Tags)
		k := boundKey{tsstore.SeriesKey(se.Name, ls), writer}
		if _, ok := unknown[k]; ok {
			if t, seen := newest[k]; !seen || r.t > t {
				newest[k] = r.t
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	bounds := make(map[boundKey]int64, len(unknown))
	for _, g := range groups {
		for _, k := range g.keys {
			if t, ok := newest[k]; ok {
				bounds[k] = t
			} else {
				bounds[k] = g.lo - 1
			}
		}
	}
	return bounds, nil
}

// newestQuery builds the InfluxQL statement that returns the newest point
// with time at or after lo (ms) of every series of from satisfying conds.
func newestQuery(from string, lo int64, conds []string) string {
	var b strings.Builder
	b.WriteString(selectFields)
	b.WriteString(" FROM ")
	b.WriteString(from)
	fmt.Fprintf(&b, " WHERE time >= %dms AND time <= %dms", lo, maxInfluxMillis)
	for _, c := range conds {
		b.WriteString(" AND ")
		b.WriteString(c)
	}
	b.WriteString(" GROUP BY * ORDER BY time DESC LIMIT 1")
	return b.String()
}
