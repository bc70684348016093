package tsstore

import (
	"fmt"
	"math"
	"strings"
)

// SeriesLabels is what a point is of: a metric and its labels.
type SeriesLabels struct {
	Metric string
	Labels Labels
}

// Compare orders series by metric, then by labels (Labels.Compare).
func (s SeriesLabels) Compare(o SeriesLabels) int {
	if c := strings.Compare(s.Metric, o.Metric); c != 0 {
		return c
	}
	return s.Labels.Compare(o.Labels)
}

// Validate checks the metric name and the labels, as Point.Validate does.
func (s SeriesLabels) Validate() error {
	if err := ValidateMetric(s.Metric); err != nil {
		return err
	}
	if err := s.Labels.Validate(); err != nil {
		return fmt.Errorf("metric %s: %w", s.Metric, err)
	}
	return nil
}

// Columns are points laid out column by column, for the bulk paths that
// move millions of raw points at a time (a write-ahead log read back for
// the archive, a segment being encoded): the i-th point is of series
// Series[IDs[i]], at Times[i] (ms since the epoch), with Values[i]. A
// series' strings stand once in Series however many points it has, and
// the three point columns hold no pointers, so the garbage collector does
// not scan them. The columns are in no particular order; Series may hold
// the same content twice (a reader that splits a log into chunks need not
// merge what it saw in an earlier chunk).
type Columns struct {
	Series []SeriesLabels
	IDs    []int32
	Times  []int64
	Values []float64
}

// Len returns the number of points.
func (c *Columns) Len() int { return len(c.Times) }

// Point returns the i-th point. Its labels are the series' own slice.
func (c *Columns) Point(i int) Point {
	s := &c.Series[c.IDs[i]]
	return Point{Metric: s.Metric, Labels: s.Labels, Timestamp: c.Times[i], Value: c.Values[i]}
}

// AppendPoints appends the points to dst, in column order, and returns it.
func (c *Columns) AppendPoints(dst []Point) []Point {
	dst = append(dst, make([]Point, c.Len())...)
	out := dst[len(dst)-c.Len():]
	for i := range out {
		out[i] = c.Point(i)
	}
	return dst
}

// Check verifies that the columns are as long as each other and that every
// id names a series; it does not validate the points (see Validate). The
// error, of kind ErrInvalid, names the first fault.
func (c *Columns) Check() error {
	if len(c.IDs) != len(c.Times) || len(c.Values) != len(c.Times) {
		return Errorf(ErrInvalid, "columns: %d ids, %d times and %d values, want as many of each", len(c.IDs), len(c.Times), len(c.Values))
	}
	for i, id := range c.IDs {
		if id < 0 || int(id) >= len(c.Series) {
			return Errorf(ErrInvalid, "columns: point %d: series %d of %d", i, id, len(c.Series))
		}
	}
	return nil
}

// Validate checks the columns (Check), then every series once (metric and
// labels, as Point.Validate does) and every point's timestamp and value.
// The error, of kind ErrInvalid, names the first bad point by index. Valid
// columns cost one pass over the points with no branch per point (Valid):
// the errors are looked for only when there is one.
func (c *Columns) Validate() error {
	if c.Valid(0, MaxTimestamp-1) {
		return nil
	}
	if err := c.Check(); err != nil {
		return err
	}
	bad := make([]error, len(c.Series))
	anyBad := false
	for i := range c.Series {
		bad[i] = c.Series[i].Validate()
		anyBad = anyBad || bad[i] != nil
	}
	for i, t := range c.Times {
		// v-v is NaN for NaN and ±Inf.
		if v := c.Values[i]; t >= 0 && t < MaxTimestamp && v-v == 0 && !(anyBad && bad[c.IDs[i]] != nil) {
			continue
		}
		if err := bad[c.IDs[i]]; err != nil {
			return fmt.Errorf("point %d: %w", i, err)
		}
		if err := c.Point(i).ValidateScalars(); err != nil {
			return fmt.Errorf("point %d: %w", i, err)
		}
	}
	return nil
}

// Valid reports whether Validate would return nil and every timestamp
// lies in [from, to], with no error made (and, for valid columns, nothing
// allocated): every series is validated (a bad one is a fault only if a
// point has it), then one pass over the points keeps the least and
// greatest timestamp and ORs together whether a value's exponent is all
// ones (NaN and ±Inf), with no branch per point. Bulk appenders (the
// archives) check their input with it and call Validate only for the
// error.
func (c *Columns) Valid(from, to int64) bool {
	if c.Check() != nil {
		return false
	}
	var used []bool // made at the first bad series
	for i := range c.Series {
		if c.Series[i].Validate() == nil {
			continue
		}
		if used == nil {
			used = make([]bool, len(c.Series))
			for _, id := range c.IDs {
				used[id] = true
			}
		}
		if used[i] {
			return false
		}
	}
	if len(c.Times) == 0 {
		return true
	}
	values := c.Values[:len(c.Times)]
	lo, hi := c.Times[0], c.Times[0]
	var notFinite uint64
	for i, t := range c.Times {
		lo, hi = min(lo, t), max(hi, t)
		// 1 when the exponent's 11 bits are all ones.
		notFinite |= (math.Float64bits(values[i])>>52&0x7ff + 1) >> 11
	}
	return notFinite == 0 && lo >= from && hi <= to && lo >= 0 && hi < MaxTimestamp
}
