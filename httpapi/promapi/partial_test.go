package promapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/httpapi/promapi"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/localcache"
)

// TestPartialAnswerWarns: a query through an engine one of whose peers does
// not answer carries a warning naming it, never a silent short answer.
func TestPartialAnswerWarns(t *testing.T) {
	gone := newEnv(t)
	if err := gone.eng.Close(); err != nil {
		t.Fatal(err)
	}
	e := &env{store: memstore.New(nil)}
	var err error
	if e.cache, err = localcache.Open(t.TempDir(), &localcache.Options{Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(30 * 24 * time.Hour)
	e.eng, err = writeback.New(e.cache, e.store, &writeback.Options{
		FlushInterval: -1, MaxLate: 40 * 24 * time.Hour, Now: func() time.Time { return now },
		Logger: slog.New(slog.DiscardHandler), Peers: writeback.EnginePeers{"server-b": gone.eng},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.close() })
	e.write(t, pt("revenue", time.Minute, 5, "merchant", "demo", "currency", "EUR"))
	srv := serve(t, e, nil)
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/query?"+url.Values{"query": {"sum(revenue:sum)"}, "time": {t0.Add(2 * time.Minute).Format(time.RFC3339)}}.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+tokDemo)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r struct {
		Status   string   `json:"status"`
		Warnings []string `json:"warnings"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if r.Status != "success" || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "server-b") {
		t.Errorf("answer %s: want success with one warning naming server-b", b)
	}
}

// recordingSource passes reads to an engine and records the matchers of
// its queries.
type recordingSource struct {
	*writeback.Engine
	mu       sync.Mutex
	matchers [][]tsstore.Matcher
}

func (r *recordingSource) QueryDetailed(ctx context.Context, q tsstore.Query) (*tsstore.Result, []string, error) {
	r.mu.Lock()
	r.matchers = append(r.matchers, q.Matchers)
	r.mu.Unlock()
	return r.Engine.QueryDetailed(ctx, q)
}

// TestMerchantMatcherOnce: a merchant's query reaches the engine with the
// matcher merchant=<it> once, though both the handler (EnforceExpr) and
// the merchant's scoped storage restrict it.
func TestMerchantMatcherOnce(t *testing.T) {
	e := newEnv(t)
	e.write(t, pt("revenue", time.Minute, 5, "merchant", "demo", "currency", "EUR"))
	rec := &recordingSource{Engine: e.eng}
	srv := httptest.NewServer(promapi.NewHandler(rec, &promapi.Options{Authorize: authorize, Metrics: listMetrics, Now: func() time.Time { return t0.Add(3 * time.Hour) }}))
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/query?"+url.Values{"query": {`sum(revenue:sum{currency="EUR"})`}, "time": {t0.Add(2 * time.Minute).Format(time.RFC3339)}}.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+tokDemo)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"5"`) {
		t.Fatalf("answer %d %s: want 200 with the value 5", resp.StatusCode, b)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.matchers) == 0 {
		t.Fatal("the engine answered no query")
	}
	for _, ms := range rec.matchers {
		n := 0
		for _, m := range ms {
			if m.Name == promapi.MerchantLabel {
				n++
			}
		}
		if n != 1 {
			t.Errorf("query matchers %v: %d on merchant, want 1", ms, n)
		}
	}
}
