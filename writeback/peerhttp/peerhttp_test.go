package peerhttp_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/localcache"
	"github.com/hourglass-io/hourglass/writeback/peerhttp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	ctx    = context.Background()
	secret = []byte("0123456789abcdef0123456789abcdef")
	quiet  = slog.New(slog.DiscardHandler)
)

// merchantToken is a merchant token as the example server makes them
// (hg_<merchant>_<HMAC of the merchant under the same secret>).
func merchantToken(merchant string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(merchant))
	return "hg_" + merchant + "_" + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:24])
}

// TestOnlyTheClusterTokenOpensTheEndpoint: no token, a merchant token, an
// admin-like token, the token of another secret and a GET are refused;
// the cluster token is served.
func TestOnlyTheClusterTokenOpensTheEndpoint(t *testing.T) {
	h := &peerhttp.Handler{Secret: secret, Cells: func(context.Context, tsstore.Selector) ([]tsstore.Cell, error) {
		return []tsstore.Cell{{Metric: "views", Start: 0, Writer: "w", Seq: 1, Agg: tsstore.AggOf(1)}}, nil
	}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	sel := `{"Metric":"views","From":0,"To":60000}`
	for _, tc := range []struct {
		name, auth, method string
		want               int
	}{
		{"none", "", http.MethodPost, http.StatusUnauthorized},
		{"merchant token", "Bearer " + merchantToken("demo"), http.MethodPost, http.StatusUnauthorized},
		{"admin-like token", "Bearer hga_" + strings.Repeat("x", 40), http.MethodPost, http.StatusUnauthorized},
		{"the secret itself", "Bearer " + string(secret), http.MethodPost, http.StatusUnauthorized},
		{"another secret's cluster token", "Bearer " + peerhttp.Token([]byte("another secret, 16+ bytes")), http.MethodPost, http.StatusUnauthorized},
		{"basic auth", "Basic " + base64.StdEncoding.EncodeToString([]byte("x:"+peerhttp.Token(secret))), http.MethodPost, http.StatusUnauthorized},
		{"cluster token, GET", "Bearer " + peerhttp.Token(secret), http.MethodGet, http.StatusMethodNotAllowed},
		{"cluster token", "Bearer " + peerhttp.Token(secret), http.MethodPost, http.StatusOK},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+peerhttp.Path, strings.NewReader(sel))
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
	// An empty secret refuses everything, even the token of an empty secret.
	empty := httptest.NewServer(&peerhttp.Handler{Cells: h.Cells})
	defer empty.Close()
	c := &peerhttp.Client{Peers: []string{empty.URL}}
	if _, missing, err := c.PeerCells(ctx, tsstore.Selector{Metric: "views", To: 60_000}); err != nil || len(missing) != 1 {
		t.Errorf("a handler without a secret answered: missing %v, %v", missing, err)
	}
}

// node is an engine over its own localcache and the shared store, serving
// its cached cells and reading its peers' through peerhttp.
type node struct {
	eng    *writeback.Engine
	cache  *localcache.Cache
	srv    *httptest.Server
	client *peerhttp.Client
}

func startNodes(t testing.TB, n int, store tsstore.Store) []*node {
	nodes := make([]*node, n)
	for i := range nodes {
		nd := &node{client: &peerhttp.Client{Secret: secret, Timeout: time.Second}}
		nd.srv = httptest.NewServer(&peerhttp.Handler{Secret: secret, Cells: func(ctx context.Context, sel tsstore.Selector) ([]tsstore.Cell, error) {
			return nd.eng.CachedCells(ctx, sel)
		}})
		t.Cleanup(nd.srv.Close)
		nodes[i] = nd
	}
	for i, nd := range nodes {
		for j, other := range nodes {
			if j != i {
				nd.client.Peers = append(nd.client.Peers, other.srv.URL)
			}
		}
		var err error
		nd.cache, err = localcache.Open(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		nd.eng, err = writeback.New(nd.cache, store, &writeback.Options{FlushInterval: -1, MaxLate: time.Hour, Logger: quiet, Peers: nd.client})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = nd.eng.Close()
			_ = nd.cache.Close()
		})
	}
	return nodes
}

