package rediscache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hourglass-io/hourglass/tsstore"
)

// foldLoop folds the pending batches every FoldInterval, or sooner when
// an append finds FoldPoints pending, until Close.
func (c *Cache) foldLoop() {
	defer c.wg.Done()
	t := time.NewTicker(c.opts.FoldInterval)
	defer t.Stop()
	var lastErr time.Time
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		case <-c.kick:
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			select {
			case <-c.stop:
				cancel()
			case <-done:
			}
		}()
		err := c.foldAll(ctx, false)
		close(done)
		cancel()
		if err != nil && !errors.Is(err, context.Canceled) && time.Since(lastErr) > 10*time.Second {
			lastErr = time.Now()
			c.log.Error("rediscache: fold failed; the batches stay pending (reads still see them) and the fold retries", "prefix", c.opts.Prefix, "err", err)
		}
	}
}

// errReplicasBehind marks a fold applied on the primary that too few
// replicas acknowledged.
var errReplicasBehind = errors.New("the fold is on the primary")

func (c *Cache) kickFold() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// maxFoldWait bounds how long an append waits for a lagging fold.
const maxFoldWait = 10 * time.Second

// waitForFold makes an append wait while the fold lags more than four
// times FoldPoints behind (the memtables are memory of this process), at
// most maxFoldWait: then the append fails with tsstore.ErrBackPressure.
func (c *Cache) waitForFold(ctx context.Context) error {
	var deadline time.Time
	for c.unfolded.Load() > 4*int64(c.opts.FoldPoints) {
		if deadline.IsZero() {
			deadline = time.Now().Add(maxFoldWait)
		} else if time.Now().After(deadline) {
			return tsstore.Errorf(tsstore.ErrBackPressure, "rediscache: append: %d points wait to be folded (the fold is failing or too slow)", c.unfolded.Load())
		}
		ch := *c.folded.Load()
		c.kickFold()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		case <-time.After(10 * time.Millisecond):
		}
		if c.isClosed() {
			return tsstore.Errorf(tsstore.ErrClosed, "rediscache: append")
		}
	}
	return nil
}

func (c *Cache) isClosed() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.closed
}

// foldAll folds every generation; force also looks into the pending
// hashes of generations without pending cells here (after Open).
func (c *Cache) foldAll(ctx context.Context, force bool) error {
	c.foldMu.Lock()
	defer c.foldMu.Unlock()
	c.mu.RLock()
	gens := append(slices.Clone(c.sealed), c.open)
	c.mu.RUnlock()
	var first error
	for _, g := range gens {
		if err := c.foldGen(ctx, g, force); err != nil && first == nil {
			first = err
		}
	}
	ch := make(chan struct{})
	close(*c.folded.Swap(&ch))
	return first
}

// foldGen freezes the generation's active memtable (if it holds anything,
// or force) and folds its frozen memtables, oldest first. The caller holds
// foldMu.
func (c *Cache) foldGen(ctx context.Context, g *generation, force bool) error {
	force = force || g.suspect.Swap(false)
	c.mu.Lock()
	if g.committed.Load() {
		c.mu.Unlock()
		return nil
	}
	// A forced fold takes over pending batches into a fresh memtable (a
	// frozen one may have folded some shards already).
	if g.active.points.Load() > 0 || force {
		g.frozen = append(g.frozen, g.active)
		g.active = newMemtable(c.opts.Shards, g.active.points.Load())
	}
	mems := slices.Clone(g.frozen)
	c.mu.Unlock()
	for _, m := range mems {
		m.inflight.Wait()
		// A fold applied on the primary that too few replicas acknowledged
		// does not stop the other shards' folds, which then skip the WAIT:
		// each shard's batches are visible to other readers of the prefix
		// (Registry) only once folded, and stopping at the first such
		// shard, or waiting WaitTimeout for each, would delay the others
		// by a fold interval or a timeout each while a replica is missing.
		// (A fold lost in a failover is done again from the log.)
		var behind error
		for s := range m.shards {
			if err := c.foldShard(ctx, g, m, s, behind != nil); err != nil {
				if force {
					g.suspect.Store(true)
				}
				err = fmt.Errorf("generation %d, shard %d: %w", g.num, s, err)
				if !errors.Is(err, errReplicasBehind) {
					return err
				}
				if behind == nil {
					behind = err
				}
			}
		}
		if behind != nil {
			return behind
		}
		c.mu.Lock()
		if i := slices.Index(g.frozen, m); i >= 0 {
			g.frozen = slices.Delete(g.frozen, i, i+1)
		}
		c.mu.Unlock()
		c.unfolded.Add(-m.points.Load())
	}
	return nil
}

