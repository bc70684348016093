package httpapi

import (
	"errors"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/internal/lineproto"
	"github.com/hourglass-io/hourglass/tsstore"
)

var fuzzNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// checkParsed is the property both parsers keep: either an ErrInvalid error,
// or at least one point, every one valid, of merchant m1, with a time in the
// engine's window.
func checkParsed(t *testing.T, points []tsstore.Point, err error) {
	if err != nil {
		if !errors.Is(err, tsstore.ErrInvalid) {
			t.Fatalf("error not of kind ErrInvalid: %v", err)
		}
		return
	}
	if len(points) == 0 {
		t.Fatal("no points and no error")
	}
	for i, p := range points {
		if err := p.Validate(); err != nil {
			t.Fatalf("point %d invalid: %v", i, err)
		}
		if p.Labels.Get("merchant") != "m1" {
			t.Fatalf("point %d has merchant %q", i, p.Labels.Get("merchant"))
		}
		if err := CheckTime(p.Timestamp, fuzzNow); err != nil {
			t.Fatalf("point %d: %v", i, err)
		}
	}
}

func FuzzParseEvents(f *testing.F) {
	for _, s := range []string{
		`[{"metric":"orders","value":12.5,"labels":{"currency":"EUR"}}]`,
		`[{"metric":"refunds","value":1,"labels":{"country":"DE"},"time":1767322800000}]`,
		"{\"metric\":\"views\"}\n{\"metric\":\"orders\",\"value\":0}",
		`[]`, `[{}]`, `[{"metric":"x","value":-1}]`, `{"metric":"x"}`, `[1,2]`, `[{"metric":"x","value":1e400}]`,
		`[{"metric":"x","labels":{"merchant":"m2"}}]`, `[{"metric":"x","labels":{"__name__":"y"}}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ps, err := parseEventsJSON(nil, b, decodeTestEvent, "m1", fuzzNow)
		checkParsed(t, ps, err)
		ps, err = parseEventsNDJSON(nil, b, decodeTestEvent, "m1", fuzzNow)
		checkParsed(t, ps, err)
	})
}

func FuzzParseLineProtocol(f *testing.F) {
	for _, s := range []string{
		"cpu,host=a usage_idle=93.5,up=true,n=3i,u=4u,s=\"str\" 1767322800000000000",
		"order,currency=EUR,status=paid value=7",
		"weather\\ station,loc\\,x=a\\ b temp=-3.5e1\n# comment\n\nmem free=1",
		"cpu,merchant=m1 x=1", "cpu,merchant=m2 x=1", "9lives,1tag=v value=1", "m f=1 99999999999999999999",
		"m,__name__=x f=1", "m f=\"only a string\"", "a,b=c d=1e309",
	} {
		f.Add([]byte(s), "")
	}
	f.Add([]byte("m f=1 1767322800"), "s")
	f.Add([]byte("m f=1 29455380"), "m")
	f.Fuzz(func(t *testing.T, b []byte, precision string) {
		ps, err := lineproto.Decode(b, precision, "m1", fuzzNow)
		checkParsed(t, ps, err)
	})
}
