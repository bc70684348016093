package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
)

// The event mix: share of page views, orders and refunds in a write batch.
const (
	pageViewShare = 0.70
	orderShare    = 0.27 // refunds: the rest
)

var (
	paths      = []string{"/", "/pricing", "/products", "/products/1", "/products/2", "/products/3", "/cart", "/checkout", "/blog", "/about"}
	currencies = []string{"EUR", "EUR", "EUR", "USD", "USD", "GBP"}
	statuses   = []string{"paid", "paid", "paid", "paid", "paid", "paid", "pending", "failed"}
	devices    = []string{"desktop", "mobile", "mobile", "tablet"}
	metrics    = []string{"revenue", "orders", "views", "views", "refunds"}
	groupBys   = map[string][]string{
		"revenue": {"currency", ""}, "orders": {"status", "currency"}, "views": {"path", "device"}, "refunds": {"currency", ""},
	}
)

// event is one event of the example server's /v1/events.
type event struct {
	Type     string   `json:"type"`
	Amount   *float64 `json:"amount,omitempty"`
	Currency string   `json:"currency,omitempty"`
	Status   string   `json:"status,omitempty"`
	Path     string   `json:"path,omitempty"`
	Device   string   `json:"device,omitempty"`
}

// writeBody returns a JSON batch of n events.
func writeBody(r *rand.Rand, n int) []byte {
	var b bytes.Buffer
	_ = json.NewEncoder(&b).Encode(writeEvents(r, n))
	return b.Bytes()
}

// merchantID names simulated merchant m.
func merchantID(m int) string { return fmt.Sprintf("load-%05d", m) }

// writeEvents returns n events of the mix.
func writeEvents(r *rand.Rand, n int) []event {
	evs := make([]event, n)
	for i := range evs {
		x := r.Float64()
		switch {
		case x < pageViewShare:
			evs[i] = event{Type: "page_view", Path: pick(r, paths), Device: pick(r, devices)}
		default:
			// Amounts: log-normal around 40, in cents.
			a := math.Round(math.Exp(3.7+0.8*r.NormFloat64())*100) / 100
			if x < pageViewShare+orderShare {
				evs[i] = event{Type: "order", Amount: &a, Currency: pick(r, currencies), Status: pick(r, statuses)}
			} else {
				evs[i] = event{Type: "refund", Amount: &a, Currency: pick(r, currencies)}
			}
		}
	}
	return evs
}

// readPath returns a dashboard query: one metric of the last hour by minute,
// grouped by one of its labels.
func readPath(r *rand.Rand) string {
	m := pick(r, metrics)
	v := url.Values{"from": {"now-1h"}}
	if g := pick(r, groupBys[m]); g != "" {
		v.Set("group_by", g)
	}
	if r.IntN(4) == 0 {
		v.Set("step", "5m")
	}
	return fmt.Sprintf("/v1/metrics/%s?%s", m, v.Encode())
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }
