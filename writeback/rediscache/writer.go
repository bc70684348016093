package rediscache

import (
	"context"
	"fmt"

	"github.com/hourglass-io/hourglass/writeback"
)

// loadWriter reads the prefix's writer id, or makes one (SET NX, so that
// the first one made stays) when the prefix has none: new, or written by a
// version without writer ids, whose generations before the open one keep
// the legacy writer.
func (c *Cache) loadWriter(ctx context.Context) error {
	rec := writeback.FormatWriterFile(writeback.NewWriterID(), c.open.num)
	made, err := c.client.SetNX(ctx, c.keys.writer(), rec, 0).Result()
	if err != nil {
		return classify("open: make the writer id", err)
	}
	if !made {
		if rec, err = c.client.Get(ctx, c.keys.writer()).Result(); err != nil {
			return classify("open: read the writer id", err)
		}
	}
	c.writer, c.since, err = writeback.ParseWriterFile(rec)
	if err != nil {
		return fmt.Errorf("rediscache: open: %s: %w", c.keys.writer(), err)
	}
	if made && (len(c.sealed) > 0 || c.open.points.Load() > 0) {
		c.log.Info("rediscache: made a writer id for a prefix written without one; older generations keep the legacy writer", "prefix", c.opts.Prefix, "writer", c.writer, "first_generation", c.since)
	}
	return nil
}

// WriterID returns the prefix's writer id and the first generation
// written under it.
func (c *Cache) WriterID() (string, uint64) { return c.writer, c.since }
