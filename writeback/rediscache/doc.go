// Package rediscache is a writeback.Cache in Redis (github.com/redis/go-redis/v9):
// the raw log in Redis Streams, the cells in hashes, both updated by one Lua
// script call per batch. It works over a single server, a Sentinel-managed
// primary (redis.NewFailoverClient) and Redis Cluster, on plain Redis 7.
//
// # Layout
//
// The keys are spread over Options.Shards hash-tag shards: every key of
// shard s carries the tag {prefix:s}, so that one shard's keys share a
// Cluster slot and one script may touch all of them (see keyspace in
// keys.go for the full list). Per shard and generation there are
//
//   - a stream with one entry per batch: the batch's raw points, encoded
//     compactly (a string table per entry, delta timestamps, integers as
//     varints: about 8 to 12 bytes a point);
//   - a hash of cells: field = metric, index label value (the merchant),
//     cell start (8 bytes big-endian) and the other labels; value = the
//     Agg as four float64s;
//   - an index: a sorted set of the same fields with score 0, so that the
//     cells of one metric and merchant within [From, To) are one
//     ZRANGE BYLEX range, and one metric's cells another;
//   - counters (points, cells, bytes, first write) and the ids of the
//     batches applied, for idempotent retries.
//
// The meta keys ({prefix}:meta, :sealed, :dropping) hold the open
// generation, the sealed ones and the committed ones being deleted; every
// shard has a fence, the highest sealed generation.
//
// # Writes
//
// A batch goes to ONE shard, chosen by the index label value of its first
// point (so one merchant's batches, and its cells, stay together), and is
// ONE call of a loaded script (EVALSHA; go-redis reloads it after NOSCRIPT):
// XADD of the log entry, then for its cells, which the client has already
// merged within the batch, one HMGET, one HSET and one ZADD of the new
// fields per 2,000 cells, merging count, sum, min and max in Lua. A script
// runs alone on the server and is replicated as a unit, so log and cells
// change together, and a batch is atomic also across a crash of the
// client: that is why a batch is not split across shards (cells of one
// series may then be in several shards; reads merge them by identity).
// Sharding spreads batches, not points; a Cluster spreads the shards.
//
// # Generations without blocking writers
//
// The client picks the generation of a batch: the open one, read from
// memory. Seal (1) records the generation as sealed and the next as open
// in the meta keys, (2) switches new appends to the next generation (a
// pointer swap under a mutex; no writer waits for I/O), (3) waits for the
// appends already on their way to the sealed generation, and (4) raises
// every shard's fence, after which the script refuses that generation.
// So every batch lands wholly in one generation, and nothing reaches a
// generation after Seal returned it. Commit moves the generation to the
// dropping set, forgets it, and UNLINKs its keys (a deletion cut short is
// finished by the next Commit or Open). Cells reads a snapshot of the
// generation list and drops a generation committed during the read (its
// cells are in the store by then). Open rebuilds the state from the meta
// keys, finishes interrupted seals (fences) and deletions, and reads the
// counters.
//
// One Cache per prefix at a time: the ordering above is within one
// process. A second process writing the same prefix would have its appends
// refused by the fences (tsstore.ErrConflict) once the first sealed, but
// the two could still interleave seals; like localcache's directory lock,
// the prefix belongs to one owner.
//
// # Durability
//
//   - DurabilityMemory and DurabilityLogged: acknowledged when the script
//     ran on the primary: the batch survives a crash of this process, not
//     of the server or a failover (Redis replication is asynchronous; a
//     failover may lose the last writes the replica had not received).
//   - DurabilitySynced: offered only when the server runs appendonly yes
//     with appendfsync always (checked at Open): the batch is on the
//     primary's disk. (Redis 7.2's WAITAOF could give it under
//     appendfsync everysec; the target here is Redis 7.0.)
//   - DurabilityReplicated: the script is followed in the same pipeline,
//     on the same connection, by WAIT WaitReplicas WaitTimeout; the batch
//     is acknowledged only when that many replicas have it, so a failover
//     to one of them loses nothing acknowledged (Redis does not promise
//     that the promoted replica is one that acknowledged: with
//     WaitReplicas equal to the number of replicas it always is). When
//     fewer replicas acknowledge in time, Append fails with
//     tsstore.ErrUnavailable saying how many did — but the batch IS on the
//     primary and counts unless that primary is lost before replicating
//     it. A retry of that Engine.Write is a new batch and would count its
//     points twice if the first one survives: the caller must choose
//     between possible loss (no retry) and possible duplication (retry).
//     When WaitReplicas > 0, Seal and Commit wait for the replicas too.
//
// A batch carries a client-generated id; the script applies an id once
// per shard and generation and answers a repeated one with the first
// reply. So go-redis's own retries of a call whose reply was lost (a
// broken connection, a failover in the middle) do not count twice, and a
// WAIT after such a retry still covers the original write.
//
// # Failures
//
// go-redis reconnects, and the failover client follows Sentinel to the
// new primary; an Append that failed is not acknowledged; a flush
// interrupted by a failover fails and the engine retries it (every step
// is idempotent). Run the servers with appendonly yes so that a restart
// keeps the data; without persistence a restarted server starts empty.
//
// # Reads and Stats
//
// Cells runs one read script per shard and generation, all in one
// pipeline: the ZRANGE BYLEX of the selected range and the HMGET of those
// fields; with an equality matcher on the index label the range is that
// merchant's cells in [From, To), otherwise the whole metric (filtered
// here). There is no KEYS or SCAN anywhere but in SealedCells, which pages
// through a sealed generation's cells with HSCAN. Stats reads counters in
// memory: they are loaded at Open from the counters the script keeps per
// shard and generation (HINCRBY) and follow each script reply. Bytes is an
// estimate of the server memory the cache's data takes.
//
// # RedisTimeSeries
//
// Redis 8 (or the RedisTimeSeries module) offers TS.ADD/TS.MADD with
// compaction rules. It would not help here: the cache needs count, sum,
// min and max per cell merged exactly and atomically with the raw log,
// generations that seal and drop as units, and cells keyed by series and
// start for the read merge; a time series per (series, aggregate) would
// multiply keys and calls, and its compactions are per fixed bucket of a
// key, not per generation. The plain-Redis layout works on Redis 7.
//
// # Concurrency
//
// A Cache is safe for concurrent use. Appends run in parallel; Seal and
// Commit are serialised with each other and never hold a lock that an
// Append waits for during I/O.
//
// # Errors
//
// Server and connection failures are tsstore.ErrUnavailable (also too few
// replicas at DurabilityReplicated); an append refused by a fence is
// tsstore.ErrConflict; a durability level the cache cannot give and bad
// options are tsstore.ErrInvalid; use after Close is tsstore.ErrClosed.
package rediscache
