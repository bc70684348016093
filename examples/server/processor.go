package main

import (
	"slices"
	"strings"

	"github.com/hourglass-io/hourglass/tsstore"
)

// eventsProcessorVersion names the processing logic of eventsProcessor.
// Change it with the logic, so that reprocessed store versions say which
// logic made them.
const eventsProcessorVersion = "events/1"

// processors are the processing logics the server knows, by version: the
// live engine runs the one -processor names, and a reprocess job may run
// any of them over the archive. A fix of the logic is a new entry here,
// never an edit of an old one (versions name what made the stored cells).
var processors = map[string]tsstore.Processor{
	eventsProcessorVersion:     eventsProcessor{},
	pathsProcessor{}.Version(): pathsProcessor{},
}

// processorVersions lists the known versions, sorted.
func processorVersions() []string {
	out := make([]string, 0, len(processors))
	for v := range processors {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// processorMetrics are the metrics the processors derive from events (the
// other metrics pass through unchanged): what a reprocess diff compares.
var processorMetrics = []string{"orders", "refunds", "revenue", "views"}

// eventsProcessor is the server's tsstore.Processor: it turns raw event points
// into the metrics merchants read. The archive keeps the raw points.
//
//   - order (value = amount; labels merchant, currency, status, ...):
//     orders = 1 with all the event's labels, and revenue = amount without
//     the status label, when the status is "paid";
//   - refund (value = amount): refunds = 1, and revenue = -amount;
//   - page_view: views = 1 with all the event's labels;
//   - any other metric (line protocol measurements, amqpsource's markers)
//     is aggregated as it is.
//
// Stateless: safe for concurrent use.
type eventsProcessor struct{}

var _ tsstore.Processor = eventsProcessor{}

// Version returns eventsProcessorVersion.
func (eventsProcessor) Version() string { return eventsProcessorVersion }

// Process appends the metrics derived from p to dst.
func (eventsProcessor) Process(dst []tsstore.Point, p tsstore.Point) ([]tsstore.Point, error) {
	derive := func(metric string, ls tsstore.Labels, v float64) tsstore.Point {
		return tsstore.Point{Metric: metric, Labels: ls, Timestamp: p.Timestamp, Value: v}
	}
	switch p.Metric {
	case eventOrder, eventRefund:
		if !p.Labels.Has("merchant") || !p.Labels.Has("currency") {
			return dst, tsstore.Errorf(tsstore.ErrInvalid, "%s point %s: needs the labels merchant and currency", p.Metric, p.Labels)
		}
		if p.Value < 0 {
			return dst, tsstore.Errorf(tsstore.ErrInvalid, "%s point %s: negative amount %v", p.Metric, p.Labels, p.Value)
		}
		if p.Metric == eventRefund {
			return append(dst, derive("refunds", p.Labels, 1), derive("revenue", p.Labels, -p.Value)), nil
		}
		dst = append(dst, derive("orders", p.Labels, 1))
		if s := p.Labels.Get("status"); s == "paid" || s == "" {
			dst = append(dst, derive("revenue", without(p.Labels, "status"), p.Value))
		}
		return dst, nil
	case eventPageView:
		if !p.Labels.Has("merchant") {
			return dst, tsstore.Errorf(tsstore.ErrInvalid, "page_view point %s: needs the label merchant", p.Labels)
		}
		return append(dst, derive("views", p.Labels, 1)), nil
	default:
		return append(dst, p), nil
	}
}

// without returns ls without the label name (ls itself when it has none).
func without(ls tsstore.Labels, name string) tsstore.Labels {
	for i, l := range ls {
		if l.Name == name {
			out := make(tsstore.Labels, 0, len(ls)-1)
			return append(append(out, ls[:i]...), ls[i+1:]...)
		}
	}
	return ls
}

// pathsProcessor is events/2: eventsProcessor with the fix of a bug in how
// events/1 labels page views: "/Pricing/", "/pricing" and "/pricing/" were
// three series of views; events/2 lowercases the path and drops a trailing
// slash, so they are one. Everything else is as in events/1. Derived
// points keep their event's timestamp (reprocess needs them in the raw
// point's cell). Stateless: safe for concurrent use.
type pathsProcessor struct{}

var _ tsstore.Processor = pathsProcessor{}

// Version returns "events/2".
func (pathsProcessor) Version() string { return "events/2" }

// Process appends the metrics derived from p to dst.
func (pathsProcessor) Process(dst []tsstore.Point, p tsstore.Point) ([]tsstore.Point, error) {
	n := len(dst)
	dst, err := eventsProcessor{}.Process(dst, p)
	if err != nil || p.Metric != eventPageView {
		return dst, err
	}
	for i := n; i < len(dst); i++ {
		path := dst[i].Labels.Get("path")
		if norm := normalPath(path); norm != path {
			ls := make(tsstore.Labels, len(dst[i].Labels))
			copy(ls, dst[i].Labels)
			for j := range ls {
				if ls[j].Name == "path" {
					ls[j].Value = norm
				}
			}
			dst[i].Labels = ls
		}
	}
	return dst, nil
}

// normalPath lowercases a URL path and drops its trailing slash ("/" stays).
func normalPath(p string) string {
	p = strings.ToLower(p)
	if len(p) > 1 {
		p = strings.TrimRight(p, "/")
		if p == "" {
			p = "/"
		}
	}
	return p
}
