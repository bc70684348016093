package lineproto

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hourglass-io/hourglass/tsstore"
)

var now = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)

func mustLabels(t *testing.T, kv ...string) tsstore.Labels {
	t.Helper()
	ls, err := tsstore.NewLabels(kv...)
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func TestDecode(t *testing.T) {
	ms := now.UnixMilli()
	body := "cpu,host=a usage_idle=93.5,up=true,n=3i,u=4u,s=\"str\" 1767322800000000000\n" +
		"order,currency=EUR,status=paid value=7\n" +
		"weather\\ station,loc\\,x=a\\ b temp=-3.5e1\n# comment\n\n" +
		"9lives,1tag=v,merchant=m1 value=1,off=false\r\n"
	got, err := Decode([]byte(body), "", "m1", now)
	if err != nil {
		t.Fatal(err)
	}
	host := mustLabels(t, "host", "a", "merchant", "m1")
	order := mustLabels(t, "currency", "EUR", "status", "paid", "merchant", "m1")
	want := []tsstore.Point{
		{Metric: "cpu_usage_idle", Labels: host, Timestamp: 1767322800000, Value: 93.5},
		{Metric: "cpu_up", Labels: host, Timestamp: 1767322800000, Value: 1},
		{Metric: "cpu_n", Labels: host, Timestamp: 1767322800000, Value: 3},
		{Metric: "cpu_u", Labels: host, Timestamp: 1767322800000, Value: 4},
		{Metric: "order", Labels: order, Timestamp: ms, Value: 7},
		{Metric: "weather_station_temp", Labels: mustLabels(t, "loc_x", "a b", "merchant", "m1"), Timestamp: ms, Value: -35},
		{Metric: "_9lives", Labels: mustLabels(t, "_1tag", "v", "merchant", "m1"), Timestamp: ms, Value: 1},
		{Metric: "_9lives_off", Labels: mustLabels(t, "_1tag", "v", "merchant", "m1"), Timestamp: ms, Value: 0},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	for _, c := range []struct{ precision, ts string }{{"s", "1767322800"}, {"ms", "1767322800000"}, {"us", "1767322800000000"}, {"m", "29455380"}, {"h", "490923"}} {
		ps, err := Decode([]byte("m f=1 "+c.ts), c.precision, "m1", now)
		if err != nil || ps[0].Timestamp != 1767322800000 {
			t.Errorf("precision %s: %v, %v", c.precision, ps, err)
		}
	}
}

func TestErrors(t *testing.T) {
	for _, c := range []struct{ body, precision, want string }{
		{"", "", "no numeric fields"},
		{"m f=\"only a string\"", "", "no numeric fields"},
		{"m f=1", "fortnight", `precision "fortnight"`},
		{"cpu,merchant=m2 x=1", "", `line 1: tag merchant="m2": the token is bound to merchant "m1"`},
		{"m,__name__=x f=1", "", "line 1: label name \"__name__\""},
		{"a,b=c d=1e309", "", `line 1: field "d"`},
		{"cpu usage=", "", "line 1, column 11"},
		{"m f=1 99999999999999999999", "", "line 1: timestamp 99999999999999999999 out of range"},
		{"m f=1 1", "", "line 1: timestamp 1970-01-01T00:00:00Z is outside"},
		{"m f=1 9223372036854775807", "s", "line 1: timestamp 9223372036854775807 out of range"},
		{"m,a=1,a=2 f=1", "", `line 1: labels: duplicate label name "a"`},
	} {
		_, err := Decode([]byte(c.body), c.precision, "m1", now)
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, tsstore.ErrInvalid) {
			t.Errorf("%q: got %v, want an ErrInvalid containing %q", c.body, err, c.want)
		}
	}
}

// TestErrorLines checks the line an error names: first, middle and last
// line, with and without a final newline, for errors the parser finds
// (syntax) and errors found once the parser is past the line's newline.
func TestErrorLines(t *testing.T) {
	bad := map[string]string{
		"syntax":   "cpu usage=",
		"merchant": "cpu,merchant=other usage=1",
		"time":     "cpu usage=1 1",
		"label":    "cpu,__x=1 usage=1",
		"escaped":  "c\\ pu,merchant=other usage=1",
	}
	good := "mem,host=a free=1"
	for kind, b := range bad {
		for _, at := range []int{0, 1, 2} {
			for _, final := range []string{"", "\n", "\r\n"} {
				lines := []string{good, good, good}
				lines[at] = b
				body := strings.Join(lines, "\n") + final
				_, err := Decode([]byte(body), "", "m1", now)
				want := fmt.Sprintf("line %d", at+1)
				if err == nil || !strings.HasPrefix(err.Error(), want+":") && !strings.HasPrefix(err.Error(), want+",") {
					t.Errorf("%s at line %d, final %q: got %v, want %s", kind, at+1, final, err, want)
				}
			}
		}
	}
	// Comments, blank lines and a string field with a newline count.
	body := "# c\n\nm s=\"a\nb\",f=1\nm,merchant=x f=1"
	if _, err := Decode([]byte(body), "", "m1", now); err == nil || !strings.HasPrefix(err.Error(), "line 5:") {
		t.Errorf("got %v, want line 5", err)
	}
}

func TestSeriesAreShared(t *testing.T) {
	d := new(Decoder)
	a, err := d.Decode([]byte("web,page=/a views=1,ms=20\nweb,page=/a views=1,ms=30"), "", "m1", now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Decode([]byte("web,page=/a views=1"), "", "m1", now)
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.Decode([]byte("web,page=/a views=1"), "", "m2", now)
	if err != nil {
		t.Fatal(err)
	}
	if &a[0].Labels[0] != &a[3].Labels[0] || &a[0].Labels[0] != &b[0].Labels[0] {
		t.Error("a series' labels are not shared")
	}
	if c[0].Labels.Get("merchant") != "m2" {
		t.Errorf("merchant m2's point has labels %v", c[0].Labels)
	}
	if ls := a[0].Labels; cap(ls) != len(ls) {
		t.Errorf("shared labels have room to append in place: len %d, cap %d", len(ls), cap(ls))
	}
}

func FuzzDecode(f *testing.F) {
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
	d := new(Decoder)
	f.Fuzz(func(t *testing.T, b []byte, precision string) {
		ps, err := d.Decode(b, precision, "m1", now)
		if err != nil {
			if !errors.Is(err, tsstore.ErrInvalid) {
				t.Fatalf("error of another kind: %v", err)
			}
			return
		}
		for i, p := range ps {
			if err := p.Validate(); err != nil {
				t.Fatalf("point %d: %v", i, err)
			}
			if p.Labels.Get("merchant") != "m1" {
				t.Fatalf("point %d: labels %v", i, p.Labels)
			}
		}
	})
}

// benchBody is one of the harness's batches: lines of two fields over
// 100 merchants' 200 series each (here one merchant's token).
func benchBody(lines int) []byte {
	var b strings.Builder
	ts := now.Add(-10 * time.Minute).UnixNano()
	for i := range lines {
		fmt.Fprintf(&b, "web,page=/p/%03d,device=d%d views=1i,ms=%d %d\n", i%200, i%3, i%2000, ts+int64(i)*1e6)
	}
	return []byte(b.String())
}

// BenchmarkDecode measures decoding a request of 5,000 lines × 2 fields.
//
//	go test -run '^$' -bench Decode -benchmem ./internal/lineproto/
func BenchmarkDecode(b *testing.B) {
	body := benchBody(5000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(body, "", "m1", now); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*10_000)/b.Elapsed().Seconds(), "points/s")
}

// TestMetricsByPosition checks metric names when lines change their
// fields' order or measurement (the decoder remembers the last line's).
func TestMetricsByPosition(t *testing.T) {
	d := new(Decoder)
	ps, err := d.Decode([]byte("a x=1,y=2\na y=3,x=4\nb x=5,value=6\na x=7"), "", "m1", now)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, fmt.Sprintf("%s=%v", p.Metric, p.Value))
	}
	if want := "a_x=1 a_y=2 a_y=3 a_x=4 b_x=5 b=6 a_x=7"; strings.Join(got, " ") != want {
		t.Errorf("got %s, want %s", strings.Join(got, " "), want)
	}
}
