package rediscache

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/redis/go-redis/v9"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/writeback"
)

// Defaults of Options.
const (
	// DefaultPrefix namespaces the keys.
	DefaultPrefix = "hourglass"
	// DefaultShards is the number of hash-tag shards (Cluster slots the
	// cache spreads over).
	DefaultShards = 16
	// DefaultIndexLabel is the label whose values get their own cell hash,
	// so that a query for one value reads only its cells.
	DefaultIndexLabel = "merchant"
	// DefaultWaitTimeout bounds the WAIT of DurabilityReplicated. Keep it
	// below the client's ReadTimeout (go-redis: 3 s by default).
	DefaultWaitTimeout = time.Second
	// MaxEntryBytes bounds the encoded log entry of one batch.
	MaxEntryBytes = 256 << 20
	// DefaultFoldInterval is how often the pending batches are folded
	// into the cells hashes.
	DefaultFoldInterval = time.Second
	// DefaultFoldPoints starts a fold early when that many processed
	// points are pending.
	DefaultFoldPoints = 500_000
)

// Options configures a Cache. A nil *Options means the defaults; every
// zero field means its default.
type Options struct {
	// Prefix namespaces the keys; it must not hold '{' or '}'. Two caches
	// must never share a prefix at the same time. "" means DefaultPrefix.
	Prefix string
	// Shards is the number of hash-tag shards; 0 means DefaultShards. A
	// batch goes to one shard, chosen by its first point's index label
	// value (or series). It must stay the same for a prefix across opens.
	Shards int
	// IndexLabel is the label whose equality matchers are answered by
	// reading one hash per shard and generation; "" means
	// DefaultIndexLabel. It must stay the same for a prefix.
	IndexLabel string
	// Durability is the level of a batch with writeback.DurabilityDefault.
	// Zero means DurabilityReplicated when WaitReplicas > 0, else
	// DurabilityLogged.
	Durability writeback.Durability
	// WaitReplicas is the number of replicas that must acknowledge a batch
	// (WAIT) at DurabilityReplicated, and every Seal and Commit when > 0.
	// 0 makes DurabilityReplicated unavailable.
	WaitReplicas int
	// WaitTimeout bounds each WAIT; 0 means DefaultWaitTimeout.
	WaitTimeout time.Duration
	// FoldInterval is the period of the background fold of pending
	// batches into the cells hashes; 0 means DefaultFoldInterval. Longer
	// periods merge more batches per cell written (less server work per
	// point) and keep more pending cells in this process's memory.
	FoldInterval time.Duration
	// FoldPoints starts a fold when that many processed points are
	// pending; 0 means DefaultFoldPoints. Appends wait while four times as
	// many are pending (the fold lags behind the writes), at most 10 s,
	// then fail with tsstore.ErrBackPressure.
	FoldPoints int
	// Logger receives reports of recovered state; nil means slog.Default().
	Logger *slog.Logger
	// Cluster, when set, makes the cache a member of a cluster of caches
	// in one Redis: it holds a lease on its prefix, renewed in the
	// background, whose epoch fences every write, seal, fold and commit
	// (a cache that lost its lease fails them with tsstore.ErrClosed),
	// registers the prefix so that other members read its cells
	// (Registry) and adopt it when it dies (ClusterOptions.Adopt). nil
	// means no lease: the prefix belongs to this cache by convention.
	Cluster *ClusterOptions
}

// Cache is a writeback.Cache in Redis. Safe for concurrent use. Create
// one with Open. It does not own the client: close the client after the
// cache.
type Cache struct {
	client redis.UniversalClient
	opts   Options
	log    *slog.Logger
	keys   keyspace
	// aofAlways records that the server runs appendonly with appendfsync
	// always (checked at Open), which DurabilitySynced needs.
	aofAlways bool
	idPrefix  [8]byte
	nextID    atomic.Uint64
	// writer and since are the writer id and its first generation, set
	// by Open.
	writer string
	since  uint64
	// quarCount is the size of the quarantine as last seen.
	quarCount atomic.Int64
	// epoch is the prefix's epoch this cache writes under, and lease its
	// cluster state (nil without Options.Cluster); set by Open.
	epoch uint64
	lease *lease

	// mu guards open, sealed, closed and the generations' sealed flags.
	// It is held only to read or swap them, never during I/O.
	mu     sync.RWMutex
	open   *generation
	sealed []*generation
	closed bool

	// ctlMu serialises Seal, Commit, fencing and Close; guards fenced.
	ctlMu  sync.Mutex
	fenced uint64
	// foldMu serialises folds (and Commit with them); guards the
	// generations' folds and recovering.
	foldMu sync.Mutex
	// recovering is set while Open folds what a previous process left
	// pending (whose points the counters already hold).
	recovering bool

	points, cells, bytes atomic.Int64
	// unfolded counts the processed points in memtables.
	unfolded atomic.Int64
	// folded is closed and replaced after every fold round, to wake
	// appends that wait for the fold to catch up.
	folded atomic.Pointer[chan struct{}]

	kick chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup
}

