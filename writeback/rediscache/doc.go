// Package rediscache is a writeback.Cache in Redis (github.com/redis/go-redis/v9):
// the raw log in Redis Streams, the cells in hashes. It works over any
// redis.UniversalClient: a single server, a Sentinel-managed primary
// (redis.NewFailoverClient) and Redis Cluster, on plain Redis 7.
//
// # Layout
//
// The keys are spread over Options.Shards hash-tag shards: every key of
// shard s carries the tag {prefix:s}, so that one shard's keys share a
// Cluster slot and one script or transaction may touch all of them (see
// keyspace in keys.go for the full list). Per shard and generation there
// are
//
//   - log: a stream with one entry per batch: the raw points ("b", encoded
//     compactly: a string table per entry, delta timestamps, integers as
//     varints, about 8 to 12 bytes a point), the cell width ("w") and,
//     only when the processor changed them, the processed points ("p");
//   - pend: the batches whose cells are not folded yet (id -> entry ID);
//   - cells: a hash of field = metric, index label value (the merchant),
//     cell start (8 bytes big-endian) and the other labels; value = the
//     Agg as four float64s;
//   - index: a sorted set of the same fields with score 0, so that the
//     cells of one metric and merchant within [From, To) are one
//     ZRANGE BYLEX range, and one metric's cells another;
//   - folds: how many folds have been applied to cells;
//   - stat and ids: counters, and the ids of the batches applied, for
//     idempotent retries.
//
// The meta keys ({prefix}:meta, :sealed, :dropping) hold the open
// generation, the sealed ones and the committed ones being deleted; every
// shard has a fence, the highest sealed generation. {prefix}:writer keeps
// the cache's writer id (writeback.Cache.WriterID), set once with SET NX;
// {prefix}:quarantine is the quarantine (writeback.QuarantineCache), a
// hash from cell identity to the refused cell and its reason in JSON.
//
// # Writes: one cheap command per batch, cells folded in bulk
//
// A batch goes to ONE shard, chosen by the index label value of its first
// point (so that one merchant's batches stay together), and is ONE call of
// a loaded Lua script (EVALSHA; go-redis reloads it after NOSCRIPT) that
// checks the fence and the batch id, XADDs the log entry, lists the batch
// in pend and bumps counters: its cost is proportional to the batch's
// bytes, with no work per point or per cell on the server. A script runs
// alone and is replicated as a unit, so a batch is in the log and in pend
// together or not at all, also across a crash of the client.
//
// The client merges the batch's processed points into cells (within the
// batch first) and, once the script returned, into the open generation's
// memtable: per shard, the cells of the batches not folded yet, held in
// this process. A background fold (every FoldInterval, default 1 s, or
// once FoldPoints processed points are pending) freezes the memtable and
// merges it into each shard's cells hash in one optimistic transaction:
// WATCH the shard's fold count, read the old values (HMGET), merge here,
// then MULTI: HSET the new values, ZADD the new fields to the index, HDEL
// the folded batches from pend, and raise the fold count; EXEC. Only folds
// write cells, index and fold count, so this read-merge-write is exact,
// and the server runs plain hash commands once per cell and fold rather
// than Lua once per cell and batch; a cell that many batches touch within
// a fold is written once. Appends wait when more than four times
// FoldPoints are pending (the fold lags), which bounds the memtables, and
// fail with tsstore.ErrBackPressure after 10 s of that.
//
// Pending batches that no memtable holds are folded from the log: those a
// crash left (Open folds them before it returns) and those of an append
// that failed after its script may have run (a broken connection); a
// fold takes them from pend unless an append on its way holds them.
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
// generation after Seal returned it. SealedCells folds what is pending of
// the generation, then pages through its cells hashes with HSCAN. Commit
// moves the generation to the dropping set, forgets it, and UNLINKs its
// keys (a deletion cut short is finished by the next Commit or Open).
// Open rebuilds the state from the meta keys, finishes interrupted seals
// (fences) and deletions, reads the counters and folds what is pending.
//
// # Clusters: leases, epochs, takeover and reads across prefixes
//
// With Options.Cluster, several servers share one Redis, each with its
// own prefix, as members of a cluster:
//
//   - Lease and epoch. Open takes the prefix's lease ({p}:lease, "<owner>
//     <epoch>", TTL ClusterOptions.LeaseTTL, default 10 s) with the next
//     epoch ({p}:epoch, INCR), copies the epoch to every shard
//     ({p:s}:epoch) and registers the prefix ({name}:members). A goroutine
//     of the Cache renews the lease every TTL/3; Close stops it and
//     releases the lease. Every append, seal, fence and commit script and
//     every fold transaction checks the epoch: a cache paused or cut off
//     past its lease and taken over meanwhile fails them all with
//     tsstore.ErrClosed (HGFENCED; not retryable: it must be closed) and
//     reports the loss through ClusterOptions.OnLeaseLost. Whatever it
//     wrote before the new epoch reached a shard is in Redis and is
//     flushed by the new owner.
//   - Takeover. A member with ClusterOptions.Adopt looks every TTL/3 for
//     registered prefixes without a lease (dead, or closed), opens the
//     ones it wins (the lease is taken atomically, so only one member
//     adopts a prefix), which folds what the dead member left pending, and
//     hands them to Adopt (FlushAdopted: a writeback engine flushes every
//     generation to the store and archives under the dead member's writer
//     id), then deregisters the prefix and releases the lease. So a dead
//     member's acknowledged writes reach the store within the lease TTL
//     plus one check (TTL/3) plus the flush, without it coming back. A
//     member restarting on its prefix meanwhile waits for the lease
//     (ClusterOptions.LeaseWait) and continues its generation numbers.
//   - Reads across prefixes. Registry (a writeback.Peers) reads the cells
//     of every other registered prefix, live or dead, with one read script
//     per shard and generation, each cell with the store identity the
//     owner's engine gives it. It sees what the owners have folded: an
//     acknowledged batch of another member within that member's
//     FoldInterval (default 1 s) plus one fold, a dead member's at once for
//     what it folded and for the rest when it is adopted (within the lease
//     TTL plus one check). The generations are read again after the cells:
//     a generation committed meanwhile is left out (the store holds it),
//     and a stored copy of a cell wins over a peer's (complete, where the
//     peer's may lack a batch not folded yet).
//
// BenchmarkQueryThroughRegistry: a merchant's query over one hour at
// one-minute steps (100 merchants, 60 cells each, in the caches), through
// the one member that holds everything against one of three members that
// each hold a third: p50 0.30 ms and p99 3.4 ms with one member, p50 0.93
// ms and p99 4.3 ms with three (one run on the shared, loaded 2-core
// machine, private redis-server; go test -run '^$' -bench
// QueryThroughRegistry -benchtime 1000x). A query reads each other
// prefix's meta keys twice and its cells once: three round trips per
// member.
//
// One Cache per prefix at a time: the ordering above, and the memtables
// that reads merge, are within one process. A second process writing the
// same prefix would have its appends refused by the fences
// (tsstore.ErrConflict) once the first sealed, and its folds by the fold
// count; like localcache's directory lock, the prefix belongs to one
// owner, and reads go through it.
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
//     When WaitReplicas > 0, Seal, Commit and every fold wait for the
//     replicas too (a fold round that finds them behind folds its other
//     shards without waiting: a fold lost in a failover is redone from the
//     log).
//
// What an acknowledged batch needs to survive is its log entry and its
// pend entry, which the script writes together: the cells hash is derived
// from them. A fold lost in a failover leaves its batches in pend, and
// the next fold finds the fold count lower than it expects and folds them
// again from the log.
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
// new primary (TestSentinelFailover kills the primary with SIGKILL while
// writing with WAIT 1: writes continue once Sentinel promoted the
// replica, and no acknowledged point is lost or counted twice); an Append
// that failed is not acknowledged; a fold or a flush interrupted by a
// failover fails and is retried (every step is idempotent). Run the
// servers with appendonly yes so that a restart keeps the data; without
// persistence a restarted server starts empty.
//
// # Reads and Stats
//
// Cells takes the generations' memtables, then runs one read script per
// shard and generation, all in one pipeline: the fold count, the ZRANGE
// BYLEX of the selected range and the HMGET of those fields, as one
// snapshot. It adds the memtables' cells that the snapshot does not hold
// (a memtable's part of a shard is in a snapshot iff its fold count is at
// least the one that part's fold sets, which is recorded before the fold
// is sent), so a read sees every acknowledged write at once, and none
// twice. With an equality matcher on the index label the range is that
// merchant's cells in [From, To) and the memtables are looked up by
// merchant; otherwise it is the metric's cells (filtered here). There is
// no KEYS or SCAN anywhere but in SealedCells (HSCAN of a sealed
// generation). Stats reads counters in memory: they are loaded at Open
// from the counters kept per shard and generation and follow each append
// and fold. Cells counts a pending cell once per memtable until it is
// folded (an upper bound meanwhile). Bytes estimates the server memory
// the cache's data takes.
//
// # Throughput and memory
//
// BenchmarkThroughput runs, on one private redis-server, the writeback
// engine over this cache with 4 writers per core and batches of 1,000
// points (10,000 merchants, 4 metrics, 8 pages, the current minute; Zipf
// or uniform merchants), redis-benchmark -P 64 -t set, and a naive client
// (one HINCRBYFLOAT per point, pipelines of 1,000); it reports points/s,
// the CPU per batch of the client process and of redis-server, and the
// growth of used_memory per point. One run on the shared 2-core machine
// it was written on (go test -run '^$' -bench Throughput -benchtime 2s):
//
//	                          points/s   client CPU   server CPU   Redis memory
//	                                     per batch    per batch    per point
//	engine, Zipf merchants    3.57 M     0.40 ms      0.10 ms      13.8 B
//	engine, uniform           2.90 M     0.46 ms      0.14 ms      19.4 B
//	redis-benchmark -P 64     2.34 M requests/s
//	naive client              0.73 M
//
// The engine beats redis-benchmark's one-command-per-item rate by 1.2 to
// 1.5 times and the naive client by 4 to 5 times. The client's CPU
// (encoding the log entry, merging cells into the memtable, the engine's
// validation) is three quarters of the total, and the figures move with
// what else runs on the two cores. Redis memory is the log (about 10
// bytes a point) and the cells (shared by the points of a cell). This
// process holds the pending cells: a memtable takes about 100 bytes per
// cell, and at most four times FoldPoints points wait. Before the fold
// (one Lua merge per cell and batch) the same benchmark gave 0.84 M (Zipf)
// and 0.72 M (uniform) points/s, with 1.1 to 1.3 ms of server time per
// batch.
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
// A Cache is safe for concurrent use. Appends run in parallel (they
// share a memtable shard's mutex only to insert their cells); Seal and
// Commit are serialised with each other, folds with each other and with
// Commit, and none of them holds a lock that an Append waits for during
// I/O. The fold runs in a goroutine that Close stops.
//
// # Errors
//
// Server and connection failures are tsstore.ErrUnavailable (also too few
// replicas at DurabilityReplicated); an append that waited too long for a
// lagging fold is tsstore.ErrBackPressure; an append refused by a fence is
// tsstore.ErrConflict; a durability level the cache cannot give and bad
// options are tsstore.ErrInvalid; use after Close is tsstore.ErrClosed.
package rediscache
