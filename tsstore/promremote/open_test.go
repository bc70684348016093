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