var (
	_ writeback.Cache            = (*Cache)(nil)
	_ writeback.SealedCellLister = (*Cache)(nil)
)

// generation is the local state of one generation.
type generation struct {
	num uint64
	// inflight counts appends that chose this generation and have not
	// returned; Seal waits for them before fencing.
	inflight sync.WaitGroup
	started  atomic.Int64
	// sealed, active and frozen are guarded by Cache.mu. active takes the
	// cells of new appends; frozen are waiting for their fold, oldest
	// first.
	sealed    bool
	active    *memtable
	frozen    []*memtable
	committed atomic.Bool
	// folds is the fold count per shard, as this process knows it;
	// guarded by Cache.foldMu.
	folds []uint64
	// live holds the ids of appends between registering and inserting
	// their cells (a fold must not take such a batch from the pending
	// hash: its append inserts it); guarded by liveMu.
	liveMu sync.Mutex
	live   map[string]struct{}
	// suspect is set when an append failed after it may have reached the
	// server: the next fold looks for its batch in the pending hash.
	suspect atomic.Bool

	points, cells, bytes atomic.Int64
	firstWrite           atomic.Int64 // unix ms; 0 until the first write
}

func newGeneration(num uint64, shards int) *generation {
	return &generation{num: num, active: newMemtable(shards, 0), folds: make([]uint64, shards), live: map[string]struct{}{}}
}

func (g *generation) setLive(id string, on bool) {
	g.liveMu.Lock()
	if on {
		g.live[id] = struct{}{}
	} else {
		delete(g.live, id)
	}
	g.liveMu.Unlock()
}

func (g *generation) noteFirst(ms int64) {
	for {
		old := g.firstWrite.Load()
		if old != 0 && old <= ms {
			return
		}
		if g.firstWrite.CompareAndSwap(old, ms) {
			return
		}
	}
}

// Open opens the cache stored under opts.Prefix in the Redis server(s)
// behind client (a *redis.Client, a Sentinel failover client or a
// *redis.ClusterClient), recovering its generations: the open one, the
// sealed ones waiting to be flushed, and the deletion of committed ones
// that a crash interrupted.
func Open(ctx context.Context, client redis.UniversalClient, opts *Options) (*Cache, error) {
	if client == nil {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "rediscache: Open needs a client")
	}
	c := &Cache{client: client}
	if opts != nil {
		c.opts = *opts
	}
	o := &c.opts
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(o.Prefix, "{}") {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "rediscache: Options.Prefix %q holds '{' or '}' (they delimit hash tags)", o.Prefix)
	}
	if o.Shards == 0 {
		o.Shards = DefaultShards
	}
	if o.Shards < 0 || o.Shards > 16384 {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "rediscache: Options.Shards %d is outside [1, 16384]", o.Shards)
	}
	if o.IndexLabel == "" {
		o.IndexLabel = DefaultIndexLabel
	}
	if o.WaitReplicas < 0 {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "rediscache: Options.WaitReplicas %d is negative", o.WaitReplicas)
	}
	if o.WaitTimeout <= 0 {
		o.WaitTimeout = DefaultWaitTimeout
	}
	if o.FoldInterval <= 0 {
		o.FoldInterval = DefaultFoldInterval
	}
	if o.FoldPoints <= 0 {
		o.FoldPoints = DefaultFoldPoints
	}
	if o.Durability == writeback.DurabilityDefault {
		o.Durability = writeback.DurabilityLogged
		if o.WaitReplicas > 0 {
			o.Durability = writeback.DurabilityReplicated
		}
	}
	if o.Durability < writeback.DurabilityMemory || o.Durability > writeback.DurabilityReplicated {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "rediscache: Options.Durability %d is unknown", int(o.Durability))
	}
	c.log = o.Logger
	if c.log == nil {
		c.log = slog.Default()
	}
	c.keys = newKeyspace(o.Prefix, o.Shards)
	_, _ = rand.Read(c.idPrefix[:])
	if cfg, err := client.ConfigGet(ctx, "append*").Result(); err == nil {
		c.aofAlways = cfg["appendonly"] == "yes" && cfg["appendfsync"] == "always"
	}
	if err := c.checkDurability(o.Durability); err != nil {
		return nil, fmt.Errorf("rediscache: Options.Durability: %w", err)
	}
	ch := make(chan struct{})
	c.folded.Store(&ch)
	if o.Cluster != nil {
		l := &lease{opts: *o.Cluster, owner: newOwner(), adopting: map[string]bool{}, base: time.Now()}
		if l.opts.Name == "" {
			l.opts.Name = DefaultClusterName
		}
		if l.opts.LeaseTTL <= 0 {
			l.opts.LeaseTTL = DefaultLeaseTTL
		}
		if l.opts.LeaseWait == 0 {
			l.opts.LeaseWait = DefaultLeaseWait
		}
		l.ctx, l.cancel = context.WithCancel(context.Background())
		c.lease = l
	}
	if err := c.openState(ctx); err != nil {
		if c.lease != nil {
			c.lease.cancel()
			c.releaseLease()
		}
		return nil, err
	}
	c.kick = make(chan struct{}, 1)
	c.stop = make(chan struct{})
	c.wg.Add(1)
	go c.foldLoop()
	if c.lease != nil {
		c.wg.Add(1)
		go c.leaseLoop()
	}
	return c, nil
}

