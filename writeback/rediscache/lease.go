package rediscache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/writeback"
)

// Defaults of ClusterOptions.
const (
	// DefaultClusterName names the registry of a cluster's prefixes.
	DefaultClusterName = "hourglass"
	// DefaultLeaseTTL is how long a lease lasts without renewal. It is
	// renewed every third of it; a cache that stops renewing (dead,
	// paused, cut off from Redis) is taken over by another member within
	// the TTL plus one check (a third of the TTL).
	DefaultLeaseTTL = 10 * time.Second
	// DefaultLeaseWait is how long Open waits for a lease another cache
	// holds on its prefix (the takeover of this prefix after a crash).
	DefaultLeaseWait = 2 * time.Minute
)

// ClusterOptions makes a Cache a member of a cluster of caches in one
// Redis, each under its own prefix (see Options.Cluster). A nil
// *ClusterOptions means no cluster; every zero field means its default.
type ClusterOptions struct {
	// Name names the registry ({Name}:members: prefix -> "<shards> <index
	// label>"); "" means DefaultClusterName. Every member of a cluster
	// uses the same name.
	Name string
	// LeaseTTL is the lease's time to live; 0 means DefaultLeaseTTL.
	LeaseTTL time.Duration
	// LeaseWait bounds how long Open waits while another cache holds the
	// prefix's lease; 0 means DefaultLeaseWait, a negative value fails at
	// once (with tsstore.ErrConflict).
	LeaseWait time.Duration
	// Adopt, when set, makes this cache take over the prefixes of dead
	// members: every LeaseTTL/3 it looks for registered prefixes without
	// a lease, opens a Cache on each it wins (with the next epoch, which
	// fences the dead owner) and calls Adopt with it, which must flush
	// everything the cache holds (for instance: writeback.New over it and
	// the store, then Close; see FlushAdopted). When Adopt returns nil
	// the prefix is deregistered; the cache is closed either way (an
	// error leaves the prefix registered, to be adopted again). The
	// prefix's cells stay readable through Registry all the while. nil
	// means this cache adopts nothing.
	Adopt func(ctx context.Context, c *Cache) error
	// OnLeaseLost, when set, is called once when the cache finds that it
	// lost its lease to another cache (it was paused or cut off past the
	// TTL and was taken over): from then on every write, seal, fold and
	// commit fails with tsstore.ErrClosed. The owner should stop using
	// the cache (close it, restart).
	OnLeaseLost func(error)
}

// epochCheck returns Lua that refuses a call whose epoch (the ARGV
// expression arg) is not the one in the key expression key: the cache was
// fenced by a takeover.
func epochCheck(key, arg string) string {
	return `
local epoch = redis.call('GET', ` + key + `) or '0'
if epoch ~= ` + arg + ` then
  return redis.error_reply('HGFENCED the prefix is at epoch ' .. epoch .. ', this cache holds epoch ' .. ` + arg + `)
end
`
}

// claimScript takes a prefix's lease unless another owner holds it: it
// raises the prefix's epoch and sets the lease to "<owner> <epoch>" with
// a TTL. KEYS[1] lease, KEYS[2] epoch; ARGV[1] owner, ARGV[2] TTL (ms).
// It returns the new epoch.
var claimScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  return redis.error_reply('HGLEASED the lease is held: ' .. cur)
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. epoch, 'PX', ARGV[2])
return epoch
`)

// raiseScript raises a shard's epoch to ARGV[1] and returns the shard's
// epoch after it (higher than ARGV[1]: a newer cache took the prefix).
// KEYS[1] the shard's epoch.
var raiseScript = redis.NewScript(`
local e = tonumber(redis.call('GET', KEYS[1]) or '0')
if e < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
  return tonumber(ARGV[1])
end
return e
`)

// renewScript renews the lease "<owner> <epoch>": it extends it when it
// holds, takes it again when it expired and the epoch is still ours
// (nobody took over), and returns 0 when another cache has the prefix.
// KEYS[1] lease, KEYS[2] epoch; ARGV[1] owner, ARGV[2] epoch, ARGV[3] TTL
// (ms); ARGV[4] "release" deletes the lease instead, when it holds.
var renewScript = redis.NewScript(`
local want = ARGV[1] .. ' ' .. ARGV[2]
local cur = redis.call('GET', KEYS[1])
if ARGV[4] == 'release' then
  if cur == want then redis.call('DEL', KEYS[1]) end
  return 1
