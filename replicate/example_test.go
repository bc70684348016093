package replicate_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/hourglass-io/hourglass/replicate"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/promtsdb"
)

// A primary and a standby, both embedded Prometheus TSDBs behind epoch
// fences, replicated at ack level "primary + 1": a write returns once both
// have it, and a read can require that write.
func Example() {
	dir, err := os.MkdirTemp("", "replicate-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	open := func(name string) *replicate.Fenced {
		db, err := promtsdb.Open(filepath.Join(dir, name), nil)
		if err != nil {
			log.Fatal(err)
		}
		f, err := replicate.NewFenced(db, filepath.Join(dir, name+".epoch"))
		if err != nil {
			log.Fatal(err)
		}
		return f
	}
	primary, standby := open("primary"), open("standby")
	defer primary.Close()
	defer standby.Close()

	s, err := replicate.New(primary, []tsstore.Store{standby}, &replicate.Options{
		Dir:   filepath.Join(dir, "replicate"),
		Names: []string{"db1", "db2"},
		Ack:   replicate.AckPrimaryPlus(1),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	ctx := context.Background()
	ls, _ := tsstore.NewLabels("merchant", "m1")
	start := int64(1767225600000) // 2026-01-01T00:00Z
	seq, err := s.WriteSeq(ctx, []tsstore.Cell{
		{Metric: "revenue", Labels: ls, Start: start, Agg: tsstore.Agg{Count: 2, Sum: 30, Min: 10, Max: 20}},
	})
	if err != nil {
		log.Fatal(err)
	}
	res, err := s.Query(replicate.WithMinSeq(ctx, seq), tsstore.Query{
		Metric: "revenue", From: start, To: start + 60_000, Step: s.CellWidth(),
	})
	if err != nil {
		log.Fatal(err)
	}
	b := res.Series[0].Buckets[0]
	fmt.Printf("revenue of %s: count %d, sum %g\n", res.Series[0].Labels, b.Count, b.Sum)
	st := s.Stats()
	fmt.Printf("primary %s at epoch %d, standby epoch %d\n", st.Primary, st.Epoch, standby.Epoch())
	// Output:
	// revenue of {merchant="m1"}: count 2, sum 30
	// primary db1 at epoch 1, standby epoch 1
}