// openState claims the prefix's epoch and recovers its state.
func (c *Cache) openState(ctx context.Context) error {
	if err := c.claim(ctx); err != nil {
		return err
	}
	if err := c.recover(ctx); err != nil {
		return err
	}
	if err := c.loadWriter(ctx); err != nil {
		return err
	}
	if err := c.loadQuarantineCount(ctx); err != nil {
		return err
	}
	// Batches a crash left pending are folded before the first read.
	c.recovering = true
	err := c.foldAll(ctx, true)
	c.recovering = false
	if err != nil {
		return fmt.Errorf("rediscache: open: fold the pending batches: %w", err)
	}
	return nil
}

// checkDurability fails with ErrInvalid for a level the cache cannot give.
func (c *Cache) checkDurability(d writeback.Durability) error {
	switch d {
	case writeback.DurabilityReplicated:
		if c.opts.WaitReplicas <= 0 {
			return tsstore.Errorf(tsstore.ErrInvalid, "rediscache: durability %s needs Options.WaitReplicas > 0", d)
		}
	case writeback.DurabilitySynced:
		if !c.aofAlways {
			return tsstore.Errorf(tsstore.ErrInvalid, "rediscache: durability %s needs a server with appendonly yes and appendfsync always (checked at Open)", d)
		}
	}
	return nil
}

// classify wraps a Redis error with what was done and its kind.
func classify(what string, err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("rediscache: %s: %w", what, err)
	case strings.Contains(err.Error(), "HGFENCED"):
		return tsstore.Errorf(tsstore.ErrClosed, "rediscache: %s: this cache is fenced: another cache took its prefix over (its lease expired): %w", what, err)
	case strings.Contains(err.Error(), "HGSEALED"):
		return tsstore.Errorf(tsstore.ErrConflict, "rediscache: %s: another cache sealed the generation (two caches share the prefix?): %w", what, err)
	}
	return tsstore.Errorf(tsstore.ErrUnavailable, "rediscache: %s: %w", what, err)
}

// recover loads the generations' state from the server.
func (c *Cache) recover(ctx context.Context) error {
	pipe := c.client.Pipeline()
	pipe.HSetNX(ctx, c.keys.meta(), "open", 1)
	openCmd := pipe.HGet(ctx, c.keys.meta(), "open")
	sealedCmd := pipe.ZRange(ctx, c.keys.sealed(), 0, -1)
	droppingCmd := pipe.SMembers(ctx, c.keys.dropping())
	gensCmds := make([]*redis.StringSliceCmd, c.opts.Shards)
	for s := range gensCmds {
		gensCmds[s] = pipe.ZRange(ctx, c.keys.gens(s), 0, -1)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return classify("open: read the generations", err)
	}
	metaOpen, err := strconv.ParseUint(openCmd.Val(), 10, 64)
	if err != nil {
		return fmt.Errorf("rediscache: open: corrupt open generation %q in %s", openCmd.Val(), c.keys.meta())
	}
	parse := func(ss []string, what string) ([]uint64, error) {
		out := make([]uint64, 0, len(ss))
		for _, s := range ss {
			g, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("rediscache: open: corrupt generation %q in %s", s, what)
			}
			out = append(out, g)
		}
		return out, nil
	}
	sealedMeta, err := parse(sealedCmd.Val(), c.keys.sealed())
	if err != nil {
		return err
	}
	dropping, err := parse(droppingCmd.Val(), c.keys.dropping())
	if err != nil {
		return err
	}
	for _, g := range dropping {
		if err := c.dropData(ctx, g); err != nil {
			return err
		}
	}
	data := map[uint64]bool{}
	for s, cmd := range gensCmds {
		gs, err := parse(cmd.Val(), c.keys.gens(s))
		if err != nil {
			return err
		}
		for _, g := range gs {
			if !slices.Contains(dropping, g) {
				data[g] = true
			}
		}
	}
	openNum := metaOpen
	for g := range data {
		openNum = max(openNum, g)
	}
	if slices.Contains(sealedMeta, openNum) {
		openNum = slices.Max(sealedMeta) + 1
	}
	var sealed []uint64
	known := map[uint64]bool{}
	for _, g := range sealedMeta {
		known[g] = true
		sealed = append(sealed, g)
	}
	for g := range data {
		if g < openNum && !known[g] {
			// Only a lost meta write (an asynchronous failover) leaves
			// data in a generation the meta keys do not list; flushing
			// it is safe, dropping it would lose points.
			c.log.Warn("rediscache: found data in a generation the meta keys do not list; treating it as sealed", "prefix", c.opts.Prefix, "generation", g)
			sealed = append(sealed, g)
		}
	}
	slices.Sort(sealed)
	pipe = c.client.Pipeline()
	for _, g := range sealed {
		if !known[g] {
			sealScript.Run(ctx, pipe, []string{c.keys.meta(), c.keys.sealed(), c.keys.epoch()}, g, c.epoch)
		}
	}
	if openNum != metaOpen {
		pipe.HSet(ctx, c.keys.meta(), "open", openNum)
	}
	if len(sealed) > 0 {
		for s := 0; s < c.opts.Shards; s++ {
			fenceScript.Run(ctx, pipe, []string{c.keys.fence(s), c.keys.shardEpoch(s)}, sealed[len(sealed)-1], c.epoch)
		}
	}
	if err := c.execScripts(ctx, pipe, "open: repair the meta keys and fences"); err != nil {
		return err
	}
	if len(sealed) > 0 {
		c.fenced = sealed[len(sealed)-1]
	}
	gens := make([]*generation, 0, len(sealed)+1)
	for _, g := range sealed {
		gen := newGeneration(g, c.opts.Shards)
		gen.sealed = true
		gens = append(gens, gen)
	}
	open := newGeneration(openNum, c.opts.Shards)
	gens = append(gens, open)
	if err := c.loadStats(ctx, gens); err != nil {
		return err
	}
	c.open = open
	c.sealed = gens[:len(gens)-1]
	return nil
}

// execScripts runs pipe, loading the scripts and running it again when the
// server had lost them (NOSCRIPT: a restart, a failover, SCRIPT FLUSH). Only
// for pipelines of idempotent commands.
func (c *Cache) execScripts(ctx context.Context, pipe redis.Pipeliner, what string) error {
	cmds := pipe.Cmds()
	if len(cmds) == 0 {
		return nil
	}
	_, err := pipe.Exec(ctx)
	if err != nil && isNoScript(cmds) {
		if err = c.loadScripts(ctx, c.client); err == nil {
			again := c.client.Pipeline()
			for _, cmd := range cmds {
				_ = again.Process(ctx, cmd)
			}
			_, err = again.Exec(ctx)
		}
	}
	if err != nil {
		return classify(what, err)
	}
	return nil
}

func isNoScript(cmds []redis.Cmder) bool {
	for _, cmd := range cmds {
		if err := cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			return true
		}
	}
	return false
}

func (c *Cache) loadScripts(ctx context.Context, s redis.Scripter) error {
	for _, sc := range []*redis.Script{appendScript, cellsScript, sealScript, fenceScript, commitScript, claimScript, raiseScript, renewScript} {
		if err := sc.Load(ctx, s).Err(); err != nil {
			return err
		}
	}
	return nil
}

