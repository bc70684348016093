package dirarchive_test

import (
	"testing"

	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/tsstore/archive/archivetest"
	"github.com/hourglass-io/hourglass/tsstore/archive/dirarchive"
)

func TestConformance(t *testing.T) {
	archivetest.Run(t, func(t *testing.T) archive.Archive { return open(t, t.TempDir(), nil) })
}

func open(t testing.TB, dir string, opts *dirarchive.Options) *dirarchive.Archive {
	t.Helper()
	a, err := dirarchive.Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}
