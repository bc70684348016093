package balancer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/hourglass-io/hourglass/balancer"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/prometheus/client_golang/prometheus"
)

// Picks and reports from many goroutines while backends come and go and
// health checks run; run with -race. At the end nothing is in flight.
func TestConcurrentPickReport(t *testing.T) {
	for _, p := range policies() {
		t.Run(p.Name(), func(t *testing.T) {
			var ps probeSet
			b := newBalancer(t, p, &balancer.Options[string]{
				Probe: ps.probe, CheckInterval: -1, Fall: 1, Rise: 1, ConsecutiveFailures: 3, MaxEjectionPercent: 50, SlowStart: 1e6,
			}, 1, 2, 3, 1, 1)
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 1000 {
						c, err := b.Pick(fmt.Sprint(g, "-", i%50))
						if err != nil {
							if !errors.Is(err, tsstore.ErrUnavailable) {
								t.Error(err)
							}
							continue
						}
						switch {
						case c.ID() == "b" && i%3 == 0:
							c.Done(errors.New("flaky"))
						case i%7 == 0:
							c.Release()
						default:
							c.Done(nil)
						}
					}
				}()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 50 {
					id := fmt.Sprint("x", i%5)
					if i%2 == 0 {
						b.Add(balancer.Backend[string]{ID: id, Value: id})
					} else {
						b.Remove(id)
					}
					ps.set("c", i%4 == 0)
					b.CheckHealth(context.Background())
					b.Status()
				}
			}()
			wg.Wait()
			for _, s := range b.Status() {
				if s.InFlight != 0 {
					t.Errorf("%s has %d in flight after every conn completed", s.ID, s.InFlight)
				}
			}
		})
	}
}

func TestCollector(t *testing.T) {
	b := newBalancer(t, balancer.RoundRobin(), &balancer.Options[string]{Name: "web"}, 1, 1)
	held, _ := b.Pick("")
	count(t, b, 9, nil)
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(b.Collector()); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetValue())
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			got[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	want := map[string]float64{
		"hourglass_balancer_picks_total{a,web}": 5, "hourglass_balancer_picks_total{b,web}": 5,
		"hourglass_balancer_in_flight{" + held.ID() + ",web}": 1,
		"hourglass_balancer_healthy{a,web}":                   1,
		"hourglass_balancer_ejected{a,web}":                   0,
		"hourglass_balancer_panic{web}":                       0,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	held.Done(nil)
}