// loadStats reads the counters of gens from every shard.
func (c *Cache) loadStats(ctx context.Context, gens []*generation) error {
	pipe := c.client.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, 0, len(gens)*c.opts.Shards)
	folds := make([]*redis.StringCmd, 0, len(gens)*c.opts.Shards)
	for _, g := range gens {
		for s := 0; s < c.opts.Shards; s++ {
			cmds = append(cmds, pipe.HGetAll(ctx, c.keys.stat(s, g.num)))
			folds = append(folds, pipe.Get(ctx, c.keys.folds(s, g.num)))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return classify("open: read the counters", err)
	}
	for i, g := range gens {
		for s := 0; s < c.opts.Shards; s++ {
			m := cmds[i*c.opts.Shards+s].Val()
			num := func(k string) int64 { v, _ := strconv.ParseInt(m[k], 10, 64); return v }
			g.folds[s], _ = strconv.ParseUint(folds[i*c.opts.Shards+s].Val(), 10, 64)
			g.points.Add(num("points"))
			g.cells.Add(num("cells"))
			g.bytes.Add(num("bytes"))
			if f := num("first"); f > 0 {
				g.noteFirst(f)
			}
		}
		c.points.Add(g.points.Load())
		c.cells.Add(g.cells.Load())
		c.bytes.Add(g.bytes.Load())
	}
	return nil
}

// appender builds one batch's log entries and cells. It keeps its buffers
// between batches. Not safe for concurrent use.
type appender struct {
	enc, penc logEncoder
	cells     preparedCells
	args      []any
	keys      []string
}

var appenderPool = sync.Pool{New: func() any { return &appender{} }}

func mod(a, b int64) int64 {
	r := a % b
	if r < 0 {
		r += b
	}
	return r
}

// shardOf picks the shard of a batch: by its first point's index label
// value, so that one merchant's batches (and cells) stay in one shard, or
// by the point's series when it has no such label.
func (c *Cache) shardOf(b *writeback.Batch) int {
	ps := b.Processed
	if len(ps) == 0 {
		ps = b.Raw
	}
	p := &ps[0]
	var h uint64
	if v := p.Labels.Get(c.opts.IndexLabel); v != "" {
		h = xxhash.Sum64String(v)
	} else {
		h = xxhash.Sum64String(p.Metric) ^ p.Labels.Hash()
	}
	return int(h % uint64(c.opts.Shards))
}

// Append logs the batch with one Lua script call on the batch's shard
// (followed by WAIT in the same pipeline at DurabilityReplicated) and
// inserts its cells into the open generation's memtable, from which the
// background fold merges them into the shard's cells hash.
func (c *Cache) Append(ctx context.Context, b *writeback.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dur := b.Durability
	if dur == writeback.DurabilityDefault {
		dur = c.opts.Durability
	}
	if err := c.checkDurability(dur); err != nil {
		return err
	}
	if len(b.Raw) == 0 {
		return nil
	}
	wms := b.CellWidth.Milliseconds()
	if wms < 1 {
		return tsstore.Errorf(tsstore.ErrInvalid, "rediscache: batch cell width %v is below 1ms", b.CellWidth)
	}
	if err := c.waitForFold(ctx); err != nil {
		return err
	}
	a := appenderPool.Get().(*appender)
	defer appenderPool.Put(a)
	entry := a.enc.encode(b.Raw)
	var pentry []byte
	if !b.SameSlices() {
		pentry = a.penc.encode(b.Processed)
	}
	if n := len(entry) + len(pentry); n > MaxEntryBytes {
		return tsstore.Errorf(tsstore.ErrInvalid, "rediscache: batch of %d points encodes to %d bytes, more than %d", len(b.Raw), n, MaxEntryBytes)
	}
	a.cells.prepare(b.Processed, wms, c.opts.IndexLabel)
	shard := c.shardOf(b)
	var idb [16]byte
	copy(idb[:8], c.idPrefix[:])
	binary.LittleEndian.PutUint64(idb[8:], c.nextID.Add(1))
	id := string(idb[:])
	now := time.Now().UnixMilli()
	bytes := int64(len(entry)+len(pentry)) + 96

	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return tsstore.Errorf(tsstore.ErrClosed, "rediscache: append")
	}
	g := c.open
	m := g.active
	g.inflight.Add(1)
	m.inflight.Add(1)
	g.started.Add(1)
	c.mu.RUnlock()
	defer g.inflight.Done()
	g.setLive(id, true)

	k := &c.keys
	a.keys = append(a.keys[:0], k.fence(shard), k.ids(shard, g.num), k.stat(shard, g.num), k.log(shard, g.num), k.pend(shard, g.num), k.gens(shard), k.shardEpoch(shard))
	a.args = append(a.args[:0], g.num, id, now, len(b.Raw), bytes, wms, entry, pentry, c.epoch)

	var waitErr, err error
	if dur == writeback.DurabilityReplicated {
		waitErr, err = c.appendReplicated(ctx, a.keys, a.args)
	} else if err = appendScript.Run(ctx, c.client, a.keys, a.args...).Err(); err != nil {
		err = classify(fmt.Sprintf("append %d points to generation %d", len(b.Raw), g.num), err)
	}
	if err != nil {
		// The batch may be on the server all the same (a reply lost to a
		// broken connection): the next fold looks for it.
		g.suspect.Store(true)
		g.setLive(id, false)
		m.inflight.Done()
		return err
	}
	added := m.insert(shard, id, &a.cells)
	g.setLive(id, false)
	np := m.points.Add(int64(len(b.Processed)))
	c.unfolded.Add(int64(len(b.Processed)))
	m.inflight.Done()

	n := int64(len(b.Raw))
	g.points.Add(n)
	g.cells.Add(added)
	g.bytes.Add(bytes)
	g.noteFirst(now)
	c.points.Add(n)
	c.cells.Add(added)
	c.bytes.Add(bytes)
	if np >= int64(c.opts.FoldPoints) {
		c.kickFold()
	}
	return waitErr
}

