package promremote_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/promremote"
)

// TestOpenChecksSettings: Open reads the engine's settings and refuses a
// late window they cannot hold; a read URL that does not answer is
// ErrUnavailable, a malformed one ErrInvalid.
func TestOpenChecksSettings(t *testing.T) {
	long := 200 * 365 * 24 * time.Hour
	t.Run("VictoriaMetrics retention", func(t *testing.T) {
		u := servertest.VictoriaMetricsURL(t)
		_, err := promremote.Open(ctx, u+"/api/v1/write", u+"/", &promremote.Options{LateWindow: long})
		if !errors.Is(err, tsstore.ErrInvalid) || !strings.Contains(err.Error(), "-retentionPeriod") {
			t.Errorf("late window of 200 years on VictoriaMetrics: got %v, want ErrInvalid naming -retentionPeriod", err)
		}
	})
	t.Run("Prometheus out-of-order window", func(t *testing.T) {
		u := servertest.PrometheusURL(t)
		_, err := promremote.Open(ctx, u+"/api/v1/write", u+"/", &promremote.Options{LateWindow: long})
		if !errors.Is(err, tsstore.ErrInvalid) || !strings.Contains(err.Error(), "out_of_order_time_window") {
			t.Errorf("late window of 200 years on Prometheus: got %v, want ErrInvalid naming out_of_order_time_window", err)
		}
		s, err := promremote.Open(ctx, u+"/api/v1/write", u+"/", &promremote.Options{LateWindow: -1})
		if err != nil {
			t.Fatalf("checks disabled: %v", err)
		}
		_ = s.Close()
	})
	t.Run("unreachable", func(t *testing.T) {
		u := "http://127.0.0.1:1" // nobody listens on port 1
		_, err := promremote.Open(ctx, u+"/api/v1/write", u+"/", &promremote.Options{MaxRetries: -1})
		if !errors.Is(err, tsstore.ErrUnavailable) {
			t.Errorf("read URL without a server: got %v, want ErrUnavailable", err)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		for _, c := range [][2]string{{"vm:8428/api/v1/write", "http://vm:8428/"}, {"http://vm:8428/api/v1/write", "ftp://vm/"}} {
			if _, err := promremote.Open(ctx, c[0], c[1], nil); !errors.Is(err, tsstore.ErrInvalid) {
				t.Errorf("Open(%q, %q): got %v, want ErrInvalid", c[0], c[1], err)
			}
		}
	})
}

// TestOutsideRetention: a cell VictoriaMetrics would drop behind a 2xx
// (beyond -futureRetention, 2 years in scripts/test.sh) is refused with
// ErrInvalid naming it, and nothing of its batch is written.
func TestOutsideRetention(t *testing.T) {
	s := openVictoria(t, nil)
	ls := tsstore.Labels{{Name: "merchant", Value: "m1"}}
	ahead := tsstore.CellStart(time.Now().Add(3*365*24*time.Hour).UnixMilli(), time.Minute)
	now := tsstore.CellStart(time.Now().UnixMilli(), time.Minute)
	err := s.Write(ctx, []tsstore.Cell{
		{Metric: "views", Labels: ls, Start: now, Agg: tsstore.AggOf(1)},
		{Metric: "views", Labels: ls, Start: ahead, Agg: tsstore.AggOf(1)},
	})
	if !errors.Is(err, tsstore.ErrInvalid) || !strings.Contains(err.Error(), "cell 1") || !strings.Contains(err.Error(), "futureRetention") {
		t.Fatalf("a cell 3 years ahead: got %v, want ErrInvalid naming cell 1 and -futureRetention", err)
	}
	cells, err := s.Cells(ctx, tsstore.Selector{Metric: "views", From: now, To: ahead + 1})
	if err != nil || len(cells) != 0 {
		t.Errorf("after the refused batch: %v, %v; want nothing stored", cells, err)
	}
}