end
if cur == want then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
if not cur and (redis.call('GET', KEYS[2]) or '0') == ARGV[2] then
  redis.call('SET', KEYS[1], want, 'PX', ARGV[3])
  return 1
end
return 0
`)

// membersKey names a cluster's registry of prefixes.
func membersKey(name string) string { return "{" + name + "}:members" }

// lease is the cluster state of a Cache; nil without Options.Cluster.
type lease struct {
	opts  ClusterOptions
	owner string // random per Cache: "<hex>"
	// base is when the lease state was made; validUntil is how long after
	// base (monotonic) the lease surely holds: the start of the last
	// successful claim or renewal plus the TTL. lost is set when a
	// renewal found another cache's lease.
	base       time.Time
	validUntil atomic.Int64
	lost       atomic.Bool
	// adopting holds the prefixes being adopted by this cache; guarded
	// by mu.
	mu       sync.Mutex
	adopting map[string]bool
	// cancel stops adoptions at Close.
	ctx    context.Context
	cancel context.CancelFunc
}

// claim sets the cache's epoch: with Options.Cluster it takes the lease
// (waiting up to LeaseWait while another cache holds it) and registers
// the prefix; without, it adopts the prefix's current epoch. Either way it
// raises every shard's epoch to it.
func (c *Cache) claim(ctx context.Context) error {
	if c.lease == nil {
		v, err := c.client.Get(ctx, c.keys.epoch()).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return classify("open: read the epoch", err)
		}
		c.epoch, _ = strconv.ParseUint(v, 10, 64)
		return c.raiseShards(ctx)
	}
	l := c.lease
	deadline := time.Now().Add(l.opts.LeaseWait)
	for {
		sent := time.Since(l.base)
		ep, err := claimScript.Run(ctx, c.client, []string{c.keys.lease(), c.keys.epoch()}, l.owner, l.opts.LeaseTTL.Milliseconds()).Uint64()
		if err == nil {
			c.epoch = ep
			l.validUntil.Store(int64(sent + l.opts.LeaseTTL))
			break
		}
		if !strings.Contains(err.Error(), "HGLEASED") {
			return classify("open: take the lease", err)
		}
		if l.opts.LeaseWait < 0 || time.Now().After(deadline) {
			return tsstore.Errorf(tsstore.ErrConflict, "rediscache: open: prefix %q: another cache holds its lease (%v)", c.opts.Prefix, err)
		}
		c.log.Info("rediscache: waiting for the lease of the prefix, which another cache holds (a takeover?)", "prefix", c.opts.Prefix, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(l.opts.LeaseTTL / 3):
		}
	}
	if err := c.raiseShards(ctx); err != nil {
		c.releaseLease()
		return err
	}
	err := c.client.HSet(ctx, membersKey(l.opts.Name), c.opts.Prefix, strconv.Itoa(c.opts.Shards)+" "+c.opts.IndexLabel).Err()
	if err != nil {
		c.releaseLease()
		return classify("open: register the prefix", err)
	}
	return nil
}

// raiseShards raises every shard's epoch to the cache's; a shard already
// past it means a newer cache took the prefix.
func (c *Cache) raiseShards(ctx context.Context) error {
	pipe := c.client.Pipeline()
	cmds := make([]*redis.Cmd, c.opts.Shards)
	for s := range cmds {
		cmds[s] = raiseScript.Run(ctx, pipe, []string{c.keys.shardEpoch(s)}, c.epoch)
	}
	if err := c.execScripts(ctx, pipe, "open: raise the shards' epochs"); err != nil {
		return err
	}
	for s, cmd := range cmds {
		if e, _ := cmd.Uint64(); e > c.epoch {
			return tsstore.Errorf(tsstore.ErrClosed, "rediscache: open: shard %d of prefix %q is at epoch %d, past this cache's %d: another cache took the prefix", s, c.opts.Prefix, e, c.epoch)
		}
	}
	return nil
}

// Epoch returns the epoch under which the cache writes its prefix: raised
// by every cache that takes the prefix with a lease (Options.Cluster).
func (c *Cache) Epoch() uint64 { return c.epoch }

// renew renews the lease once; it reports false when the lease is lost.
func (c *Cache) renew(ctx context.Context) (bool, error) {
	l := c.lease
	sent := time.Since(l.base)
	n, err := renewScript.Run(ctx, c.client, []string{c.keys.lease(), c.keys.epoch()}, l.owner, c.epoch, l.opts.LeaseTTL.Milliseconds(), "").Int()
	if err != nil {
		return true, classify("renew the lease", err)
	}
	if n == 1 {
		l.validUntil.Store(int64(sent + l.opts.LeaseTTL))
	}
	return n == 1, nil
}

// checkLease fails when the cache cannot be sure that it still holds its
// prefix: with tsstore.ErrClosed once it lost its lease, with
// tsstore.ErrUnavailable while the lease may have expired (the process was
// paused or cut off from Redis past the TTL: another cache may be taking
// the prefix over, and this process's memtables may hold batches that
// another cache folded meanwhile, which a read would count twice). Reads
// check it; writes and flushes are fenced by the epoch in Redis.
func (c *Cache) checkLease() error {
	l := c.lease
	if l == nil {
		return nil
	}
	if l.lost.Load() {
		return tsstore.Errorf(tsstore.ErrClosed, "rediscache: prefix %q: this cache lost its lease (epoch %d) to another cache", c.opts.Prefix, c.epoch)
	}
	if left := time.Duration(l.validUntil.Load()) - time.Since(l.base); left <= 0 {
		return tsstore.Errorf(tsstore.ErrUnavailable, "rediscache: prefix %q: the lease expired %v ago and is not renewed yet (paused, or cut off from Redis?)", c.opts.Prefix, -left)
	}
	return nil
}

// releaseLease deletes the lease if it is still this cache's.
func (c *Cache) releaseLease() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l := c.lease
	_ = renewScript.Run(ctx, c.client, []string{c.keys.lease(), c.keys.epoch()}, l.owner, c.epoch, 0, "release").Err()
}

// leaseLoop renews the lease every LeaseTTL/3 and, with Adopt, looks for
// dead members to adopt, until Close.
func (c *Cache) leaseLoop() {
	defer c.wg.Done()
	l := c.lease
	t := time.NewTicker(l.opts.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(l.ctx, l.opts.LeaseTTL/3)
		if !l.lost.Load() {
			ok, err := c.renew(ctx)
			switch {
			case err != nil:
				c.log.Warn("rediscache: could not renew the lease; another cache takes the prefix over if this lasts past the TTL", "prefix", c.opts.Prefix, "ttl", l.opts.LeaseTTL, "err", err)
			case !ok:
				l.lost.Store(true)
				err := tsstore.Errorf(tsstore.ErrClosed, "rediscache: prefix %q: the lease of epoch %d was lost to another cache", c.opts.Prefix, c.epoch)
				c.log.Error("rediscache: lost the lease: this cache is fenced", "prefix", c.opts.Prefix, "epoch", c.epoch)
				if l.opts.OnLeaseLost != nil {
					l.opts.OnLeaseLost(err) // once: the lease is not renewed again
				}
			}
		}
		if !l.lost.Load() && l.opts.Adopt != nil {
			if err := c.findDead(ctx); err != nil {
				c.log.Warn("rediscache: could not look for dead members", "err", err)
			}
		}
		cancel()
	}
}

// findDead starts the adoption of every registered prefix without a lease.
func (c *Cache) findDead(ctx context.Context) error {
	l := c.lease
	members, err := c.client.HGetAll(ctx, membersKey(l.opts.Name)).Result()
	if err != nil {
		return classify("read the registry", err)
	}
	pipe := c.client.Pipeline()
	exists := map[string]*redis.IntCmd{}
	for p := range members {
		if p == c.opts.Prefix {
			continue
		}
		k := newKeyspace(p, 0)
		exists[p] = pipe.Exists(ctx, k.lease())
	}
	if len(exists) == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return classify("read the leases", err)
	}
	for p, cmd := range exists {
		if cmd.Val() != 0 {
			continue
		}
		shards, idx, err := parseMember(members[p])
		if err != nil {
			c.log.Warn("rediscache: skipping a registry entry", "prefix", p, "err", err)
			continue
		}
		l.mu.Lock()
		busy := l.adopting[p]
		if !busy {
			l.adopting[p] = true
		}
		l.mu.Unlock()
		if busy {
			continue
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			defer func() {
				l.mu.Lock()
				delete(l.adopting, p)
				l.mu.Unlock()
			}()
			c.adopt(l.ctx, p, shards, idx)
		}()
	}
	return nil
}

// parseMember parses a registry value "<shards> <index label>".
func parseMember(v string) (int, string, error) {
	a, idx, ok := strings.Cut(v, " ")
	n, err := strconv.Atoi(a)
	if !ok || err != nil || n <= 0 || idx == "" {
		return 0, "", fmt.Errorf("registry value %q is not \"<shards> <index label>\"", v)
	}
	return n, idx, nil
}

// adopt opens prefix p with the next epoch (fencing its dead owner),
// hands it to Adopt, and deregisters it when Adopt flushed it.
func (c *Cache) adopt(ctx context.Context, p string, shards int, idx string) {
	l := c.lease
	o := c.opts
	o.Prefix, o.Shards, o.IndexLabel = p, shards, idx
	o.Cluster = &ClusterOptions{Name: l.opts.Name, LeaseTTL: l.opts.LeaseTTL, LeaseWait: -1}
	start := time.Now()
	ac, err := Open(ctx, c.client, &o)
	if err != nil {
		if !errors.Is(err, tsstore.ErrConflict) {
			c.log.Warn("rediscache: could not open a dead member's prefix", "prefix", p, "err", err)
		}
		return
	}
	c.log.Info("rediscache: adopting the prefix of a dead member", "prefix", p, "epoch", ac.epoch)
	err = l.opts.Adopt(ctx, ac)
	if err == nil {
		if st := ac.Stats(); st.Points > 0 || st.Sealed > 0 {
			err = fmt.Errorf("the adopted cache still holds %d points in %d sealed generations and the open one", st.Points, st.Sealed)
		}
	}
	if err == nil {
		err = c.client.HDel(ctx, membersKey(l.opts.Name), p).Err()
	}
	if cerr := ac.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		c.log.Error("rediscache: adopting a dead member's prefix failed; it stays registered and is adopted again", "prefix", p, "err", err)
		return
	}
	c.log.Info("rediscache: adopted and flushed the prefix of a dead member", "prefix", p, "took", time.Since(start))
}

// newOwner returns a random lease owner token.
func newOwner() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// adoptFlushBudget is the flush budget of FlushAdopted's engine when the
// options leave it zero.
const adoptFlushBudget = time.Minute

// FlushAdopted returns a ClusterOptions.Adopt that flushes an adopted
// cache with a writeback engine over store: opts are the member's engine
// options (Archives, Processor, ...), with the flush timer off and no
// peers. Its Source must be empty: the engine then takes the adopted
// prefix's writer id, so that the dead member's cells and archive
// segments keep their names (a generation the dead member had flushed or
// archived in part is written again under the same identity: a no-op). It
// flushes until the cache is empty, then closes the engine.
func FlushAdopted(store tsstore.Store, opts *writeback.Options) func(context.Context, *Cache) error {
	return func(ctx context.Context, c *Cache) error {
		var o writeback.Options
		if opts != nil {
			o = *opts
		}
		o.FlushInterval, o.Peers, o.Source = -1, nil, ""
		if o.FlushBudget == 0 {
			// Bounded, so that a Close of the adopting cache (which
			// cancels ctx) does not wait out the engine's final flush for
			// the default 15 minutes; the loop below goes on while a
			// flush overruns, so everything is still flushed.
			o.FlushBudget = adoptFlushBudget
		}
		e, err := writeback.New(c, store, &o)
		if err != nil {
			return fmt.Errorf("rediscache: adopt %q: %w", c.opts.Prefix, err)
		}
		for {
			rep, err := e.Flush(ctx)
			if err != nil {
				_ = e.Close()
				return fmt.Errorf("rediscache: adopt %q: %w", c.opts.Prefix, err)
			}
			if !rep.Overrun {
				break
			}
		}
		return e.Close()
	}
}
