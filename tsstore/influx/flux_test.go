package influx

import (
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/influxdata/influxdb-client-go/v2/api"

	"github.com/hourglass-io/hourglass/tsstore"
)

// No Flux server is available to the tests (the test server is InfluxDB
// 1.6): they check the query text and the parsing of annotated CSV in the
// documented format
// (https://docs.influxdata.com/influxdb/v2/reference/syntax/annotated-csv/).

func TestFluxQueryText(t *testing.T) {
	ms := []tsstore.Matcher{
		{Type: tsstore.MatchEqual, Name: "merchant", Value: `m"1${x}`},
		{Type: tsstore.MatchEqual, Name: "time", Value: "new\nline"},
		{Type: tsstore.MatchRegexp, Name: "page", Value: "/cart/.*"},
		{Type: tsstore.MatchNotRegexp, Name: "country", Value: "fr|"},
		{Type: tsstore.MatchNotEqual, Name: "x", Value: "y"}, // matches "": not pushed down
	}
	for i := range ms {
		if err := ms[i].Compile(); err != nil {
			t.Fatal(err)
		}
	}
	got := fluxQuery("db/rp", "orders", ms, 1767225600000, 1767225659999)
	want := `from(bucket: "db/rp")
  |> range(start: 2026-01-01T00:00:00Z, stop: 2026-01-01T00:01:00Z)
  |> filter(fn: (r) => r._measurement == "orders")
  |> filter(fn: (r) => r._field == "count" or r._field == "sum" or r._field == "min" or r._field == "max")
  |> filter(fn: (r) => exists r["merchant"] and r["merchant"] == "m\"1\${x}")
  |> filter(fn: (r) => exists r["__time"] and r["__time"] == "%%hg:new%0Aline")
  |> filter(fn: (r) => exists r["page"] and (r["page"] =~ /^(?s:\/cart\/.*)$/ or r["page"] =~ /^%%hg:/))
  |> filter(fn: (r) => exists r["country"] and (r["country"] !~ /^(?s:fr|)$/ or r["country"] =~ /^%%hg:/))
`
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Flux query (-want +got):\n%s", d)
	}
	if got := fluxQuery("b", "m", nil, 1, 1); !strings.Contains(got, "range(start: 1970-01-01T00:00:00.001Z, stop: 1970-01-01T00:00:00.002Z)") {
		t.Errorf("millisecond range: %s", got)
	}
}

func parseFluxCSV(t *testing.T, csv string) ([]tsstore.Cell, error) {
	t.Helper()
	res := api.NewQueryTableResult(io.NopCloser(strings.NewReader(csv)))
	defer res.Close()
	var out []tsstore.Cell
	err := readFlux(res, func(metric string, ls tsstore.Labels, writer string, tm int64, a tsstore.Agg) {
		out = append(out, tsstore.Cell{Metric: metric, Labels: ls, Start: tm, Writer: writer, Agg: a})
	})
	slices.SortFunc(out, func(a, b tsstore.Cell) int {
		if c := a.Labels.Compare(b.Labels); c != 0 {
			return c
		}
		if a.Start != b.Start {
			return int(a.Start - b.Start)
		}
		return strings.Compare(a.Writer, b.Writer)
	})
	return out, err
}

// TestFluxDocumentedExample parses the example of the annotated CSV
// documentation verbatim: its field "mem" is not one of a cell's, so no
// cell comes out, and nothing fails.
func TestFluxDocumentedExample(t *testing.T) {
	csv := "#group,false,false,true,true,false,false,true,true,true,true\r\n" +
		"#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string,string\r\n" +
		"#default,mean,,,,,,,,,\r\n" +
		",result,table,_start,_stop,_time,_value,_field,_measurement,host,region\r\n" +
		",,0,2022-12-31T05:41:24Z,2023-01-31T05:41:24.001Z,2023-01-01T00:52:00Z,15.43,mem,m,A,east\r\n" +
		",,1,2022-12-31T05:41:24Z,2023-01-31T05:41:24.001Z,2023-01-01T00:52:00Z,59.25,mem,m,B,east\r\n" +
		",,2,2022-12-31T05:41:24Z,2023-01-31T05:41:24.001Z,2023-01-01T00:52:00Z,52.62,mem,m,C,east\r\n"
	cells, err := parseFluxCSV(t, csv)
	if err != nil || len(cells) != 0 {
		t.Fatalf("got %+v, %v; want no cells and no error", cells, err)
	}
}

