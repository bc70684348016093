package influx_test

import (
	"context"
	"strings"
	"testing"

	"github.com/hourglass-io/hourglass/internal/servertest"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/influx"
	"github.com/hourglass-io/hourglass/tsstore/storetest"
)

// TestConformance runs the suite against the real server through the v1
// write path and InfluxQL (the test server is InfluxDB 1.6).
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tsstore.Store {
		return openStore(t, influx.Options{WriteAPI: influx.WriteV1})
	})
}

// TestConformanceV2Write runs the suite with writes through
// influxdb-client-go's /api/v2/write, mapped onto the real server's /write
// by a test-only proxy.
func TestConformanceV2Write(t *testing.T) {
	u := servertest.InfluxURL(t)
	p := newV2Proxy(t, u)
	storetest.Run(t, func(t *testing.T) tsstore.Store {
		s, err := influx.Open(p.URL, &influx.Options{Database: newDatabase(t, u)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
	if p.v2Writes.Load() == 0 || p.gzipped.Load() != p.v2Writes.Load() {
		t.Errorf("proxy saw %d /api/v2/write requests, %d of them gzipped; want all of the store's writes, gzipped", p.v2Writes.Load(), p.gzipped.Load())
	}
}

// TestRetentionPolicy writes to and reads from a non-default retention
// policy, through both write APIs ("db/rp" buckets on v2).
func TestRetentionPolicy(t *testing.T) {
	u := servertest.InfluxURL(t)
	p := newV2Proxy(t, u)
	db := newDatabase(t, u)
	influxQL(t, u, `CREATE RETENTION POLICY "short rp" ON `+db+` DURATION 0s REPLICATION 1`)
	for _, api := range []influx.WriteAPI{influx.WriteV1, influx.WriteV2} {
		t.Run(api.String(), func(t *testing.T) {
			s, err := influx.Open(p.URL, &influx.Options{Database: db, RetentionPolicy: "short rp", WriteAPI: api})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ls := tsstore.Labels{{Name: "merchant", Value: "m-" + api.String()}}
			c := tsstore.Cell{Metric: "orders", Labels: ls, Start: storetest.Base, Agg: tsstore.AggOf(3)}
			if err := s.Write(context.Background(), []tsstore.Cell{c}); err != nil {
				t.Fatal(err)
			}
			got, err := s.Cells(context.Background(), tsstore.Selector{Metric: "orders", Matchers: []tsstore.Matcher{{Type: tsstore.MatchEqual, Name: "merchant", Value: "m-" + api.String()}}, From: storetest.Base, To: storetest.Base + 1})
			if err != nil || len(got) != 1 || got[0].Agg != c.Agg {
				t.Fatalf("Cells = %+v, %v; want the cell written", got, err)
			}
			// And it is in the retention policy, not the default one.
			if out := influxQL(t, u, `SELECT count("count") FROM `+db+`."short rp"."orders" WHERE "merchant" = 'm-`+api.String()+`'`); !strings.Contains(out, `"values":[[`) {
				t.Errorf("point not found in the retention policy: %s", out)
			}
		})
	}
}
