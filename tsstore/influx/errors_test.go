package influx_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/influx"
	"github.com/hourglass-io/hourglass/tsstore/storetest"
)

var apis = []influx.WriteAPI{influx.WriteV1, influx.WriteV2}

func oneCell(merchant string, v float64) tsstore.Cell {
	return tsstore.Cell{Metric: "orders", Labels: tsstore.Labels{{Name: "merchant", Value: merchant}}, Start: storetest.Base, Agg: tsstore.AggOf(v)}
}

// TestFieldTypeConflict: points written by someone else with a float
// count make the server reject the store's line (400 partial write); the
// error is ErrInvalid and names the cell.
func TestFieldTypeConflict(t *testing.T) {
	u := servertest.InfluxURL(t)
	p := newV2Proxy(t, u)
	for _, api := range apis {
		t.Run(api.String(), func(t *testing.T) {
			db := newDatabase(t, u)
			resp, err := http.Post(u+"/write?precision=ms&db="+db, "text/plain", strings.NewReader("orders,merchant=other count=1.5,sum=1,min=1,max=1 "+fmt.Sprint(storetest.Base)+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			http.DefaultClient.CloseIdleConnections()
			s, err := influx.Open(p.URL, &influx.Options{Database: db, WriteAPI: api})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			err = s.Write(context.Background(), []tsstore.Cell{oneCell("m1", 2)})
			if !errors.Is(err, tsstore.ErrInvalid) {
				t.Fatalf("Write: got %v, want ErrInvalid", err)
			}
			for _, want := range []string{"cell 0", "field type conflict", `merchant="m1"`} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

// TestSeriesKeyTooLong: a series key beyond InfluxDB's 64 KiB limit is
// refused before anything is sent, naming the cell.
func TestSeriesKeyTooLong(t *testing.T) {
	s := openStore(t, influx.Options{WriteAPI: influx.WriteV1})
	var kv []string
	for i := 0; i < tsstore.MaxLabels; i++ {
		kv = append(kv, fmt.Sprintf("l%02d", i), strings.Repeat("x", tsstore.MaxValueLen))
	}
	ls, err := tsstore.NewLabels(kv...)
	if err != nil {
		t.Fatal(err)
	}
	bad := tsstore.Cell{Metric: "orders", Labels: ls, Start: storetest.Base, Agg: tsstore.AggOf(1)}
	err = s.Write(context.Background(), []tsstore.Cell{oneCell("m1", 1), bad})
	if !errors.Is(err, tsstore.ErrInvalid) || !strings.Contains(err.Error(), "cell 1") {
		t.Fatalf("Write: got %v, want ErrInvalid naming cell 1", err)
	}
	if got, _ := s.Cells(context.Background(), tsstore.Selector{Metric: "orders", From: 0, To: tsstore.MaxTimestamp}); len(got) != 0 {
		t.Errorf("a rejected batch left %d cells", len(got))
	}
}

// TestTooLate: times InfluxDB cannot store are invalid input.
func TestTooLate(t *testing.T) {
	s, err := influx.Open("http://127.0.0.1:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := oneCell("m1", 1)
	c.Start = tsstore.MaxTimestamp - 60000
	if err := s.Write(context.Background(), []tsstore.Cell{c}); !errors.Is(err, tsstore.ErrInvalid) {
		t.Fatalf("Write in year 2999: got %v, want ErrInvalid", err)
	}
}

// TestConnectionRefused: every call on a server that is not there fails
// with ErrUnavailable after the retries.
func TestConnectionRefused(t *testing.T) {
	u := fmt.Sprintf("http://127.0.0.1:%d", servertest.FreePort(t))
	for _, api := range apis {
		for _, skip := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/skipcheck=%v", api, skip), func(t *testing.T) {
				s, err := influx.Open(u, &influx.Options{WriteAPI: api, SkipConflictCheck: skip, MaxRetries: 2, RetryInterval: time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				if err := s.Write(context.Background(), []tsstore.Cell{oneCell("m1", 1)}); !errors.Is(err, tsstore.ErrUnavailable) {
					t.Errorf("Write: got %v, want ErrUnavailable", err)
				}
				q := tsstore.Query{Metric: "orders", From: 0, To: storetest.Base, Step: time.Minute}
				if _, err := s.Query(context.Background(), q); !errors.Is(err, tsstore.ErrUnavailable) {
					t.Errorf("Query: got %v, want ErrUnavailable", err)
				}
				if _, err := s.Cells(context.Background(), q.Selector()); !errors.Is(err, tsstore.ErrUnavailable) {
					t.Errorf("Cells: got %v, want ErrUnavailable", err)
				}
			})
		}
	}
}

// TestRetryAfter: a 503 or 429 with Retry-After is retried after the time
// asked for, and the write then lands on the real server.
func TestRetryAfter(t *testing.T) {
	u := servertest.InfluxURL(t)
	p := newV2Proxy(t, u)
	for _, api := range apis {
		for _, status := range []int{http.StatusServiceUnavailable, http.StatusTooManyRequests} {
			t.Run(fmt.Sprintf("%s/%d", api, status), func(t *testing.T) {
				s, err := influx.Open(p.URL, &influx.Options{Database: newDatabase(t, u), WriteAPI: api, RetryInterval: time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				failed := 0
				p.setFault(func(w http.ResponseWriter, r *http.Request) bool {
					if strings.HasSuffix(r.URL.Path, "write") && failed == 0 {
						failed++
						w.Header().Set("Retry-After", "1")
						w.Header().Set("Content-Type", "application/json")
						w.WriteHeader(status)
						_, _ = w.Write([]byte(`{"error":"overloaded"}`))
						return true
					}
					return false
				})
				defer p.setFault(nil)
				if err := s.Write(context.Background(), []tsstore.Cell{oneCell("m1", 7)}); err != nil {
					t.Fatalf("Write: %v", err)
				}
				times := p.writeTimes()
				if len(times) != 2 {
					t.Fatalf("%d write requests, want the failed one and one retry", len(times))
				}
				if gap := times[1].Sub(times[0]); gap < time.Second {
					t.Errorf("retried after %v, before the Retry-After of 1s", gap)
				}
				got, err := s.Cells(context.Background(), tsstore.Selector{Metric: "orders", From: storetest.Base, To: storetest.Base + 1})
				if err != nil || len(got) != 1 || got[0].Agg != tsstore.AggOf(7) {
					t.Errorf("after the retry: Cells = %+v, %v", got, err)
				}
			})
		}
	}
}

// TestUnavailableAfterRetries: a server that keeps answering 503 makes
// Write fail with ErrUnavailable after exactly MaxRetries retries; a 401
// is not retried.
func TestUnavailableAfterRetries(t *testing.T) {
	u := servertest.InfluxURL(t)
	p := newV2Proxy(t, u)
	for _, api := range apis {
		for _, status := range []int{http.StatusServiceUnavailable, http.StatusUnauthorized} {
			t.Run(fmt.Sprintf("%s/%d", api, status), func(t *testing.T) {
				s, err := influx.Open(p.URL, &influx.Options{Database: newDatabase(t, u), WriteAPI: api, MaxRetries: 3, RetryInterval: time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				p.setFault(func(w http.ResponseWriter, r *http.Request) bool {
					if strings.HasSuffix(r.URL.Path, "write") {
						w.WriteHeader(status)
						return true
					}
					return false
				})
				defer p.setFault(nil)
				err = s.Write(context.Background(), []tsstore.Cell{oneCell("m1", 1)})
				if !errors.Is(err, tsstore.ErrUnavailable) || !tsstore.IsRetryable(err) {
					t.Errorf("Write: got %v, want ErrUnavailable", err)
				}
				want := 4
				if status == http.StatusUnauthorized {
					want = 1
				}
				if n := len(p.writeTimes()); n != want {
					t.Errorf("%d write requests, want %d", n, want)
				}
			})
		}
	}
}

// TestCancelDuringRetry: cancelling the context stops the retries.
func TestCancelDuringRetry(t *testing.T) {
	u := fmt.Sprintf("http://127.0.0.1:%d", servertest.FreePort(t))
	s, err := influx.Open(u, &influx.Options{SkipConflictCheck: true, RetryInterval: time.Hour, MaxRetryInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Write(ctx, []tsstore.Cell{oneCell("m1", 1)}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Write: got %v, want context.DeadlineExceeded", err)
	}
}
