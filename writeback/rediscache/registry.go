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
	"github.com/hourglass-io/hourglass/writeback"
)

// Registry reads the cells of the other members of a cluster of caches in
// one Redis (ClusterOptions): every registered prefix but its own, with or
// without a live lease (a dead member's cells stay readable until the
// member that adopts it has flushed them and deregistered it). It is a
// writeback.Peers: set it as the engine's Options.Peers. Safe for
// concurrent use.
//
// It reads what the members folded into their cells hashes: another
// member's acknowledged batch is visible once that member folded it, at
// most its FoldInterval (default 1 s) plus the time of one fold after the
// acknowledgement; a dead member's batches once the adopting member opened
// its prefix (within the lease TTL plus one check). A member that cannot
// be read (Redis errors) is missing from the answer.
type Registry struct {
	client redis.UniversalClient
	opts   RegistryOptions
}

// RegistryOptions configures a Registry. A nil *RegistryOptions means the
// defaults; every zero field means its default.
type RegistryOptions struct {
	// Name is the cluster's name (ClusterOptions.Name); "" means
	// DefaultClusterName.
	Name string
	// Self is the prefix of the reading member, which is not read (its
	// engine reads its own cache); "" reads every prefix.
	Self string
	// CellWidth is the store's cell width, which the members' engines
	// use; 0 means tsstore.DefaultCellWidth.
	CellWidth time.Duration
}

var _ writeback.Peers = (*Registry)(nil)

// NewRegistry returns a Registry of the cluster in client's Redis. It does
// not own the client.
func NewRegistry(client redis.UniversalClient, opts *RegistryOptions) *Registry {
	r := &Registry{client: client}
	if opts != nil {
		r.opts = *opts
	}
	if r.opts.Name == "" {
		r.opts.Name = DefaultClusterName
	}
	if r.opts.CellWidth <= 0 {
		r.opts.CellWidth = tsstore.DefaultCellWidth
	}
	return r
}

// Registry returns the Registry of the cache's cluster, without its own
// prefix; nil without Options.Cluster.
func (c *Cache) Registry(cellWidth time.Duration) *Registry {
	if c.lease == nil {
		return nil
	}
	return NewRegistry(c.client, &RegistryOptions{Name: c.lease.opts.Name, Self: c.opts.Prefix, CellWidth: cellWidth})
}

// Members returns the registered prefixes, sorted.
func (r *Registry) Members(ctx context.Context) ([]string, error) {
	m, err := r.client.HKeys(ctx, membersKey(r.opts.Name)).Result()
	if err != nil {
		return nil, classify("read the registry", err)
	}
	slices.Sort(m)
	return m, nil
}

// PeerCells returns the selected cells that the other registered prefixes
// hold, each with the store identity its engine gives it. A prefix that
// could not be read is missing.
func (r *Registry) PeerCells(ctx context.Context, sel tsstore.Selector) ([]tsstore.Cell, []string, error) {
	if err := sel.Validate(); err != nil {
		return nil, nil, fmt.Errorf("rediscache: registry: %w", err)
	}
	members, err := r.client.HGetAll(ctx, membersKey(r.opts.Name)).Result()
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, []string{"registry " + r.opts.Name}, nil
	}
	prefixes := make([]string, 0, len(members))
	for p := range members {
		if p != r.opts.Self {
			prefixes = append(prefixes, p)
		}
	}
	slices.Sort(prefixes)
	var out []tsstore.Cell
	var missing []string
	for _, p := range prefixes {
		shards, idx, err := parseMember(members[p])
		if err == nil {
			out, err = r.prefixCells(ctx, out, p, shards, idx, &sel)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			missing = append(missing, p)
		}
	}
	return out, missing, nil
}

// prefixState is what a read of another prefix needs of its meta keys.
type prefixState struct {
	open    uint64
	sealed  map[uint64]bool
	writer  string
	since   uint64
	dropped map[uint64]bool
}

