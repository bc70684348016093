package rediscache

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/writeback"
)

// The quarantine is the hash {prefix}:quarantine: one field per cell
// identity (quarantineField), the writeback.QuarantinedCell in JSON as
// the value.

var _ writeback.QuarantineCache = (*Cache)(nil)

func quarantineField(id tsstore.CellID) string {
	return id.Series + "\xff" + strconv.FormatInt(id.Start, 10) + "\xff" + id.Writer + "\xff" + strconv.FormatUint(uint64(id.Seq), 10)
}

// Quarantine adds cells to the quarantine hash, followed by WAIT when
// Options.WaitReplicas > 0.
func (c *Cache) Quarantine(ctx context.Context, cells []writeback.QuarantinedCell) error {
	if len(cells) == 0 {
		return nil
	}
	args := make([]any, 0, 2*len(cells))
	for i := range cells {
		v, err := json.Marshal(&cells[i])
		if err != nil {
			return tsstore.Errorf(tsstore.ErrInvalid, "rediscache: quarantine: %w", err)
		}
		args = append(args, quarantineField(cells[i].Cell.ID()), v)
	}
	return c.changeQuarantine(ctx, "quarantine cells", func(pipe redis.Pipeliner) {
		pipe.HSet(ctx, c.keys.quarantine(), args...)
	})
}

// Release deletes the cells' fields from the quarantine hash.
func (c *Cache) Release(ctx context.Context, ids []tsstore.CellID) error {
	if len(ids) == 0 {
		return nil
	}
	fields := make([]string, len(ids))
	for i, id := range ids {
		fields[i] = quarantineField(id)
	}
	return c.changeQuarantine(ctx, "release quarantined cells", func(pipe redis.Pipeliner) {
		pipe.HDel(ctx, c.keys.quarantine(), fields...)
	})
}

// changeQuarantine runs change, then HLEN (and WAIT) in one pipeline.
func (c *Cache) changeQuarantine(ctx context.Context, what string, change func(redis.Pipeliner)) error {
	if c.isClosed() {
		return tsstore.Errorf(tsstore.ErrClosed, "rediscache: %s", what)
	}
	pipe, _, err := c.pipelineFor(ctx, c.keys.quarantine())
	if err != nil {
		return classify(what, err)
	}
	change(pipe)
	n := pipe.HLen(ctx, c.keys.quarantine())
	var wait *redis.IntCmd
	if c.opts.WaitReplicas > 0 {
		wait = c.waitCmd(ctx, pipe)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return classify(what, err)
	}
	c.quarCount.Store(n.Val())
	if wait != nil && int(wait.Val()) < c.opts.WaitReplicas {
		return tsstore.Errorf(tsstore.ErrUnavailable, "rediscache: %s: only %d of %d replicas acknowledged it within %v", what, wait.Val(), c.opts.WaitReplicas, c.opts.WaitTimeout)
	}
	return nil
}

// Quarantined reads the quarantine hash.
func (c *Cache) Quarantined(ctx context.Context) ([]writeback.QuarantinedCell, error) {
	if c.isClosed() {
		return nil, tsstore.Errorf(tsstore.ErrClosed, "rediscache: quarantined")
	}
	m, err := c.client.HGetAll(ctx, c.keys.quarantine()).Result()
	if err != nil {
		return nil, classify("read the quarantine", err)
	}
	out := make([]writeback.QuarantinedCell, 0, len(m))
	for f, v := range m {
		var q writeback.QuarantinedCell
		if err := json.Unmarshal([]byte(v), &q); err != nil {
			return nil, tsstore.Errorf(tsstore.ErrInvalid, "rediscache: corrupt quarantine entry %q in %s: %w", f, c.keys.quarantine(), err)
		}
		out = append(out, q)
	}
	c.quarCount.Store(int64(len(out)))
	return out, nil
}

// QuarantinedCount returns the number of quarantined cells as this
// process last saw it.
func (c *Cache) QuarantinedCount() int { return int(c.quarCount.Load()) }

func (c *Cache) loadQuarantineCount(ctx context.Context) error {
	n, err := c.client.HLen(ctx, c.keys.quarantine()).Result()
	if err != nil {
		return classify("open: count the quarantined cells", err)
	}
	c.quarCount.Store(n)
	return nil
}