// pipelineFor returns a pipeline on the connection that serves key: WAIT
// counts the replicas of the connection's own writes, so it must follow
// them on the same node (a Cluster pipeline would send a keyless WAIT to
// any node).
func (c *Cache) pipelineFor(ctx context.Context, key string) (redis.Pipeliner, redis.Scripter, error) {
	if cc, ok := c.client.(*redis.ClusterClient); ok {
		node, err := cc.MasterForKey(ctx, key)
		if err != nil {
			return nil, nil, err
		}
		return node.Pipeline(), node, nil
	}
	return c.client.Pipeline(), c.client, nil
}

// appendReplicated runs the script and WAIT in one pipeline. waitErr
// reports too few replicas; err a failure of the script (nothing applied,
// or unknown when the connection broke).
func (c *Cache) appendReplicated(ctx context.Context, keys []string, args []any) (waitErr, err error) {
	for attempt := 0; ; attempt++ {
		pipe, node, err := c.pipelineFor(ctx, keys[0])
		if err != nil {
			return nil, classify("append: find the shard's node", err)
		}
		run := appendScript.EvalSha(ctx, pipe, keys, args...)
		wait := c.waitCmd(ctx, pipe)
		_, _ = pipe.Exec(ctx)
		if err := run.Err(); err != nil {
			if attempt == 0 && redis.HasErrorPrefix(err, "NOSCRIPT") {
				if lerr := appendScript.Load(ctx, node).Err(); lerr == nil {
					continue
				}
			}
			return nil, classify(fmt.Sprintf("append to generation %v", args[0]), err)
		}
		n, err := wait.Result()
		if err != nil {
			return classify("append: the batch is on the primary, but WAIT failed", err), nil
		}
		if int(n) < c.opts.WaitReplicas {
			return tsstore.Errorf(tsstore.ErrUnavailable, "rediscache: append: the batch is on the primary, but only %d of %d replicas acknowledged it within %v", n, c.opts.WaitReplicas, c.opts.WaitTimeout), nil
		}
		return nil, nil
	}
}

// waitCmd queues WAIT on pipe. (Pipeliner has no Wait method; the
// pipeline's read deadline is the client's ReadTimeout.)
func (c *Cache) waitCmd(ctx context.Context, pipe redis.Pipeliner) *redis.IntCmd {
	cmd := redis.NewIntCmd(ctx, "wait", c.opts.WaitReplicas, c.opts.WaitTimeout.Milliseconds())
	_ = pipe.Process(ctx, cmd)
	return cmd
}

