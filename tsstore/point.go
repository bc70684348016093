package tsstore

import (
	"fmt"
	"math"
	"time"
)

// Point is one raw observation: what clients write and what the archive
// keeps forever.
type Point struct {
	Metric string
	Labels Labels
	// Timestamp is in milliseconds since the Unix epoch.
	Timestamp int64
	Value     float64
}

// Validate checks the metric name, the labels, the timestamp and that the
// value is finite. The error, of kind ErrInvalid, names what was wrong.
func (p Point) Validate() error {
	if err := p.ValidateSeries(); err != nil {
		return err
	}
	return p.ValidateScalars()
}

// ValidateSeries is the half of Validate that depends only on the series:
// the metric name and the labels. A bulk path that has many points of one
// series validates it once.
func (p Point) ValidateSeries() error {
	return SeriesLabels{Metric: p.Metric, Labels: p.Labels}.Validate()
}

// ValidateScalars is the other half of Validate: the timestamp and the
// value.
func (p Point) ValidateScalars() error {
	if err := validateTimestamp("timestamp", p.Timestamp); err != nil {
		return fmt.Errorf("%s%s: %w", p.Metric, p.Labels, err)
	}
	if err := validateValue("value", p.Value); err != nil {
		return fmt.Errorf("%s%s: %w", p.Metric, p.Labels, err)
	}
	return nil
}

// ValidatePoints validates every point; the error names the index and the
// point of the first bad one.
func ValidatePoints(ps []Point) error {
	for i := range ps {
		if err := ps[i].Validate(); err != nil {
			return fmt.Errorf("point %d: %w", i, err)
		}
	}
	return nil
}

// Millis returns t in milliseconds since the Unix epoch.
func Millis(t time.Time) int64 { return t.UnixMilli() }

// TimeOf returns the time of ms milliseconds since the Unix epoch, in UTC.
func TimeOf(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// Agg is a mergeable partial aggregate of values. The zero value is the
// empty aggregate (Count 0); Min and Max are meaningful only when Count > 0.
// Merging is associative and commutative (see the package comment on
// exactness).
type Agg struct {
	Count    uint64
	Sum      float64
	Min, Max float64
}

// AggOf returns the aggregate of the single value v: {1, v, v, v}.
func AggOf(v float64) Agg { return Agg{Count: 1, Sum: v, Min: v, Max: v} }

// Add adds the value v to a.
func (a *Agg) Add(v float64) { a.Merge(AggOf(v)) }

// Merge merges b into a.
func (a *Agg) Merge(b Agg) {
	if b.Count == 0 {
		return
	}
	if a.Count == 0 {
		*a = b
		return
	}
	a.Count += b.Count
	a.Sum += b.Sum
	a.Min = math.Min(a.Min, b.Min)
	a.Max = math.Max(a.Max, b.Max)
}

// Mean returns Sum/Count, or NaN for the empty aggregate.
func (a Agg) Mean() float64 {
	if a.Count == 0 {
		return math.NaN()
	}
	return a.Sum / float64(a.Count)
}

// Validate checks that a is a possible aggregate: Count > 0, finite fields,
// Min <= Max.
func (a Agg) Validate() error {
	if a.Count == 0 {
		return Errorf(ErrInvalid, "aggregate has count 0")
	}
	for _, f := range [...]struct {
		n string
		v float64
	}{{"sum", a.Sum}, {"min", a.Min}, {"max", a.Max}} {
		if err := validateValue(f.n, f.v); err != nil {
			return err
		}
	}
	if a.Min > a.Max {
		return Errorf(ErrInvalid, "aggregate min %v > max %v", a.Min, a.Max)
	}
	return nil
}

// Cell is the aggregate of one series' points within [Start, Start+width),
// produced by one flush of one writer. Its identity is (Metric, Labels,
// Start, Writer, Seq): partials of different writers never collide, stores
// keep them apart and queries sum them.
type Cell struct {
	Metric string
	Labels Labels
	// Start is the cell's first millisecond, a multiple of the cell width.
	Start int64
	// Writer names the engine that produced the partial (see
	// [ValidateWriter]). "" is the legacy writer: cells stored before
	// writers were part of the identity read back with Writer "". Stores
	// keep it out of query results.
	Writer string
	// Seq numbers the writer's partials of the same cell, from 0. It must
	// be smaller than the cell width in milliseconds (stores place a
	// partial at Start+Seq ms).
	Seq uint32
	Agg
}

// CellID is the identity of a cell in comparable form (usable as a map
// key): the series key (see [Labels.Key]) with the metric, Start, Writer
// and Seq.
type CellID struct {
	Series string
	Start  int64
	Writer string
	Seq    uint32
}

// SeriesKey returns a string that identifies the series (metric, labels)
// exactly.
func SeriesKey(metric string, ls Labels) string {
	return metric + "\xfd" + ls.Key()
}

// IDString names c's identity in errors and logs: metric, labels, start
// in ms, the writer unless it is the legacy one, and seq, as in
// `views{merchant="m1"}@1767322800000 writer "w1" seq 0`. It is not a
// String method, so that printing a Cell with %v still shows its Agg.
func (c *Cell) IDString() string {
	if c.Writer == "" {
		return fmt.Sprintf("%s%s@%d seq %d", c.Metric, c.Labels, c.Start, c.Seq)
	}
	return fmt.Sprintf("%s%s@%d writer %q seq %d", c.Metric, c.Labels, c.Start, c.Writer, c.Seq)
}

// ID returns the identity of c.
func (c *Cell) ID() CellID {
	return CellID{Series: SeriesKey(c.Metric, c.Labels), Start: c.Start, Writer: c.Writer, Seq: c.Seq}
}

// CellStart returns the start of the cell of the given width that holds
// the timestamp t (ms).
func CellStart(t int64, width time.Duration) int64 {
	w := width.Milliseconds()
	return t - mod(t, w)
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// Validate checks c for a store whose cells are width wide: metric, labels,
// Start aligned to width and in range, the writer, Seq < width in ms, a
// valid Agg.
func (c *Cell) Validate(width time.Duration) error {
	if err := ValidateMetric(c.Metric); err != nil {
		return err
	}
	if err := c.Labels.Validate(); err != nil {
		return fmt.Errorf("cell %s: %w", c.Metric, err)
	}
	if err := validateTimestamp("cell start", c.Start); err != nil {
		return fmt.Errorf("cell %s%s: %w", c.Metric, c.Labels, err)
	}
	if err := ValidateWriter(c.Writer); err != nil {
		return fmt.Errorf("cell %s: %w", c.IDString(), err)
	}
	w := width.Milliseconds()
	if c.Start%w != 0 {
		return Errorf(ErrInvalid, "cell %s: start %d is not a multiple of the cell width %v", c.IDString(), c.Start, width)
	}
	if int64(c.Seq) >= w {
		return Errorf(ErrInvalid, "cell %s: seq %d is not below the cell width of %d ms", c.IDString(), c.Seq, w)
	}
	if err := c.Agg.Validate(); err != nil {
		return fmt.Errorf("cell %s: %w", c.IDString(), err)
	}
	return nil
}

// ValidateCells validates every cell; the error names the index of the first
// bad one.
func ValidateCells(cells []Cell, width time.Duration) error {
	for i := range cells {
		if err := cells[i].Validate(width); err != nil {
			return fmt.Errorf("cell %d: %w", i, err)
		}
	}
	return nil
}
