package promapi_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hourglass-io/hourglass/httpapi/promapi"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/localcache"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is the start of the tests' data: cells of [t0, t0+dataSpan).
var t0 = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

// env is a real write-back engine (localcache over a memstore) with a
// fixed clock.
type env struct {
	eng   *writeback.Engine
	cache *localcache.Cache
	store *memstore.Store
}

// openEnv opens an engine in dir whose clock stands at now; points may be
// up to 40 days old.
func openEnv(dir string, now time.Time) (*env, error) {
	e := &env{store: memstore.New(nil)}
	var err error
	if e.cache, err = localcache.Open(dir, &localcache.Options{Shards: 2, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		return nil, err
	}
	e.eng, err = writeback.New(e.cache, e.store, &writeback.Options{
		FlushInterval: -1,
		MaxLate:       40 * 24 * time.Hour,
		Now:           func() time.Time { return now },
		Logger:        slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, errors.Join(err, e.cache.Close())
	}
	return e, nil
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e, err := openEnv(t.TempDir(), t0.Add(30*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.close(); err != nil {
			t.Error(err)
		}
	})
	return e
}

func (e *env) close() error {
	return errors.Join(e.eng.Close(), e.cache.Close(), e.store.Close())
}

func (e *env) write(t testing.TB, ps ...tsstore.Point) {
	t.Helper()
	if err := e.eng.Write(context.Background(), ps); err != nil {
		t.Fatal(err)
	}
}

func (e *env) flush(t testing.TB) {
	t.Helper()
	if _, err := e.eng.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// pt returns a point at t0+at.
func pt(metric string, at time.Duration, v float64, kv ...string) tsstore.Point {
	ls, err := tsstore.NewLabels(kv...)
	if err != nil {
		panic(err)
	}
	return tsstore.Point{Metric: metric, Labels: ls, Timestamp: t0.Add(at).UnixMilli(), Value: v}
}

// The tests' tokens.
const (
	tokDemo  = "tok-demo"
	tokOther = "tok-other"
	tokAdmin = "tok-admin"
)

// authorize reads a token as the example server does: Bearer, the password
// of basic auth, or X-Hourglass-Token.
func authorize(r *http.Request) (string, bool, error) {
	tok := r.Header.Get("X-Hourglass-Token")
	if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		tok = t
	} else if _, p, ok := r.BasicAuth(); ok {
		tok = p
	}
	switch tok {
	case tokDemo:
		return "demo", false, nil
	case tokOther:
		return "other", false, nil
	case tokAdmin:
		return "", true, nil
	}
	return "", false, errors.New("invalid token")
}

// testMetrics are the metrics the tests write.
var testMetrics = []string{"orders", "revenue", "views"}

func listMetrics(context.Context) ([]string, error) { return testMetrics, nil }

// serve starts an HTTP server of the API over e.
func serve(t testing.TB, e *env, opts *promapi.Options) *httptest.Server {
	t.Helper()
	o := promapi.Options{Authorize: authorize, Metrics: listMetrics, Now: func() time.Time { return t0.Add(3 * time.Hour) }}
	if opts != nil {
		o = *opts
	}
	srv := httptest.NewServer(promapi.NewHandler(e.eng, &o))
	t.Cleanup(srv.Close)
	return srv
}

// shopData writes three merchants' orders, revenue and views over
// [t0, t0+3h), flushing between parts so that the answers merge cache and
// store partials.
func shopData(t testing.TB, e *env) {
	t.Helper()
	currencies := []string{"EUR", "USD"}
	paths := []string{"/", "/pricing"}
	for i := range 180 {
		at := time.Duration(i) * time.Minute
		for mi, m := range []string{"demo", "other", "third"} {
			c := currencies[(i+mi)%2]
			v := float64(10 + (i*7+mi*3)%50)
			e.write(t,
				pt("orders", at+time.Second, 1, "merchant", m, "currency", c),
				pt("revenue", at+time.Second, v, "merchant", m, "currency", c),
				pt("revenue", at+30*time.Second, v/2, "merchant", m, "currency", c),
				pt("views", at+10*time.Second, 1, "merchant", m, "path", paths[i%2]),
			)
		}
		if i%40 == 17 {
			e.flush(t)
		}
	}
}