// runScript runs one script that changes the cache's state (Seal,
// Commit, a fold), followed by WAIT when Options.WaitReplicas > 0.
func (c *Cache) runScript(ctx context.Context, sc *redis.Script, keys []string, args []any, what string) error {
	if c.opts.WaitReplicas == 0 {
		if err := sc.Run(ctx, c.client, keys, args...).Err(); err != nil {
			return classify(what, err)
		}
		return nil
	}
	for attempt := 0; ; attempt++ {
		pipe, node, err := c.pipelineFor(ctx, keys[0])
		if err != nil {
			return classify(what, err)
		}
		run := sc.EvalSha(ctx, pipe, keys, args...)
		wait := c.waitCmd(ctx, pipe)
		_, _ = pipe.Exec(ctx)
		if err := run.Err(); err != nil {
			if attempt == 0 && redis.HasErrorPrefix(err, "NOSCRIPT") {
				if lerr := sc.Load(ctx, node).Err(); lerr == nil {
					continue
				}
			}
			return classify(what, err)
		}
		n, err := wait.Result()
		if err != nil {
			return classify(what+": WAIT", err)
		}
		if int(n) < c.opts.WaitReplicas {
			return tsstore.Errorf(tsstore.ErrUnavailable, "rediscache: %s: only %d of %d replicas acknowledged it within %v", what, n, c.opts.WaitReplicas, c.opts.WaitTimeout)
		}
		return nil
	}
}

// Seal records the open generation as sealed in the meta keys, switches
// new appends to the next one, waits for the appends already on their way
// to the sealed one, and fences it on every shard.
func (c *Cache) Seal(ctx context.Context) (uint64, bool, error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	c.ctlMu.Lock()
	defer c.ctlMu.Unlock()
	c.mu.RLock()
	g, closed := c.open, c.closed
	c.mu.RUnlock()
	if closed {
		return 0, false, tsstore.Errorf(tsstore.ErrClosed, "rediscache: seal")
	}
	if g.started.Load() == 0 && g.points.Load() == 0 {
		return 0, false, nil
	}
	if err := c.runScript(ctx, sealScript, []string{c.keys.meta(), c.keys.sealed(), c.keys.epoch()}, []any{g.num, c.epoch}, fmt.Sprintf("seal generation %d", g.num)); err != nil {
		return 0, false, err
	}
	c.mu.Lock()
	g.sealed = true
	c.sealed = append(c.sealed, g)
	c.open = newGeneration(g.num+1, c.opts.Shards)
	c.mu.Unlock()
	g.inflight.Wait()
	if err := c.fence(ctx, g.num); err != nil {
		// The generation is sealed; SealedCells and SealedLog fence it
		// before reading.
		return 0, false, fmt.Errorf("%w (generation %d is sealed; the flush fences it again)", err, g.num)
	}
	return g.num, true, nil
}

// fence raises every shard's fence to gen; the caller holds ctlMu.
func (c *Cache) fence(ctx context.Context, gen uint64) error {
	if c.fenced >= gen {
		return nil
	}
	pipe := c.client.Pipeline()
	for s := 0; s < c.opts.Shards; s++ {
		fenceScript.Run(ctx, pipe, []string{c.keys.fence(s), c.keys.shardEpoch(s)}, gen, c.epoch)
	}
	if err := c.execScripts(ctx, pipe, fmt.Sprintf("fence generation %d", gen)); err != nil {
		return err
	}
	c.fenced = gen
	return nil
}

// sealedGen returns the sealed generation gen, fenced.
func (c *Cache) sealedGen(ctx context.Context, gen uint64) (*generation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.RLock()
	closed := c.closed
	i := slices.IndexFunc(c.sealed, func(g *generation) bool { return g.num == gen })
	var g *generation
	if i >= 0 {
		g = c.sealed[i]
	}
	c.mu.RUnlock()
	if closed {
		return nil, tsstore.Errorf(tsstore.ErrClosed, "rediscache")
	}
	if g == nil {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "rediscache: generation %d is not sealed and uncommitted", gen)
	}
	c.ctlMu.Lock()
	defer c.ctlMu.Unlock()
	if err := c.fence(ctx, gen); err != nil {
		return nil, err
	}
	return g, nil
}

