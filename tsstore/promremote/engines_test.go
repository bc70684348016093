package promremote_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/promremote"
)

// namespace returns external labels unique to one store of a test: the
// tests share one engine, and each store must start empty.
func namespace(t testing.TB) tsstore.Labels {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	return tsstore.Labels{{Name: "hgtest", Value: hex.EncodeToString(b[:])}}
}

// openVictoria opens a store on the test VictoriaMetrics single node, in a
// namespace of its own unless opts has external labels.
func openVictoria(t testing.TB, opts *promremote.Options) *promremote.Store {
	t.Helper()
	u := servertest.VictoriaMetricsURL(t)
	return openOn(t, u+"/api/v1/write", u+"/", opts)
}

// openPrometheus opens a store on the test Prometheus, in a namespace of
// its own unless opts has external labels.
func openPrometheus(t testing.TB, opts *promremote.Options) *promremote.Store {
	t.Helper()
	u := servertest.PrometheusURL(t)
	return openOn(t, u+"/api/v1/write", u+"/", opts)
}

func openOn(t testing.TB, writeURL, readURL string, opts *promremote.Options) *promremote.Store {
	t.Helper()
	var o promremote.Options
	if opts != nil {
		o = *opts
	}
	if o.ExternalLabels == nil {
		o.ExternalLabels = namespace(t)
	}
	s, err := promremote.Open(context.Background(), writeURL, readURL, &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
