package localcache_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/cachetest"
	"github.com/hourglass-io/hourglass/writeback/localcache"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts localcache.Options
	}{
		{"interval", localcache.Options{}},
		{"always", localcache.Options{Fsync: localcache.FsyncAlways, Shards: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cachetest.Run(t, func(t *testing.T) cachetest.Opener {
				dir := t.TempDir()
				return func(t *testing.T) writeback.Cache {
					opts := tc.opts
					c, err := localcache.Open(dir, &opts)
					if err != nil {
						t.Fatal(err)
					}
					return c
				}
			})
		})
	}
}
