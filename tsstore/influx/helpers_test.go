package influx_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/tsstore/influx"
)

var dbSeq atomic.Int64

// newDatabase creates a database of its own on the test server for t and
// drops it when t ends.
func newDatabase(t testing.TB, serverURL string) string {
	t.Helper()
	db := fmt.Sprintf("hg_%d_%d", time.Now().UnixNano()%1e9, dbSeq.Add(1))
	influxQL(t, serverURL, "CREATE DATABASE "+db)
	t.Cleanup(func() { influxQL(t, serverURL, "DROP DATABASE "+db) })
	return db
}

// influxQL runs a statement on the server with a bare HTTP client.
func influxQL(t testing.TB, serverURL, stmt string) string {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	resp, err := c.PostForm(serverURL+"/query", url.Values{"q": {stmt}})
	if err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = fmt.Fprint(&b, resp.Status)
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	b.Write(buf[:n])
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s", stmt, b.String())
	}
	return b.String()
}

// openStore opens a Store on a fresh database of the test server with
// opts (Database is filled in), closed when t ends.
func openStore(t testing.TB, opts influx.Options) *influx.Store {
	t.Helper()
	u := servertest.InfluxURL(t)
	if opts.Database == "" {
		opts.Database = newDatabase(t, u)
	}
	s, err := influx.Open(u, &opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
