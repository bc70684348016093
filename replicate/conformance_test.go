package replicate_test

import (
	"testing"

	"github.com/hourglass-io/hourglass/replicate"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/storetest"
)

func conformance(t *testing.T, open backend, ack replicate.Ack, standbys int) {
	storetest.Run(t, func(t *testing.T) tsstore.Store {
		p := newReplica(t, open, "p")
		var ss []tsstore.Store
		for i := range standbys {
			ss = append(ss, newReplica(t, open, "s"+string(rune('0'+i))))
		}
		s, err := replicate.New(p, ss, &replicate.Options{Dir: t.TempDir(), Ack: ack, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func TestConformanceMemstore(t *testing.T) {
	t.Run("ack=primary", func(t *testing.T) { conformance(t, memBackend, replicate.AckPrimary, 2) })
	t.Run("ack=all", func(t *testing.T) { conformance(t, memBackend, replicate.AckAll, 1) })
}

func TestConformancePromtsdb(t *testing.T) {
	conformance(t, promBackend, replicate.AckPrimaryPlus(1), 1)
}
