package influx

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/hourglass-io/hourglass/tsstore"
)

// maxInfluxMillis is the last millisecond InfluxDB can store (its
// timestamps are int64 nanoseconds, up to 2262-04-11).
const maxInfluxMillis int64 = 9223372036853

// quoteIdent quotes an InfluxQL identifier in double quotes.
func quoteIdent(s string) string {
	return `"` + identReplacer.Replace(s) + `"`
}

var identReplacer = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// quoteString quotes an InfluxQL string literal in single quotes.
func quoteString(s string) string {
	return `'` + stringReplacer.Replace(s) + `'`
}

var stringReplacer = strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`)

// quoteRegex writes the RE2 expression re as an InfluxQL (and Flux) regex
// literal /re/: a '/' is escaped as \/, an existing escape pair is kept as
// a pair (\/ stays \/, which both scanners read as '/'), control bytes
// become \x{hh} so the literal stays on one line.
func quoteRegex(re string) string {
	var b strings.Builder
	b.Grow(len(re) + 2)
	b.WriteByte('/')
	for i := 0; i < len(re); i++ {
		c := re[i]
		switch {
		case c == '\\' && i+1 < len(re):
			i++
			if n := re[i]; n < 0x20 || n == 0x7f {
				fmt.Fprintf(&b, `\x{%02x}`, n)
			} else {
				b.WriteByte('\\')
				b.WriteByte(n)
			}
		case c == '/':
			b.WriteString(`\/`)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\x{%02x}`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('/')
	return b.String()
}

// anchored returns the regexp of a tsstore matcher as InfluxDB must apply
// it: anchored at both ends, dot matching newlines, as tsstore.Matcher does.
func anchored(re string) string { return "^(?s:" + re + ")$" }

// influxQLCond returns an InfluxQL condition that holds for every series
// the matcher selects (maybe more: callers filter exactly afterwards), and
// whether there is one. Matchers that select series without the label
// (those that match "") are not pushed down, so nothing depends on how a
// server treats missing tags, nor are matchers on the writer tag (the
// writer is not a label: such a matcher sees ""). exact reports whether
// the condition selects exactly the matcher's series.
func influxQLCond(m *tsstore.Matcher) (cond string, exact, ok bool) {
	if m.Matches("") || m.Name == writerTag {
		return "", false, false
	}
	key := quoteIdent(tagKey(m.Name)) + "::tag"
	switch m.Type {
	case tsstore.MatchEqual:
		return key + " = " + quoteString(encodeTagValue(m.Value)), true, true
	case tsstore.MatchRegexp:
		// Encoded values are matched here and exactly after decoding.
		return "(" + key + " =~ " + quoteRegex(anchored(m.Value)) + " OR " + key + " =~ /^" + encodedPrefix + "/)", false, true
	case tsstore.MatchNotRegexp:
		return "(" + key + " !~ " + quoteRegex(anchored(m.Value)) + " OR " + key + " =~ /^" + encodedPrefix + "/)", false, true
	}
	// MatchNotEqual with an empty value ("has the label"): left to the
	// exact filter.
	return "", false, false
}

// selectFields selects the four fields of the cells' points.
const selectFields = `SELECT "count"::field, "sum"::field, "min"::field, "max"::field`

// rawQuery builds the InfluxQL statement that returns the points of the
// series of metric with time in [lo, hi] (ms) satisfying conds, grouped by
// all tags so that every series comes with its tags.
func rawQuery(from string, lo, hi int64, conds []string) string {
	var b strings.Builder
	b.WriteString(selectFields)
	b.WriteString(" FROM ")
	b.WriteString(from)
	fmt.Fprintf(&b, " WHERE time >= %dms AND time <= %dms", lo, hi)
	for _, c := range conds {
		b.WriteString(" AND ")
		b.WriteString(c)
	}
	b.WriteString(" GROUP BY *")
	return b.String()
}

// probeQuery builds the InfluxQL statement that returns one point, if there
// is any, with time in [lo, hi] (ms) satisfying conds.
func probeQuery(from string, lo, hi int64, conds []string) string {
	var b strings.Builder
	b.WriteString(selectFields)
	b.WriteString(" FROM ")
	b.WriteString(from)
	fmt.Fprintf(&b, " WHERE time >= %dms AND time <= %dms", lo, hi)
	for _, c := range conds {
		b.WriteString(" AND ")
		b.WriteString(c)
	}
	b.WriteString(" LIMIT 1")
	return b.String()
}