// foldShard folds one shard's part of memtable m into the shard's cells
// hash, as one optimistic transaction on the shard's keys (one Cluster
// slot): WATCH the fold count, read it and the pending hash, take over
// pending batches that no memtable holds (a crash, a failed append), read
// the old values of the cells, merge here, and in MULTI/EXEC write the new
// values, index the new cells, drop the folded batches from the pending
// hash and raise the fold count. Only folds write the cells, the index and
// the fold count, so the WATCH makes the read-merge-write exact; the
// server's work is plain hash commands, no Lua. A fold count already at
// the one this fold sets means that an earlier attempt whose reply was
// lost applied. noWait skips the WAIT of Options.WaitReplicas (an earlier
// shard of the round found the replicas behind).
func (c *Cache) foldShard(ctx context.Context, g *generation, m *memtable, s int, noWait bool) error {
	ms := &m.shards[s]
	ms.mu.Lock()
	done := ms.done
	ms.mu.Unlock()
	if done {
		return nil
	}
	k := &c.keys
	foldsKey, pendKey, cellsKey, epochKey := k.folds(s, g.num), k.pend(s, g.num), k.cells(s, g.num), k.shardEpoch(s)
	var newCells, bytes int64
	var foldTo uint64
	applied := false
	err := c.client.Watch(ctx, func(tx *redis.Tx) error {
		pipe := tx.Pipeline()
		foldsCmd := pipe.Get(ctx, foldsKey)
		pendCmd := pipe.HGetAll(ctx, pendKey)
		epochCmd := pipe.Get(ctx, epochKey)
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return classify("fold: read the fold state", err)
		}
		// The epoch is watched too: a fold never writes after a takeover.
		if ep, _ := strconv.ParseUint(epochCmd.Val(), 10, 64); ep != c.epoch {
			return classify("fold", fmt.Errorf("HGFENCED the shard is at epoch %d, this cache holds epoch %d", ep, c.epoch))
		}
		var srv uint64
		if v, err := foldsCmd.Result(); err == nil {
			srv, _ = strconv.ParseUint(v, 10, 64)
		}
		ms.mu.Lock()
		foldTo = ms.foldTo
		ms.mu.Unlock()
		if foldTo != 0 && srv == foldTo {
			// The batches the lost reply left pending are looked for
			// in the next fold.
			applied = true
			g.suspect.Store(true)
			return nil
		}
		if srv != g.folds[s] {
			c.log.Warn("rediscache: the fold count on the server differs from this process's (a failover lost writes?); refolding what is pending there", "prefix", c.opts.Prefix, "generation", g.num, "shard", s, "server", srv, "here", g.folds[s])
			g.folds[s] = srv
		}
		if err := c.adoptPending(ctx, g, m, s, pendCmd.Val()); err != nil {
			return err
		}

		ms.mu.Lock()
		if len(ms.ids) == 0 {
			ms.done = true
			ms.mu.Unlock()
			return nil
		}
		if ms.foldTo <= g.folds[s] {
			ms.foldTo = g.folds[s] + 1
		}
		foldTo = ms.foldTo
		// The memtable is frozen: only this fold inserts into it, so
		// the fields may be read from its arena without the lock.
		ids := slices.Clone(ms.ids)
		fields := make([]any, len(ms.cells))
		aggs := make([]tsstore.Agg, len(ms.cells))
		for i := range ms.cells {
			fields[i], aggs[i] = ms.field(i), ms.cells[i].agg
		}
		ms.mu.Unlock()

		const chunk = 8192
		rp := tx.Pipeline()
		gets := make([]*redis.Cmd, 0, len(fields)/chunk+1)
		for i := 0; i < len(fields); i += chunk {
			gets = append(gets, rp.Do(ctx, append([]any{"hmget", cellsKey}, fields[i:min(i+chunk, len(fields))]...)...))
		}
		if _, err := rp.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return classify("fold: read the cells", err)
		}
		var newFields []any
		buf := make([]byte, 0, len(fields)*aggLen)
		pairs := make([]any, 0, 2*len(fields))
		for ci, cmd := range gets {
			vals, err := cmd.Slice()
			if err != nil {
				return classify("fold: read the cells", err)
			}
			for j, v := range vals {
				i := ci*chunk + j
				a := aggs[i]
				f := fields[i].([]byte)
				if old, ok := v.(string); ok {
					o, err := decodeAgg(old)
					if err != nil {
						return err
					}
					a.Merge(o)
				} else {
					newFields = append(newFields, 0, f)
					bytes += int64(2*len(f) + 160)
				}
				off := len(buf)
				buf = appendAgg(buf, a)
				pairs = append(pairs, f, buf[off:off+aggLen])
			}
		}
		newCells = int64(len(newFields) / 2)
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			for i := 0; i < len(ids); i += chunk {
				p.HDel(ctx, pendKey, ids[i:min(i+chunk, len(ids))]...)
			}
			for i := 0; i < len(pairs); i += 2 * chunk {
				p.HSet(ctx, cellsKey, pairs[i:min(i+2*chunk, len(pairs))]...)
			}
			for i := 0; i < len(newFields); i += 2 * chunk {
				p.Do(ctx, append([]any{"zadd", k.index(s, g.num)}, newFields[i:min(i+2*chunk, len(newFields))]...)...)
			}
			p.HIncrBy(ctx, k.stat(s, g.num), "cells", newCells)
			p.HIncrBy(ctx, k.stat(s, g.num), "bytes", bytes)
			p.Set(ctx, foldsKey, foldTo, 0)
			return nil
		})
		if errors.Is(err, redis.TxFailedErr) {
			return tsstore.Errorf(tsstore.ErrUnavailable, "rediscache: fold: the fold count changed during the fold (two caches share the prefix?)")
		}
		if err != nil {
			return classify(fmt.Sprintf("fold %d batches", len(ids)), err)
		}
		if c.opts.WaitReplicas > 0 && !noWait {
			n, err := tx.Do(ctx, "wait", c.opts.WaitReplicas, c.opts.WaitTimeout.Milliseconds()).Int()
			if err != nil {
				return classify("fold: WAIT", err)
			}
			if n < c.opts.WaitReplicas {
				// Applied on the primary; the retry finds it applied.
				return tsstore.Errorf(tsstore.ErrUnavailable, "rediscache: fold: only %d of %d replicas acknowledged it within %v: %w", n, c.opts.WaitReplicas, c.opts.WaitTimeout, errReplicasBehind)
			}
		}
		applied = true
		return nil
	}, foldsKey, epochKey)
	if err != nil {
		return err
	}
	if applied {
		c.foldDone(g, ms, s, foldTo, newCells, bytes)
	}
	return nil
}

