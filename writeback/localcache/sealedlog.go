package localcache

import (
	"context"
	"fmt"

	"github.com/hourglass-io/hourglass/tsstore"
)

// SealedLog reads the raw points of a sealed generation back from its log
// file, in chunks of at most max points.
func (c *Cache) SealedLog(ctx context.Context, gen uint64, max int, fn func([]tsstore.Point) error) error {
	return c.sealedLog(ctx, gen, max, false, fn)
}

// SealedLogOwned is SealedLog with a new slice for every call of fn, which
// fn may keep (writeback.SealedLogOwner).
func (c *Cache) SealedLogOwned(ctx context.Context, gen uint64, max int, fn func([]tsstore.Point) error) error {
	return c.sealedLog(ctx, gen, max, true, fn)
}

func (c *Cache) sealedLog(ctx context.Context, gen uint64, max int, fresh bool, fn func([]tsstore.Point) error) error {
	g, err := c.sealedLogGen(gen, max)
	if err != nil {
		return err
	}
	left := g.points.Load() // to size the chunks
	var chunk []tsstore.Point
	err = c.readLog(ctx, g, func(d *decoder) error {
		s := &d.raw
		for i := 0; i < s.len(); {
			if chunk == nil {
				chunk = make([]tsstore.Point, 0, chunkCap(max, left))
			}
			k := min(s.len()-i, max-len(chunk))
			for j := i; j < i+k; j++ {
				sl := &d.series[s.series[s.ids[j]]]
				chunk = append(chunk, tsstore.Point{Metric: sl.Metric, Labels: sl.Labels, Timestamp: s.times[j], Value: s.values[j]})
			}
			i += k
			if len(chunk) == max {
				left -= int64(max)
				if err := fn(chunk); err != nil {
					return err
				}
				if fresh {
					chunk = nil
				} else {
					chunk = chunk[:0]
				}
			}
		}
		return nil
	})
	if err != nil || len(chunk) == 0 {
		return err
	}
	return fn(chunk)
}

// chunkCap returns the capacity of a chunk of at most max points when
// left points remain to be read.
func chunkCap(max int, left int64) int {
	if left <= 0 || left >= int64(max) {
		return max
	}
	return int(left)
}

// sealedLogGen returns the sealed generation gen, to be read in chunks of
// at most max points.
func (c *Cache) sealedLogGen(gen uint64, max int) (*generation, error) {
	if max <= 0 {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "localcache: sealed log chunk size %d is not positive", max)
	}
	return c.sealedGen(gen)
}

// readLog decodes the raw points of each record of g's log file and calls
// fn with the decoder after each; it stops at the first error of a record,
// of fn or of ctx.
func (c *Cache) readLog(ctx context.Context, g *generation, fn func(*decoder) error) error {
	d := newDecoder()
	err := readRecords(g.path, func(payload []byte, _ int64) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := d.record(payload, false); err != nil {
			return err
		}
		return fn(d)
	})
	if err != nil {
		return fmt.Errorf("localcache: read sealed log %s: %w", g.path, err)
	}
	return nil
}
