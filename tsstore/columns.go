package tsstore

import "fmt"

// SeriesLabels is what a point is of: a metric and its labels.
type SeriesLabels struct {
	Metric string
	Labels Labels
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
// columns cost one pass over the points with no call per point: the
// errors are made only for a fault.
func (c *Columns) Validate() error {
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