// TestClusterExact writes the same merchants' series through three
// servers and checks after every step that a query
// through any of them equals the oracle, with flushes of any of them in
// between, also one between a query's read of its peers and of the store.
func TestClusterExact(t *testing.T) {
	store := &hookStore{Store: memstore.New(nil)}
	nodes := startNodes(t, 3, store)
	oracle := memstore.New(nil)
	rnd := rand.New(rand.NewPCG(5, 5))
	now := time.Now()
	from, to := now.Add(-time.Hour).Truncate(time.Minute).UnixMilli(), now.Add(time.Minute).UnixMilli()
	eq, _ := tsstore.NewMatcher(tsstore.MatchEqual, "merchant", "m1")
	qs := []tsstore.Query{
		{Metric: "views", From: from, To: to, Step: time.Minute},
		{Metric: "views", Matchers: []tsstore.Matcher{eq}, From: from, To: to, Step: 5 * time.Minute, GroupBy: []string{}},
	}
	var oracleCells []tsstore.Cell
	for round := range 40 {
		w := rnd.IntN(len(nodes))
		var ps []tsstore.Point
		for range 1 + rnd.IntN(20) {
			ls, _ := tsstore.NewLabels("merchant", fmt.Sprintf("m%d", rnd.IntN(3)))
			ps = append(ps, tsstore.Point{Metric: "views", Labels: ls, Timestamp: now.Add(-time.Duration(rnd.Int64N(int64(50 * time.Minute)))).UnixMilli(), Value: float64(rnd.IntN(9) + 1)})
		}
		if err := nodes[w].eng.Write(ctx, ps); err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			oracleCells = append(oracleCells, tsstore.Cell{Metric: p.Metric, Labels: p.Labels, Start: tsstore.CellStart(p.Timestamp, time.Minute), Seq: uint32(len(oracleCells)), Agg: tsstore.AggOf(p.Value)})
		}
		switch rnd.IntN(4) {
		case 0:
			if _, err := nodes[rnd.IntN(len(nodes))].eng.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		case 1:
			f := nodes[rnd.IntN(len(nodes))]
			store.before(func() {
				if _, err := f.eng.Flush(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		if err := oracle.Write(ctx, oracleCells); err != nil {
			t.Fatal(err)
		}
		for i, nd := range nodes {
			for qi, q := range qs {
				want, _ := oracle.Query(ctx, q)
				got, missing, err := nd.eng.QueryDetailed(ctx, q)
				if err != nil || len(missing) > 0 {
					t.Fatalf("round %d, server %d, query %d: %v (missing %v)", round, i, qi, err, missing)
				}
				if d := cmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" {
					t.Fatalf("round %d, server %d, query %d (-oracle +server):\n%s", round, i, qi, d)
				}
			}
		}
	}
}

// hookStore runs a function once at the start of the next Cells.
type hookStore struct {
	tsstore.Store
	hook func()
}

func (s *hookStore) before(f func()) { s.hook = f }

func (s *hookStore) Cells(ctx context.Context, sel tsstore.Selector) ([]tsstore.Cell, error) {
	if f := s.hook; f != nil {
		s.hook = nil
		f()
	}
	return s.Store.Cells(ctx, sel)
}

// TestUnreachablePeersMakeAPartialAnswer: a peer that refuses connections
// and one slower than the timeout are missing, by URL; the engine flags
// the answer and counts it; the client counts the failures.
func TestUnreachablePeersMakeAPartialAnswer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	_ = ln.Close()
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	store := memstore.New(nil)
	nodes := startNodes(t, 1, store)
	c := &peerhttp.Client{Peers: []string{refused, slow.URL, nodes[0].srv.URL}, Secret: secret, Timeout: 200 * time.Millisecond}
	cache, err := localcache.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	eng, err := writeback.New(cache, store, &writeback.Options{FlushInterval: -1, Logger: quiet, Peers: c})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	now := time.Now().UnixMilli()
	ls, _ := tsstore.NewLabels("merchant", "m")
	if err := nodes[0].eng.Write(ctx, []tsstore.Point{{Metric: "views", Labels: ls, Timestamp: now, Value: 4}}); err != nil {
		t.Fatal(err)
	}
	q := tsstore.Query{Metric: "views", From: now - 60_000, To: now + 60_000, Step: time.Minute, GroupBy: []string{}}
	r, missing, err := eng.QueryDetailed(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{refused, slow.URL}; !slices.Equal(missing, want) {
		t.Errorf("missing = %v, want %v", missing, want)
	}
	var sum float64
	for _, s := range r.Series {
		for _, b := range s.Buckets {
			sum += b.Sum
		}
	}
	if sum != 4 {
		t.Errorf("the answering peer's cell: sum %v, want 4", sum)
	}
	if n := eng.Stats().PartialAnswers; n != 1 {
		t.Errorf("PartialAnswers = %d, want 1", n)
	}
	if st := c.Stats(); st.Requests != 3 || st.Failures[refused] != 1 || st.Failures[slow.URL] != 1 || st.Failures[nodes[0].srv.URL] != 0 {
		t.Errorf("client stats %+v, want 3 requests, one failure of each unreachable peer", st)
	}
}