// aggQuery builds the InfluxQL statement that aggregates the points with
// time in [lo, hi] (ms) in buckets of step ms aligned to offset, grouped by
// the tag keys by (nil: all tags; empty: none).
func aggQuery(from string, lo, hi, step, offset int64, conds []string, by []string) string {
	var b strings.Builder
	b.WriteString(`SELECT sum("count"::field) AS "c", sum("sum"::field) AS "s", min("min"::field) AS "mn", max("max"::field) AS "mx" FROM `)
	b.WriteString(from)
	fmt.Fprintf(&b, " WHERE time >= %dms AND time <= %dms", lo, hi)
	for _, c := range conds {
		b.WriteString(" AND ")
		b.WriteString(c)
	}
	fmt.Fprintf(&b, " GROUP BY time(%dms, %dms)", step, offset)
	if by == nil {
		b.WriteString(", *")
	}
	for _, k := range by {
		b.WriteString(", ")
		b.WriteString(quoteIdent(tagKey(k)))
	}
	b.WriteString(" fill(none)")
	return b.String()
}

// queryResponse is one JSON object of a /query answer (one chunk when
// chunked).
type queryResponse struct {
	Results []struct {
		StatementID int          `json:"statement_id"`
		Series      []respSeries `json:"series"`
		Error       string       `json:"error"`
	} `json:"results"`
	Error string `json:"error"`
}

type respSeries struct {
	Name    string            `json:"name"`
	Tags    map[string]string `json:"tags"`
	Columns []string          `json:"columns"`
	Values  [][]any           `json:"values"`
}

// row is one row of a series: time (ms) and the aggregate in the columns
// after it, in the order count, sum, min, max.
type row struct {
	t   int64
	agg tsstore.Agg
}

// parseRow reads a row of time, count, sum, min, max (numbers as
// json.Number). ok is false for rows with a missing field (points written
// by others).
func parseRow(vals []any) (r row, ok bool, err error) {
	if len(vals) < 5 {
		return r, false, fmt.Errorf("row has %d columns, want 5", len(vals))
	}
	nums := make([]json.Number, 5)
	for i := range nums {
		n, isNum := vals[i].(json.Number)
		if !isNum {
			if vals[i] == nil {
				return r, false, nil
			}
			return r, false, fmt.Errorf("column %d: %v (%T) is not a number", i, vals[i], vals[i])
		}
		nums[i] = n
	}
	if r.t, err = strconv.ParseInt(nums[0].String(), 10, 64); err != nil {
		return r, false, fmt.Errorf("time: %w", err)
	}
	if r.agg.Count, err = strconv.ParseUint(nums[1].String(), 10, 64); err != nil {
		// Not a count of ours (a point written by others): skip it.
		return r, false, nil
	}
	for i, f := range []*float64{&r.agg.Sum, &r.agg.Min, &r.agg.Max} {
		if *f, err = strconv.ParseFloat(nums[2+i].String(), 64); err != nil {
			return r, false, fmt.Errorf("column %d: %w", 2+i, err)
		}
	}
	return r, true, nil
}

// readQueryResponse decodes a (possibly chunked) /query answer, calling fn
// for every row of every series of every statement. A statement error is
// returned as statementError.
func readQueryResponse(body io.Reader, fn func(stmt int, s *respSeries, r row) error) error {
	dec := json.NewDecoder(body)
	dec.UseNumber()
	for {
		var resp queryResponse
		if err := dec.Decode(&resp); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("decode /query answer: %w", err)
		}
		if resp.Error != "" {
			return statementError(resp.Error)
		}
		for _, res := range resp.Results {
			if res.Error != "" {
				return statementError(res.Error)
			}
			for i := range res.Series {
				s := &res.Series[i]
				for _, vals := range s.Values {
					r, ok, err := parseRow(vals)
					if err != nil {
						return fmt.Errorf("series %s%v: %w", s.Name, s.Tags, err)
					}
					if !ok {
						continue
					}
					if err := fn(res.StatementID, s, r); err != nil {
						return err
					}
				}
			}
		}
	}
}

// statementError is an error InfluxDB reported for a statement.
type statementError string

func (e statementError) Error() string { return "influxdb: " + string(e) }
