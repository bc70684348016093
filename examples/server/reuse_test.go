package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/httpapi"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/localcache"
)

// reuseEvents is a JSON array of n events of merchant "shop", of the same
// length for paths and currencies of given lengths: page views of
// <prefix><i%50> (escaped every seventh, so that the decoder unescapes it
// into its scratch buffer), and every third an order in currencies[i%2]
// of amount i%9 (a refund every ninth); reversed, the events are in the
// opposite order. It returns the body and the raw points it holds.
func reuseEvents(prefix string, currencies [2]string, n int, reversed bool, now time.Time) ([]byte, []tsstore.Point) {
	b := []byte{'['}
	var raw []tsstore.Point
	for j := range n {
		i := j
		if reversed {
			i = n - 1 - j
		}
		if j > 0 {
			b = append(b, ',')
		}
		ts := now.Add(-time.Duration(i) * time.Second).UnixMilli()
		amount := float64(i % 9)
		switch {
		case i%9 == 0:
			b = fmt.Appendf(b, `{"type":"refund","currency":%q,"amount":%v,"time":%d}`, currencies[i%2], amount, ts)
			raw = append(raw, tsstore.Point{Metric: eventRefund, Labels: tsstore.Labels{{Name: "currency", Value: currencies[i%2]}, {Name: "merchant", Value: "shop"}}, Timestamp: ts, Value: amount})
		case i%3 == 0:
			b = fmt.Appendf(b, `{"type":"order","currency":%q,"status":"paid","amount":%v,"time":%d}`, currencies[i%2], amount, ts)
			raw = append(raw, tsstore.Point{Metric: eventOrder, Labels: tsstore.Labels{{Name: "currency", Value: currencies[i%2]}, {Name: "merchant", Value: "shop"}, {Name: "status", Value: "paid"}}, Timestamp: ts, Value: amount})
		default:
			path := fmt.Sprintf("%s%03d", prefix, i%50)
			quoted := fmt.Sprintf("%q", path)
			if i%7 == 0 {
				quoted = fmt.Sprintf(`"\u%04x%s`, path[0], quoted[2:])
			} else {
				quoted = "     " + quoted // the escaped one's length
			}
			b = fmt.Appendf(b, `{"type":"page_view","path":%s,"time":%d}`, quoted, ts)
			raw = append(raw, tsstore.Point{Metric: eventPageView, Labels: tsstore.Labels{{Name: "merchant", Value: "shop"}, {Name: "path", Value: path}}, Timestamp: ts, Value: 1})
		}
	}
	return append(b, ']'), raw
}

// TestReusedBuffersKeepNothing: the server's interning event decoder and
// its processor (which makes points of its own, in the engine's pooled
// buffer) behind httpapi, whose handlers reuse a request's body and
// points: rounds of requests A, B of the same size and layout but other
// paths, currencies and amounts (which overwrite a reused buffer byte for
// byte), and A's events reversed (the series interned from A are used
// again, and the bytes where they were hold other ones); every cell read
// back exactly, from the cache and after a flush from the store.
func TestReusedBuffersKeepNothing(t *testing.T) {
	dir := t.TempDir()
	cache, err := localcache.Open(filepath.Join(dir, "cache"), nil)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := writeback.New(cache, memstore.New(nil), &writeback.Options{Processor: eventsProcessor{}, FlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := eng.Close(); err != nil {
			t.Error(err)
		}
		if err := cache.Close(); err != nil {
			t.Error(err)
		}
	}()
	toks, _, err := httpapi.OpenTokenFile(filepath.Join(dir, "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	token, err := toks.MerchantToken("shop")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	api, err := httpapi.New(eng, toks, &httpapi.Options{Rate: -1, DecodeEvent: decodeEvent, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	const n, rounds = 3000, 5
	bodyA, rawA := reuseEvents("/a/", [2]string{"EUR", "USD"}, n, false, now)
	bodyB, rawB := reuseEvents("/b/", [2]string{"GBP", "JPY"}, n, false, now)
	bodyA2, _ := reuseEvents("/a/", [2]string{"EUR", "USD"}, n, true, now)
	if len(bodyA) != len(bodyB) || len(bodyA) != len(bodyA2) {
		t.Fatalf("bodies of %d, %d and %d bytes, want the same size", len(bodyA), len(bodyB), len(bodyA2))
	}
	var raw []tsstore.Point
	for range rounds {
		for _, body := range [][]byte{bodyA, bodyB, bodyA2} {
			r := httptest.NewRequest("POST", "/v1/events", bytes.NewReader(body))
			r.Header.Set("Authorization", "Bearer "+token)
			r.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			api.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				t.Fatalf("POST /v1/events: %d %s", w.Code, w.Body)
			}
		}
		raw = append(append(append(raw, rawA...), rawB...), rawA...)
	}
	want := map[string]map[string]tsstore.Agg{}
	for _, p := range raw {
		made, err := eventsProcessor{}.Process(nil, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range made {
			if want[q.Metric] == nil {
				want[q.Metric] = map[string]tsstore.Agg{}
			}
			k := fmt.Sprintf("%s@%d", q.Labels, tsstore.CellStart(q.Timestamp, eng.CellWidth()))
			a := want[q.Metric][k]
			a.Add(q.Value)
			want[q.Metric][k] = a
		}
	}
	check := func(when string) {
		t.Helper()
		for metric, cells := range want {
			got := map[string]tsstore.Agg{}
			cs, _, err := eng.CellsDetailed(context.Background(), tsstore.Selector{Metric: metric, From: now.Add(-time.Hour).UnixMilli(), To: now.Add(time.Hour).UnixMilli()})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cs {
				k := fmt.Sprintf("%s@%d", c.Labels, c.Start)
				a := got[k]
				a.Merge(c.Agg)
				got[k] = a
			}
			if !maps.Equal(got, cells) {
				t.Errorf("%s: %d cells of %s, want %d", when, len(got), metric, len(cells))
				for k, a := range cells {
					if got[k] != a {
						t.Errorf("  %s: got %+v, want %+v", k, got[k], a)
						break
					}
				}
			}
		}
	}
	check("cached")
	if _, err := eng.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	check("flushed")
}
