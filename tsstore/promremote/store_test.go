package promremote_test

import (
	"testing"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/promremote"
	"github.com/hourglass-io/hourglass/tsstore/storetest"
)

// TestConformanceVictoriaMetrics runs the suite on a VictoriaMetrics
// single node: writes by remote write, reads through /api/v1/export.
func TestConformanceVictoriaMetrics(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tsstore.Store {
		s := openVictoria(t, nil)
		if s.ReadAPI() != promremote.ReadExport || len(s.FlushURLs()) != 1 {
			t.Fatalf("on VictoriaMetrics: read API %v, flush URLs %v; want export and its /internal/force_flush", s.ReadAPI(), s.FlushURLs())
		}
		return s
	})
}

// TestConformancePrometheus runs the suite on Prometheus: writes through
// its remote-write receiver, reads by instant queries of range selectors.
func TestConformancePrometheus(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tsstore.Store {
		s := openPrometheus(t, nil)
		if s.ReadAPI() != promremote.ReadQuery || len(s.FlushURLs()) != 0 {
			t.Fatalf("on Prometheus: read API %v, flush URLs %v; want query and none", s.ReadAPI(), s.FlushURLs())
		}
		return s
	})
}