// foldDone records a successful fold of ms.
func (c *Cache) foldDone(g *generation, ms *memShard, s int, foldTo uint64, newCells, bytes int64) {
	ms.mu.Lock()
	ms.done = true
	delta := newCells - int64(len(ms.cells))
	ms.mu.Unlock()
	g.folds[s] = foldTo
	g.cells.Add(delta)
	c.cells.Add(delta)
	g.bytes.Add(bytes)
	c.bytes.Add(bytes)
}

// adoptPending inserts into m the pending batches of shard s that neither
// a memtable of g nor an append on its way holds: those a crash left, and
// those of appends that failed after reaching the server. pend maps batch
// id to stream entry ID. The caller holds foldMu.
func (c *Cache) adoptPending(ctx context.Context, g *generation, m *memtable, s int, pend map[string]string) error {
	if len(pend) == 0 {
		return nil
	}
	// Appends on their way first: an append inserts into its memtable
	// before it leaves the live set.
	unknown := make(map[string]string, len(pend))
	g.liveMu.Lock()
	for id, sid := range pend {
		if _, ok := g.live[id]; !ok {
			unknown[id] = sid
		}
	}
	g.liveMu.Unlock()
	c.mu.RLock()
	mems := append(slices.Clone(g.frozen), g.active)
	c.mu.RUnlock()
	if !slices.Contains(mems, m) {
		mems = append(mems, m)
	}
	for _, mt := range mems {
		ms := &mt.shards[s]
		ms.mu.Lock()
		for _, id := range ms.ids {
			delete(unknown, id)
		}
		ms.mu.Unlock()
	}
	if len(unknown) == 0 {
		return nil
	}
	ids := make([]string, 0, len(unknown))
	for id := range unknown {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int { return compareStreamIDs(unknown[a], unknown[b]) })
	pipe := c.client.Pipeline()
	cmds := make([]*redis.XMessageSliceCmd, len(ids))
	logKey := c.keys.log(s, g.num)
	for i, id := range ids {
		cmds[i] = pipe.XRange(ctx, logKey, unknown[id], unknown[id])
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return classify("fold: read pending batches from the log", err)
	}
	var pc preparedCells
	var ps []tsstore.Point
	for i, cmd := range cmds {
		es := cmd.Val()
		if len(es) != 1 {
			return fmt.Errorf("rediscache: fold: pending batch %x: entry %s is not in %s", ids[i], unknown[ids[i]], logKey)
		}
		vals := es[0].Values
		entry, _ := vals["p"].(string)
		if entry == "" {
			entry, _ = vals["b"].(string)
		}
		wms, _ := strconv.ParseInt(fmt.Sprint(vals["w"]), 10, 64)
		if wms < 1 {
			return fmt.Errorf("rediscache: fold: entry %s of %s has no cell width", es[0].ID, logKey)
		}
		var err error
		ps, err = decodeLog(ps[:0], []byte(entry))
		if err != nil {
			return fmt.Errorf("rediscache: fold: entry %s of %s: %w", es[0].ID, logKey, err)
		}
		if !c.recovering {
			// A failed append whose batch reached the server: count
			// its raw points now.
			raw, _ := vals["b"].(string)
			if n, err := entryPoints(raw); err == nil {
				g.points.Add(n)
				c.points.Add(n)
			}
		}
		pc.prepare(ps, wms, c.opts.IndexLabel)
		added := m.insert(s, ids[i], &pc)
		m.points.Add(int64(len(ps)))
		c.unfolded.Add(int64(len(ps)))
		g.cells.Add(added)
		c.cells.Add(added)
	}
	c.log.Info("rediscache: folding batches that no append here holds (left by a restart or a failed append)", "prefix", c.opts.Prefix, "generation", g.num, "shard", s, "batches", len(ids))
	return nil
}

// compareStreamIDs orders stream entry IDs "ms-seq".
func compareStreamIDs(a, b string) int {
	am, as := streamID(a)
	bm, bs := streamID(b)
	switch {
	case am != bm:
		if am < bm {
			return -1
		}
		return 1
	case as != bs:
		if as < bs {
			return -1
		}
		return 1
	}
	return 0
}

// Fold folds every pending batch into the cells hashes now, as the
// background fold does every Options.FoldInterval. Nothing requires it:
// reads merge the pending cells, and a flush folds its generation; it
// bounds the work a next Open would redo, for example before a planned
// shutdown.
func (c *Cache) Fold(ctx context.Context) error {
	if c.isClosed() {
		return tsstore.Errorf(tsstore.ErrClosed, "rediscache: fold")
	}
	if err := c.foldAll(ctx, false); err != nil {
		return fmt.Errorf("rediscache: fold: %w", err)
	}
	return nil
}