// Sealed lists the sealed generations, oldest first. Cells counts the
// cells per shard: a cell written by batches that went to different shards
// counts once per shard.
func (c *Cache) Sealed(ctx context.Context) ([]writeback.Generation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return nil, tsstore.Errorf(tsstore.ErrClosed, "rediscache: sealed")
	}
	out := make([]writeback.Generation, 0, len(c.sealed))
	for _, g := range c.sealed {
		d := writeback.Generation{Gen: g.num, Points: g.points.Load(), Cells: g.cells.Load()}
		if t := g.firstWrite.Load(); t != 0 {
			d.FirstWrite = time.UnixMilli(t)
		}
		out = append(out, d)
	}
	return out, nil
}

// Commit marks a sealed generation as dropped in the meta keys, forgets
// it, and deletes its keys. A deletion cut short is finished by the next
// Commit or Open.
func (c *Cache) Commit(ctx context.Context, gen uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.ctlMu.Lock()
	defer c.ctlMu.Unlock()
	c.foldMu.Lock()
	defer c.foldMu.Unlock()
	c.mu.RLock()
	closed := c.closed
	i := slices.IndexFunc(c.sealed, func(g *generation) bool { return g.num == gen })
	c.mu.RUnlock()
	if closed {
		return tsstore.Errorf(tsstore.ErrClosed, "rediscache: commit")
	}
	if i < 0 {
		return nil
	}
	if err := c.runScript(ctx, commitScript, []string{c.keys.sealed(), c.keys.dropping(), c.keys.epoch()}, []any{gen, c.epoch}, fmt.Sprintf("commit generation %d", gen)); err != nil {
		return err
	}
	c.mu.Lock()
	i = slices.IndexFunc(c.sealed, func(g *generation) bool { return g.num == gen })
	g := c.sealed[i]
	c.sealed = slices.Delete(c.sealed, i, i+1)
	g.committed.Store(true)
	mems := append(g.frozen, g.active)
	g.frozen, g.active = nil, nil
	c.mu.Unlock()
	for _, m := range mems {
		c.unfolded.Add(-m.points.Load())
	}
	c.points.Add(-g.points.Load())
	c.cells.Add(-g.cells.Load())
	c.bytes.Add(-g.bytes.Load())
	return c.dropPending(ctx)
}

// dropPending deletes the keys of every generation in the dropping set.
func (c *Cache) dropPending(ctx context.Context) error {
	ids, err := c.client.SMembers(ctx, c.keys.dropping()).Result()
	if err != nil {
		return classify("list committed generations", err)
	}
	for _, s := range ids {
		g, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			continue
		}
		if err := c.dropData(ctx, g); err != nil {
			return err
		}
	}
	return nil
}

// dropData deletes the keys of a committed generation (UNLINK: the
// server frees them in the background), then removes it from the
// dropping set. It is idempotent.
func (c *Cache) dropData(ctx context.Context, gen uint64) error {
	pipe := c.client.Pipeline()
	for s := 0; s < c.opts.Shards; s++ {
		pipe.Unlink(ctx, c.keys.genKeys(s, gen)...)
		pipe.ZRem(ctx, c.keys.gens(s), gen)
	}
	pipe.SRem(ctx, c.keys.dropping(), gen)
	if _, err := pipe.Exec(ctx); err != nil {
		return classify(fmt.Sprintf("delete committed generation %d", gen), err)
	}
	return nil
}

// Stats returns the cache's totals from counters kept in memory: they
// start from the per-generation counters the script maintains in Redis
// (read at Open) and follow each append's reply. No I/O.
func (c *Cache) Stats() writeback.CacheStats {
	s := writeback.CacheStats{Points: c.points.Load(), Cells: c.cells.Load(), Bytes: c.bytes.Load()}
	c.mu.RLock()
	defer c.mu.RUnlock()
	s.Sealed = len(c.sealed)
	for _, g := range c.sealed {
		if t := g.firstWrite.Load(); t != 0 {
			s.OldestWrite = time.UnixMilli(t)
			return s
		}
	}
	if c.open != nil {
		if t := c.open.firstWrite.Load(); t != 0 {
			s.OldestWrite = time.UnixMilli(t)
		}
	}
	return s
}

// Close waits for the appends in flight and stops the cache. The data
// stays in Redis for the next Open; the client stays open.
func (c *Cache) Close() error {
	c.ctlMu.Lock()
	defer c.ctlMu.Unlock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	open := c.open
	c.mu.Unlock()
	open.inflight.Wait()
	if c.lease != nil {
		c.lease.cancel()
	}
	close(c.stop)
	c.wg.Wait()
	if c.lease != nil {
		c.releaseLease()
	}
	return nil
}
