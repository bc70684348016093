package segment

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"

	"github.com/hourglass-io/hourglass/tsstore"
)

func points(t *testing.T, n int) []tsstore.Point {
	t.Helper()
	var ps []tsstore.Point
	for i := 0; i < n; i++ {
		kv := []string{"merchant", []string{"m1", "m 2", "ü,=\"\\\n"}[i%3]}
		if i%4 == 0 {
			kv = append(kv, "page", "/p")
		}
		var ls tsstore.Labels
		if i%7 != 0 {
			var err error
			if ls, err = tsstore.NewLabels(kv...); err != nil {
				t.Fatal(err)
			}
		}
		ps = append(ps, tsstore.Point{Metric: []string{"views", "orders"}[i%2], Labels: ls, Timestamp: int64(1000 + i/3), Value: float64(i%5) - 2})
	}
	return ps
}

func decodeAll(t *testing.T, b []byte) []tsstore.Point {
	t.Helper()
	r, err := NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []tsstore.Point
	for {
		p, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
}

func TestRoundTripAndDeterminism(t *testing.T) {
	ps := points(t, 5000)
	sorted := Sorted(ps)
	shuffled := Sorted(ps)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	if Digest(sorted) != Digest(Sorted(shuffled)) {
		t.Fatal("digest depends on input order")
	}
	a, err := Prepare(sorted).EncodeBytes("n", Digest(sorted), EncodeOptions{RowGroupRows: 1000})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Prepare(Sorted(shuffled)).EncodeBytes("n", Digest(sorted), EncodeOptions{RowGroupRows: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("same content, different bytes")
	}
	got := decodeAll(t, a)
	if d := cmp.Diff(sorted, got); d != "" {
		t.Fatalf("round trip (-want +got):\n%s", d)
	}
	f, err := parquet.OpenFile(bytes.NewReader(a), int64(len(a)))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := f.Lookup(KeyContent); v != Digest(sorted) {
		t.Errorf("content metadata %q", v)
	}
	if len(f.RowGroups()) != 5 {
		t.Errorf("%d row groups, want 5", len(f.RowGroups()))
	}
	t.Logf("schema: %s; %d bytes for %d points", f.Schema(), len(a), len(ps))
	if Digest(sorted[1:]) == Digest(sorted) {
		t.Error("digest ignores a point")
	}
}

func TestNotASegment(t *testing.T) {
	if _, err := NewReader(bytes.NewReader([]byte("hello")), 5); !errors.Is(err, ErrFormat) {
		t.Errorf("got %v, want ErrFormat", err)
	}
	type other struct {
		Time int64 `parquet:"time"`
	}
	var b bytes.Buffer
	w := parquet.NewGenericWriter[other](&b)
	if _, err := w.Write([]other{{1}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := NewReader(bytes.NewReader(b.Bytes()), int64(b.Len())); !errors.Is(err, ErrFormat) {
		t.Errorf("other schema: got %v, want ErrFormat", err)
	}
}

func TestReadAll(t *testing.T) {
	sorted := Sorted(points(t, 3000))
	b, err := Prepare(sorted).EncodeBytes("n", Digest(sorted), EncodeOptions{RowGroupRows: 700})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadAll(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if Digest(got) != Digest(sorted) {
		t.Error("ReadAll did not return the encoded points")
	}
	if _, err := ReadAll(bytes.NewReader(b[:len(b)/2]), int64(len(b)/2)); !errors.Is(err, ErrFormat) {
		t.Errorf("ReadAll of half a file: got %v, want ErrFormat", err)
	}
}