// readState reads the meta keys of prefix k and, with shards, which
// generations hold data.
func (r *Registry) readState(ctx context.Context, k *keyspace, shards int) (prefixState, []uint64, error) {
	st := prefixState{sealed: map[uint64]bool{}, dropped: map[uint64]bool{}}
	pipe := r.client.Pipeline()
	openCmd := pipe.HGet(ctx, k.meta(), "open")
	sealedCmd := pipe.ZRange(ctx, k.sealed(), 0, -1)
	droppingCmd := pipe.SMembers(ctx, k.dropping())
	writerCmd := pipe.Get(ctx, k.writer())
	gensCmds := make([]*redis.StringSliceCmd, shards)
	for s := range gensCmds {
		gensCmds[s] = pipe.ZRange(ctx, k.gens(s), 0, -1)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return st, nil, err
	}
	st.open, _ = strconv.ParseUint(openCmd.Val(), 10, 64)
	for _, v := range sealedCmd.Val() {
		g, _ := strconv.ParseUint(v, 10, 64)
		st.sealed[g] = true
	}
	for _, v := range droppingCmd.Val() {
		g, _ := strconv.ParseUint(v, 10, 64)
		st.dropped[g] = true
	}
	if w := writerCmd.Val(); w != "" {
		var err error
		if st.writer, st.since, err = writeback.ParseWriterFile(w); err != nil {
			return st, nil, err
		}
	}
	set := map[uint64]bool{}
	var gens []uint64
	for _, cmd := range gensCmds {
		for _, v := range cmd.Val() {
			g, err := strconv.ParseUint(v, 10, 64)
			if err != nil || set[g] || !st.live(g) {
				continue
			}
			set[g] = true
			gens = append(gens, g)
		}
	}
	slices.Sort(gens)
	return st, gens, nil
}

// live reports whether generation g is uncommitted in the state.
func (st *prefixState) live(g uint64) bool {
	return !st.dropped[g] && (st.sealed[g] || g >= st.open)
}

// prefixCells appends the selected cells of prefix p to out: per shard and
// generation one read script (as Cache.Cells, without the owner's
// memtables), merged across shards; then the meta keys are read again and
// the cells of generations committed meanwhile are left out (their keys
// may have been deleted in the middle of the read, and the store holds
// them all).
func (r *Registry) prefixCells(ctx context.Context, out []tsstore.Cell, p string, shards int, idx string, sel *tsstore.Selector) ([]tsstore.Cell, error) {
	k := newKeyspace(p, shards)
	st, gens, err := r.readState(ctx, &k, shards)
	if err != nil || len(gens) == 0 {
		return out, err
	}
	rg := selectRange(sel, idx)
	pipe := r.client.Pipeline()
	cmds := make([]*redis.Cmd, 0, len(gens)*shards)
	for _, g := range gens {
		for s := range shards {
			cmds = append(cmds, cellsScript.Run(ctx, pipe, []string{k.index(s, g), k.cells(s, g), k.folds(s, g)}, rg.lo, rg.hi))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return out, err
	}
	merged := map[cellKey]*tsstore.Agg{}
	var order []cellKey
	for i, cmd := range cmds {
		g := gens[i/shards]
		vals, err := cmd.StringSlice()
		if err != nil {
			return out, err
		}
		for j := 1; j+1 < len(vals); j += 2 {
			a, err := decodeAgg(vals[j+1])
			if err != nil {
				return out, err
			}
			ck := cellKey{gen: g, field: vals[j]}
			if m := merged[ck]; m != nil {
				m.Merge(a)
				continue
			}
			merged[ck] = &a
			order = append(order, ck)
		}
	}
	after, _, err := r.readState(ctx, &k, 0)
	if err != nil {
		return out, err
	}
	width := r.opts.CellWidth
	for _, ck := range order {
		if !after.live(ck.gen) {
			continue
		}
		f, err := parseField(ck.field)
		if err != nil {
			return out, err
		}
		cell, ok, err := selectedCell(sel, idx, f, *merged[ck])
		if err != nil {
			return out, err
		}
		if ok {
			cell.Writer, cell.Seq = writeback.CellIdentity(st.writer, st.since, width, ck.gen)
			out = append(out, cell)
		}
	}
	return out, nil
}
