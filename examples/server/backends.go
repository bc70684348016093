package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/hourglass-io/hourglass/replicate"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/tsstore/archive/dirarchive"
	"github.com/hourglass-io/hourglass/tsstore/archive/s3archive"
	"github.com/hourglass-io/hourglass/tsstore/influx"
	"github.com/hourglass-io/hourglass/tsstore/promremote"
	"github.com/hourglass-io/hourglass/tsstore/promtsdb"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/localcache"
	"github.com/hourglass-io/hourglass/writeback/rediscache"
)

// backends are the cache, store and archives the engine runs on. The engine
// does not own them: close them after it.
type backends struct {
	cache    writeback.Cache
	store    tsstore.Store
	archives []archive.Archive
	redis    redis.UniversalClient
	repl     *replicate.Store // the replicated store, when -replicas or -standby-influx-urls
	describe []string         // what was opened, for the start banner
	// With -cluster: the engine's peers (the other members' prefixes),
	// the engine options an adopted prefix is flushed with (set before
	// opened is closed), and the loss of this server's lease.
	registry  *rediscache.Registry
	adoptOpts writeback.Options
	opened    chan struct{}
	leaseLost chan error
}

// openBackends opens what c configures. On error, what was opened is closed.
func openBackends(ctx context.Context, c *config, log *slog.Logger) (b *backends, err error) {
	b = &backends{opened: make(chan struct{}), leaseLost: make(chan error, 1)}
	defer func() {
		if err != nil {
			_ = b.close()
		}
	}()
	// The backends are checked before the server reports ready, within
	// startCheckTimeout together (see checks.go).
	cctx, cancel := context.WithTimeout(ctx, startCheckTimeout)
	defer cancel()
	if c.standbys() > 0 {
		seeded, err := seedReplicas(c)
		for _, s := range seeded {
			log.Warn(s)
		}
		if err != nil {
			return b, fmt.Errorf("store: %w", err)
		}
	}
	primaryName := "primary"
	switch c.store {
	case "influx":
		api, err := checkInflux(cctx, c, "-influx-url", c.influxURL, c.influxAPI)
		if err != nil {
			return b, err
		}
		c.influxAPI = api // the standbys' too
		s, err := influx.Open(c.influxURL, c.influxOptions(api))
		if err != nil {
			return b, fmt.Errorf("store: %w", err)
		}
		b.store = s
		b.describe = append(b.describe, "store: InfluxDB "+c.influxURL+" database "+c.influxDB+", write API "+api)
		primaryName = "influx-primary"
	case "promremote":
		o, err := c.promremoteOptions()
		if err != nil {
			return b, fmt.Errorf("store: %w", err)
		}
		s, err := promremote.Open(cctx, c.prwWrite, c.prwRead, o)
		if err != nil {
			return b, fmt.Errorf("-promremote-write-url %s, -promremote-read-url %s: %w", c.prwWrite, c.prwRead, err)
		}
		b.store = s
		b.describe = append(b.describe, fmt.Sprintf("store: remote write to %s, reads from %s (%s API, flush URLs %v)", c.prwWrite, c.prwRead, s.ReadAPI(), s.FlushURLs()))
		primaryName = "promremote-primary"
	default:
		dir := filepath.Join(c.dataDir, "tsdb")
		s, err := promtsdb.Open(dir, nil)
		if err != nil {
			return b, fmt.Errorf("store: %w", err)
		}
		b.store = s
		b.describe = append(b.describe, "store: promtsdb in "+dir)
	}
	if c.standbys() > 0 {
		set, describe, err := openReplicated(ctx, c, b.store, primaryName, log)
		if err != nil {
			return b, fmt.Errorf("store: replicas: %w", err)
		}
		b.store, b.repl = set, set.Store
		b.describe = append(b.describe, describe...)
	}

	switch c.cache {
	case "redis":
		addrs := splitList(c.redisAddrs)
		redis.SetLogger(redisLog{log})
		b.redis = redis.NewUniversalClient(&redis.UniversalOptions{
			Addrs: addrs, MasterName: c.redisMaster, IsClusterMode: c.redisCluster, Password: c.redisPassword,
		})
		if err := pingRedis(cctx, b.redis, c); err != nil {
			return b, err
		}
		ro := &rediscache.Options{Prefix: c.redisPrefix, WaitReplicas: c.redisReplicas, Logger: log}
		if c.cluster != "" {
			ro.Cluster = b.clusterOptions(c)
		}
		rc, err := rediscache.Open(ctx, b.redis, ro)
		if err != nil {
			return b, fmt.Errorf("cache: %w", err)
		}
		b.cache = rc
		if c.cluster != "" {
			b.registry = rc.Registry(b.store.CellWidth())
			b.describe = append(b.describe, fmt.Sprintf("cluster: %s, lease %v on the prefix, epoch %d", c.cluster, c.leaseTTL, rc.Epoch()))
		}
		kind := "server"
		switch {
		case c.redisMaster != "":
			kind = "Sentinel master " + c.redisMaster + " via"
		case c.redisCluster:
			kind = "Cluster"
		}
		b.describe = append(b.describe, fmt.Sprintf("cache: Redis %s %s, prefix %s", kind, strings.Join(addrs, ","), c.redisPrefix))
	default:
		var fsync localcache.FsyncPolicy
		switch c.fsync {
		case "interval":
			fsync = localcache.FsyncInterval
		case "always":
			fsync = localcache.FsyncAlways
		case "never":
			fsync = localcache.FsyncNever
		default:
			return b, fmt.Errorf("-fsync %q: want interval, always or never", c.fsync)
		}
		dir := filepath.Join(c.dataDir, "cache")
		lc, err := localcache.Open(dir, &localcache.Options{Fsync: fsync, Logger: log})
		if err != nil {
			return b, fmt.Errorf("cache: %w", err)
		}
		b.cache = lc
		b.describe = append(b.describe, "cache: localcache (memory + WAL, fsync "+c.fsync+") in "+dir)
	}

	for _, dir := range c.archivePaths() {
		if err := checkDir(dir); err != nil {
			return b, err
		}
		a, err := dirarchive.Open(dir, nil)
		if err != nil {
			return b, fmt.Errorf("archive: %w", err)
		}
		b.archives = append(b.archives, a)
		b.describe = append(b.describe, "archive: directory "+dir)
	}
	if c.s3Bucket != "" {
		if err := dialS3(cctx, c.s3Endpoint); err != nil {
			return b, err
		}
		a, err := s3archive.Open(cctx, c.s3Endpoint, c.s3Bucket, c.s3Prefix, &s3archive.Options{
			AccessKey: c.s3AccessKey, SecretKey: c.s3SecretKey, Region: c.s3Region, CreateBucket: true,
		})
		if err != nil {
			return b, checkS3Error(c, err)
		}
		b.archives = append(b.archives, a)
		b.describe = append(b.describe, "archive: S3 "+c.s3Endpoint+" bucket "+c.s3Bucket+" prefix "+c.s3Prefix)
	}
	if c.amqpURL != "" {
		if err := dialAMQP(cctx, c.amqpURL); err != nil {
			return b, err
		}
	}
	return b, nil
}

// clusterOptions returns the cluster options of the Redis cache: a lease
// of -lease-ttl, the adoption of dead members' prefixes (flushed to the
// live store and the archives once openBackends finished), and the report
// of a lost lease.
func (b *backends) clusterOptions(c *config) *rediscache.ClusterOptions {
	return &rediscache.ClusterOptions{
		Name: c.cluster, LeaseTTL: c.leaseTTL,
		Adopt: func(ctx context.Context, ac *rediscache.Cache) error {
			select {
			case <-b.opened:
			case <-ctx.Done():
				return ctx.Err()
			}
			return rediscache.FlushAdopted(b.store, &b.adoptOpts)(ctx, ac)
		},
		OnLeaseLost: func(err error) {
			select {
			case b.leaseLost <- err:
			default:
			}
		},
	}
}

// close closes the archives, the cache and the store (after the engine).
func (b *backends) close() error {
	var errs []error
	for _, a := range b.archives {
		errs = append(errs, a.Close())
	}
	if b.cache != nil {
		errs = append(errs, b.cache.Close())
	}
	if b.redis != nil {
		errs = append(errs, b.redis.Close())
	}
	if b.store != nil {
		errs = append(errs, b.store.Close())
	}
	return errors.Join(errs...)
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}
