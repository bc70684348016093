package amqpsource

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
)

// ContentType is the content type of every message body of this package.
const ContentType = "application/json"

// Batch is the body of a write message: a batch of points, written to the
// engine as one unit (all or nothing). The message's MessageId property is
// its idempotency key.
//
//	{"points": [{"metric": "views", "labels": {"merchant": "m1"},
//	             "timestamp": 1772366400000, "value": 1}]}
type Batch struct {
	Points []PointJSON `json:"points"`
}

// PointJSON is one point of a Batch. Timestamp is either a number of
// milliseconds since the Unix epoch or an RFC 3339 string.
type PointJSON struct {
	Metric    string            `json:"metric"`
	Labels    map[string]string `json:"labels,omitempty"`
	Timestamp Timestamp         `json:"timestamp"`
	Value     float64           `json:"value"`
}

// Timestamp is a time in milliseconds since the Unix epoch that unmarshals
// from a JSON number (ms) or an RFC 3339 string, and marshals as a number.
type Timestamp int64

// UnmarshalJSON accepts a number of milliseconds or an RFC 3339 string.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fmt.Errorf("timestamp %q is neither milliseconds nor RFC 3339: %w", s, err)
		}
		*t = Timestamp(tm.UnixMilli())
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return fmt.Errorf("timestamp %s is not a whole number of milliseconds", b)
	}
	*t = Timestamp(f)
	return nil
}

// EncodeBatch returns the JSON body of a write message holding points.
func EncodeBatch(points []tsstore.Point) ([]byte, error) {
	b := Batch{Points: make([]PointJSON, len(points))}
	for i, p := range points {
		b.Points[i] = PointJSON{Metric: p.Metric, Labels: p.Labels.Map(), Timestamp: Timestamp(p.Timestamp), Value: p.Value}
	}
	out, err := json.Marshal(&b)
	if err != nil {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "amqpsource: encode batch: %w", err)
	}
	return out, nil
}

// DecodeBatch parses the body of a write message. It checks the JSON and
// the labels; the engine checks the rest of each point. Errors are of kind
// tsstore.ErrInvalid and name the point.
func DecodeBatch(body []byte) ([]tsstore.Point, error) {
	var b Batch
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "amqpsource: batch: %w", err)
	}
	if dec.More() {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "amqpsource: batch: data after the JSON object")
	}
	if len(b.Points) == 0 {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "amqpsource: batch has no points")
	}
	out := make([]tsstore.Point, len(b.Points))
	for i, p := range b.Points {
		ls, err := tsstore.FromMap(p.Labels)
		if err != nil {
			return nil, fmt.Errorf("amqpsource: batch point %d: %w", i, err)
		}
		out[i] = tsstore.Point{Metric: p.Metric, Labels: ls, Timestamp: int64(p.Timestamp), Value: p.Value}
	}
	return out, nil
}

// QueryRequest is the body of a read message. From and To are milliseconds
// or RFC 3339 strings; Step is a Go duration ("1m", "1h").
//
//	{"metric": "views", "matchers": [{"name": "merchant", "op": "=", "value": "m1"}],
//	 "from": "2026-03-01T00:00:00Z", "to": "2026-03-02T00:00:00Z", "step": "1h",
//	 "group_by": ["merchant"]}
type QueryRequest struct {
	Metric   string        `json:"metric"`
	Matchers []MatcherJSON `json:"matchers,omitempty"`
	From     Timestamp     `json:"from"`
	To       Timestamp     `json:"to"`
	Step     string        `json:"step"`
	// GroupBy as in tsstore.Query: absent means no grouping, [] merges
	// all series into one.
	GroupBy []string `json:"group_by"`
}

// MatcherJSON is a label matcher; Op is one of =, !=, =~, !~.
type MatcherJSON struct {
	Name  string `json:"name"`
	Op    string `json:"op"`
	Value string `json:"value"`
}

// QueryReply is the body of the answer to a read message. On failure
// Error says why and Kind is "invalid", "unavailable", "back-pressure",
// "closed" or "" (unknown).
type QueryReply struct {
	Series []SeriesJSON `json:"series,omitempty"`
	Error  string       `json:"error,omitempty"`
	Kind   string       `json:"kind,omitempty"`
}

// SeriesJSON is one series of a QueryReply.
type SeriesJSON struct {
	Labels  map[string]string `json:"labels"`
	Buckets []BucketJSON      `json:"buckets"`
}

// BucketJSON is one bucket of a SeriesJSON; Start is in milliseconds.
type BucketJSON struct {
	Start int64   `json:"start"`
	Count uint64  `json:"count"`
	Sum   float64 `json:"sum"`
	Min   float64 `json:"min"`
	Max   float64 `json:"max"`
}