// TestFluxCells parses an answer in the documented format as a 2.x server
// gives it for fluxQuery: one table per series and field, the integer
// count in its own block (its _value is a long), the float fields in
// another; CSV-quoted values, an encoded value, a reserved label name, and
// the points of two writers (the legacy one has no writer tag) at the same
// time, which stay two cells.
func TestFluxCells(t *testing.T) {
	csv := "#group,false,false,true,true,false,false,true,true,true,true,true\r\n" +
		"#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,long,string,string,string,string,string\r\n" +
		"#default,_result,,,,,,,,,,\r\n" +
		",result,table,_start,_stop,_time,_value,_field,_measurement,__time,merchant,__writer__\r\n" +
		",,0,2026-01-01T00:00:00Z,2026-01-01T00:02:00Z,2026-01-01T00:00:00Z,2,count,orders,%%hg:new%0Aline,\"a,b\",\r\n" +
		",,0,2026-01-01T00:00:00Z,2026-01-01T00:02:00Z,2026-01-01T00:01:00.001Z,1,count,orders,%%hg:new%0Aline,\"a,b\",\r\n" +
		",,1,2026-01-01T00:00:00Z,2026-01-01T00:02:00Z,2026-01-01T00:00:00Z,1,count,orders,,m2,w1/2\r\n" +
		",,8,2026-01-01T00:00:00Z,2026-01-01T00:02:00Z,2026-01-01T00:00:00Z,5,count,orders,,m2,\r\n" +
		"\r\n" +
		"#group,false,false,true,true,false,false,true,true,true,true,true\r\n" +
		"#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string,string,string\r\n" +
		"#default,_result,,,,,,,,,,\r\n" +
		",result,table,_start,_stop,_time,_value,_field,_measurement,__time,merchant,__writer__\r\n" +
		",,2,2026-01-01T00:00:00Z,2026-01-01T00:02:00Z,2026-01-01T00:00:00Z,30,sum,orders,%%hg:new%0Aline,\"a,b\",\r\n" +
		",,2,2026-01-01T00:00:00Z,2026-01-01T00:02:00Z,2026-01-01T00:01:00.001Z,-0.5,sum,orders,%%hg:new%0Aline,\"a,b\",\r\n" +
		",,3,2026-01-01T00:00:00Z,2026-01-01T00:02:00Z,2026-01-01T00:00:00Z,10,min,orders,%%hg:new%0Aline,\"a,b\",\r\n" +
		",,3,2026-01-01T00:00:00Z,2026-01-01T00:02:00Z,2026-01-01T00:01:00.001Z,-0.5,min,orders,%%hg:new%0Aline,\"a,b\",\r\n" +
		",,4,2026-01-01T00:00:00Z,2026-01-01T00:02:00Z,2026-01-01T00:00:00Z,20,max,orders,%%hg:new%0Aline,\"a,b\",\r\n" +
		",,4,2026-01-01T00:00:00Z,2026-01-01T00:02:00Z,2026-01-01T00:01:00.001Z,-0.5,max,orders,%%hg:new%0Aline,\"a,b\",\r\n" +
		",,5,2026-01-01T00:00:00Z,2026-01-01T00:02:00Z,2026-01-01T00:00:00Z,1e+21,sum,orders,,m2,w1/2\r\n" +
		",,6,2026-01-01T00:00:00Z,2026-01-01T00:02:00Z,2026-01-01T00:00:00Z,1e+21,min,orders,,m2,w1/2\r\n" +
		",,7,2026-01-01T00:00:00Z,2026-01-01T00:02:00Z,2026-01-01T00:00:00Z,1e+21,max,orders,,m2,w1/2\r\n" +
		",,9,2026-01-01T00:00:00Z,2026-01-01T00:02:00Z,2026-01-01T00:00:00Z,15,sum,orders,,m2,\r\n" +
		",,10,2026-01-01T00:00:00Z,2026-01-01T00:02:00Z,2026-01-01T00:00:00Z,3,min,orders,,m2,\r\n" +
		",,11,2026-01-01T00:00:00Z,2026-01-01T00:02:00Z,2026-01-01T00:00:00Z,3,max,orders,,m2,\r\n"
	cells, err := parseFluxCSV(t, csv)
	if err != nil {
		t.Fatal(err)
	}
	awkward := tsstore.Labels{{Name: "merchant", Value: "a,b"}, {Name: "time", Value: "new\nline"}}
	const base = 1767225600000
	want := []tsstore.Cell{
		{Metric: "orders", Labels: awkward, Start: base, Agg: tsstore.Agg{Count: 2, Sum: 30, Min: 10, Max: 20}},
		{Metric: "orders", Labels: awkward, Start: base + 60001, Agg: tsstore.Agg{Count: 1, Sum: -0.5, Min: -0.5, Max: -0.5}},
		{Metric: "orders", Labels: tsstore.Labels{{Name: "merchant", Value: "m2"}}, Start: base, Agg: tsstore.Agg{Count: 5, Sum: 15, Min: 3, Max: 3}},
		{Metric: "orders", Labels: tsstore.Labels{{Name: "merchant", Value: "m2"}}, Start: base, Writer: "w1/2", Agg: tsstore.Agg{Count: 1, Sum: 1e21, Min: 1e21, Max: 1e21}},
	}
	if d := cmp.Diff(want, cells); d != "" {
		t.Errorf("cells (-want +got):\n%s", d)
	}
}

// TestFluxError: an error table (the documented way a query fails
// mid-answer) is an error, not an empty answer.
func TestFluxError(t *testing.T) {
	csv := "#datatype,string,string\r\n" +
		"#group,true,true\r\n" +
		"#default,,\r\n" +
		",error,reference\r\n" +
		",failed to execute query: bucket not found,897\r\n"
	if _, err := parseFluxCSV(t, csv); err == nil || !strings.Contains(err.Error(), "bucket not found") {
		t.Fatalf("got %v, want the query's error", err)
	}
}
