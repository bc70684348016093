package main

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i))
	}
	for q, want := range map[float64]time.Duration{0.5: 50, 0.99: 99, 1: 100, 0: 1} {
		if got := percentile(s, q); got != want {
			t.Errorf("percentile(%v) = %v, want %v", q, got, want)
		}
	}
	if percentile(nil, 0.5) != 0 {
		t.Error("percentile of nothing")
	}
}

func TestWriteBodyMix(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var evs []event
	if err := json.Unmarshal(writeBody(r, 10000), &evs); err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, e := range evs {
		n[e.Type]++
		if (e.Type == "page_view") != (e.Amount == nil) {
			t.Fatalf("event %+v", e)
		}
	}
	if n["page_view"] < 6500 || n["page_view"] > 7500 || n["order"] < 2400 || n["refund"] < 100 {
		t.Errorf("mix %v, want about 70 %% page views, 27 %% orders, 3 %% refunds", n)
	}
}
