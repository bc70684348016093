package promapi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"time"

	"github.com/hourglass-io/hourglass/httpapi/promapi"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/localcache"
)

// A write-back engine's merged view served as the Prometheus API: the
// merchant's token sees its own revenue only, the moment it is written.
func Example() {
	dir, _ := os.MkdirTemp("", "promapi-example")
	defer os.RemoveAll(dir)
	now := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	cache, _ := localcache.Open(dir, &localcache.Options{Logger: slog.New(slog.DiscardHandler)})
	defer cache.Close()
	store := memstore.New(nil)
	defer store.Close()
	eng, _ := writeback.New(cache, store, &writeback.Options{Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	defer eng.Close()

	for _, p := range []struct {
		merchant, currency string
		ago                time.Duration
		amount             float64
	}{
		{"m1", "EUR", 50 * time.Minute, 10}, {"m1", "EUR", 20 * time.Minute, 2.5}, {"m1", "USD", 5 * time.Minute, 30}, {"m2", "EUR", 5 * time.Minute, 99},
	} {
		ls, _ := tsstore.NewLabels("merchant", p.merchant, "currency", p.currency)
		_ = eng.Write(context.Background(), []tsstore.Point{{Metric: "revenue", Labels: ls, Timestamp: now.Add(-p.ago).UnixMilli(), Value: p.amount}})
	}

	h := promapi.NewHandler(eng, &promapi.Options{
		Authorize: func(r *http.Request) (string, bool, error) {
			if r.Header.Get("Authorization") == "Bearer token-of-m1" {
				return "m1", false, nil
			}
			return "", false, errors.New("unknown token")
		},
		Metrics: func(context.Context) ([]string, error) { return []string{"revenue"}, nil },
	})
	srv := httptest.NewServer(h)
	defer srv.Close()

	q := url.Values{"query": {`sum by (merchant, currency) (sum_over_time(revenue:sum[1h]))`}, "time": {fmt.Sprint(now.Unix())}}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/query?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Bearer token-of-m1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(string(body))
	// Output:
	// {"status":"success","data":{"resultType":"vector","result":[{"metric":{"currency":"EUR","merchant":"m1"},"value":[1793620800,"12.5"]},{"metric":{"currency":"USD","merchant":"m1"},"value":[1793620800,"30"]}]}}
}