var matchOps = map[string]tsstore.MatchType{"=": tsstore.MatchEqual, "!=": tsstore.MatchNotEqual, "=~": tsstore.MatchRegexp, "!~": tsstore.MatchNotRegexp}

// EncodeQuery returns the JSON body of a read message asking q.
func EncodeQuery(q tsstore.Query) ([]byte, error) {
	r := QueryRequest{Metric: q.Metric, From: Timestamp(q.From), To: Timestamp(q.To), Step: q.Step.String(), GroupBy: q.GroupBy}
	for _, m := range q.Matchers {
		r.Matchers = append(r.Matchers, MatcherJSON{Name: m.Name, Op: m.Type.String(), Value: m.Value})
	}
	out, err := json.Marshal(&r)
	if err != nil {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "amqpsource: encode query: %w", err)
	}
	return out, nil
}

// DecodeQuery parses the body of a read message. Errors are of kind
// tsstore.ErrInvalid.
func DecodeQuery(body []byte) (tsstore.Query, error) {
	var r QueryRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return tsstore.Query{}, tsstore.Errorf(tsstore.ErrInvalid, "amqpsource: query: %w", err)
	}
	step, err := time.ParseDuration(r.Step)
	if err != nil {
		return tsstore.Query{}, tsstore.Errorf(tsstore.ErrInvalid, "amqpsource: query step %q: %w", r.Step, err)
	}
	q := tsstore.Query{Metric: r.Metric, From: int64(r.From), To: int64(r.To), Step: step, GroupBy: r.GroupBy}
	for i, m := range r.Matchers {
		op, ok := matchOps[m.Op]
		if !ok {
			return tsstore.Query{}, tsstore.Errorf(tsstore.ErrInvalid, "amqpsource: query matcher %d: unknown op %q", i, m.Op)
		}
		mm, err := tsstore.NewMatcher(op, m.Name, m.Value)
		if err != nil {
			return tsstore.Query{}, fmt.Errorf("amqpsource: query matcher %d: %w", i, err)
		}
		q.Matchers = append(q.Matchers, mm)
	}
	return q, nil
}

// EncodeResult returns the reply body for a query's result or error.
func EncodeResult(res *tsstore.Result, qerr error) []byte {
	var r QueryReply
	if qerr != nil {
		r.Error = qerr.Error()
		r.Kind = kindOf(qerr)
	} else if res != nil {
		r.Series = make([]SeriesJSON, len(res.Series))
		for i, s := range res.Series {
			sj := SeriesJSON{Labels: s.Labels.Map(), Buckets: make([]BucketJSON, len(s.Buckets))}
			for j, b := range s.Buckets {
				sj.Buckets[j] = BucketJSON{Start: b.Start, Count: b.Count, Sum: b.Sum, Min: b.Min, Max: b.Max}
			}
			r.Series[i] = sj
		}
	}
	out, err := json.Marshal(&r)
	if err != nil { // non-finite values cannot come out of a store
		out, _ = json.Marshal(&QueryReply{Error: err.Error()})
	}
	return out
}

// DecodeResult parses a reply body into the result or the error it
// carries (of the kind named in the reply).
func DecodeResult(body []byte) (*tsstore.Result, error) {
	var r QueryReply
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, tsstore.Errorf(tsstore.ErrUnavailable, "amqpsource: malformed reply: %w", err)
	}
	if r.Error != "" {
		kind := kindNamed(r.Kind)
		if kind == nil {
			return nil, fmt.Errorf("amqpsource: query: %s", r.Error)
		}
		return nil, tsstore.Errorf(kind, "amqpsource: query: %s", r.Error)
	}
	res := &tsstore.Result{Series: make([]tsstore.Series, len(r.Series))}
	for i, s := range r.Series {
		ls, err := tsstore.FromMap(s.Labels)
		if err != nil {
			return nil, fmt.Errorf("amqpsource: reply series %d: %w", i, err)
		}
		out := tsstore.Series{Labels: ls, Buckets: make([]tsstore.Bucket, len(s.Buckets))}
		for j, b := range s.Buckets {
			out.Buckets[j] = tsstore.Bucket{Start: b.Start, Agg: tsstore.Agg{Count: b.Count, Sum: b.Sum, Min: b.Min, Max: b.Max}}
		}
		res.Series[i] = out
	}
	return res, nil
}

var kindNames = []struct {
	name string
	kind error
}{
	{"invalid", tsstore.ErrInvalid},
	{"unavailable", tsstore.ErrUnavailable},
	{"back-pressure", tsstore.ErrBackPressure},
	{"closed", tsstore.ErrClosed},
	{"conflict", tsstore.ErrConflict},
}

func kindNamed(name string) error {
	for _, k := range kindNames {
		if k.name == name {
			return k.kind
		}
	}
	return nil
}

func kindOf(err error) string {
	for _, k := range kindNames {
		if errors.Is(err, k.kind) {
			return k.name
		}
	}
	return ""
}
