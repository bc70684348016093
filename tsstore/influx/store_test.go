package influx_test

import (
	"testing"

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
