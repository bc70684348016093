// Package promapi serves the Prometheus HTTP query API over hourglass'
// cells, so that Grafana, promtool, client_golang and every other
// Prometheus-speaking tool read them with PromQL, evaluated by
// github.com/prometheus/prometheus/promql.
//
// # Series
//
// A metric is four series: <metric>:count, <metric>:sum, <metric>:min and
// <metric>:max, with one sample per cell (default width one minute) at the
// cell's Start: the aggregate of the points of that cell, all partials
// summed, labelled as written (internal labels such as __writer__ never
// show). They are per-cell aggregates, not cumulative counters:
//
//	sum_over_time(revenue:sum[1h])                        revenue of the hour up to each t
//	sum by (currency) (sum_over_time(revenue:sum[1d]))    daily revenue by currency
//	sum_over_time(orders:count[1h])                       orders per hour
//	max_over_time(revenue:max[1h])                        largest single payment per hour
//	sum_over_time(revenue:sum[1h]) / sum_over_time(revenue:count[1h])   mean payment
//
// A range [d] at time t covers the cells starting in (t-d, t]; rate() and
// increase() are meaningless on these series.
//
// The source of cells is a CellSource: (*writeback.Engine) gives the exact
// merge of its cache and store, so an answer includes the writes
// acknowledged a moment ago, exactly once. Selectors' matchers and time
// ranges go down to the source (Storage, a storage.Queryable). Selectors
// without an exact series name ({__name__=~"rev.*"}) and label discovery
// see the metrics that Options.Metrics lists.
//
// # Merchants
//
// Like prom-label-proxy, a Handler restricts a merchant's request to
// merchant="<merchant>" on every selector of the expression (EnforceExpr)
// and of match[] (EnforceMatchers), refusing matchers on merchant that the
// merchant does not satisfy; the Storage it queries through filters every
// series by merchant again (Storage.ForMerchant). An admin sees all.
//
// # Bounds
//
// A query loads at most MaxSamples samples and MaxSeries series (an
// "execution" error beyond), evaluates within Timeout ("timeout"), and a
// range query has at most MaxPoints steps ("bad_data").
//
// # Concurrency
//
// Handler and Storage are safe for concurrent use.
//
// # Errors
//
// Answers carry Prometheus' error types: bad_data (400) for malformed
// parameters and expressions, execution (422) for queries over the bounds
// or failing in evaluation, timeout and canceled (503), unavailable (503)
// when the cell source is (tsstore.ErrUnavailable, ErrClosed), internal
// (500), and unauthorized (401) without a valid token. An answer that lacks
// the cached cells of some peers (a source that is an
// httpapi.DetailedEngine, such as a writeback.Engine whose Options.Peers
// did not all answer) succeeds with a warning naming them.
package promapi
