package influx

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/tsstore"
)

// TestUnparsableLine sends a batch with a line the real server cannot
// parse: the error is ErrInvalid and names the cell and its line.
func TestUnparsableLine(t *testing.T) {
	u := servertest.InfluxURL(t)
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	run := func(stmt string) {
		resp, err := c.PostForm(u+"/query", url.Values{"q": {stmt}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	run("CREATE DATABASE hg_unparsable")
	defer run("DROP DATABASE hg_unparsable")
	s, err := Open(u, &Options{Database: "hg_unparsable", WriteAPI: WriteV1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	good := tsstore.Cell{Metric: "orders", Labels: tsstore.Labels{{Name: "merchant", Value: "m1"}}, Start: 60000, Agg: tsstore.AggOf(1)}
	bad := good
	bad.Labels = tsstore.Labels{{Name: "merchant", Value: "m2"}}
	body := appendLine(nil, &good)
	body = append(body, "orders,merchant=m2 count=1i,sum=oops 60000\n"...)
	err = s.sendBatch(context.Background(), body, []*tsstore.Cell{&good, &bad}, []int{4, 5})
	if !errors.Is(err, tsstore.ErrInvalid) {
		t.Fatalf("sendBatch: got %v, want ErrInvalid", err)
	}
	for _, want := range []string{"cell 5", "orders,merchant=m2 count=1i,sum=oops 60000", "unable to parse"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
