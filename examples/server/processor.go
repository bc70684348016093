package main

import (
	"github.com/hourglass-io/hourglass/tsstore"
)

// eventsProcessorVersion names the processing logic of eventsProcessor.
// Change it with the logic, so that reprocessed store versions say which
// logic made them.
const eventsProcessorVersion = "events/1"

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
