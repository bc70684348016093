package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hourglass-io/hourglass/replicate"
	"github.com/hourglass-io/hourglass/tsstore/influx"
	"github.com/hourglass-io/hourglass/tsstore/promremote"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/amqpsource"
	"github.com/hourglass-io/hourglass/writeback/peerhttp"
	"github.com/hourglass-io/hourglass/writeback/rediscache"
)

// Defaults of the server's configuration.
const (
	DefaultAddr            = ":8080"
	DefaultDataDir         = "data"
	DefaultMaxBody         = 4 << 20
	DefaultRate            = 50
	DefaultBurst           = 100
	DefaultShutdownTimeout = 30 * time.Second
)

// config is the server's configuration, from flags and HOURGLASS_* variables.
type config struct {
	addr     string
	dataDir  string
	tokens   string
	maxBody  int64
	rate     float64
	burst    int
	shutdown time.Duration
	pprof    string

	store       string
	influxURL   string
	influxDB    string
	influxToken string
	influxAPI   string

	// -store promremote
	prwWrite, prwRead, prwUser, prwPassword, prwToken, prwHeaders, prwFlush string

	cache         string
	fsync         string
	redisAddrs    string
	redisMaster   string
	redisCluster  bool
	redisPassword string
	redisPrefix   string
	redisReplicas int
	cluster       string
	leaseTTL      time.Duration
	peers         string

	archiveDirs string
	s3Endpoint  string
	s3Bucket    string
	s3Prefix    string
	s3AccessKey string
	s3SecretKey string
	s3Region    string

	flushInterval time.Duration
	flushBudget   time.Duration
	flushWriters  int
	flushWaiters  int
	flushStall    time.Duration
	maxCacheBytes int64

	amqpURL        string
	amqpWriteQueue string
	amqpReadQueue  string

	processor string

	replicas      int
	standbyInflux string
	ack           string
	ackLevel      replicate.Ack
}

// envFlags is a flag set whose flags may also be set by environment
// variables; the command line wins.
type envFlags struct {
	*flag.FlagSet
	env map[string]string // flag name → variable
}

func newEnvFlags(name string, out io.Writer, header string) *envFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	e := &envFlags{FlagSet: fs, env: map[string]string{}}
	fs.Usage = func() {
		fmt.Fprint(out, header)
		fs.PrintDefaults()
	}
	return e
}

func (e *envFlags) note(name, env string) string {
	e.env[name] = env
	return " ($" + env + ")"
}

func (e *envFlags) str(p *string, name, env, def, usage string) {
	e.StringVar(p, name, def, usage+e.note(name, env))
}

func (e *envFlags) dur(p *time.Duration, name, env string, def time.Duration, usage string) {
	e.DurationVar(p, name, def, usage+e.note(name, env))
}

func (e *envFlags) i64(p *int64, name, env string, def int64, usage string) {
	e.Int64Var(p, name, def, usage+e.note(name, env))
}

func (e *envFlags) num(p *int, name, env string, def int, usage string) {
	e.IntVar(p, name, def, usage+e.note(name, env))
}

func (e *envFlags) f64(p *float64, name, env string, def float64, usage string) {
	e.Float64Var(p, name, def, usage+e.note(name, env))
}

func (e *envFlags) boolean(p *bool, name, env string, def bool, usage string) {
	e.BoolVar(p, name, def, usage+e.note(name, env))
}

// parse applies the environment variables that are set, then args.
func (e *envFlags) parse(args []string) error {
	names := make([]string, 0, len(e.env))
	for n := range e.env {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if v := os.Getenv(e.env[n]); v != "" {
			if err := e.Set(n, v); err != nil {
				return fmt.Errorf("$%s=%q: %w", e.env[n], v, err)
			}
		}
	}
	return e.Parse(args)
}

const serverUsage = `Usage: server [flags]          the analytics server (embedded defaults: localcache,
                                promtsdb and dirarchive under -data, on -addr)
       server lb [flags]       a load balancer in front of several servers
                                (server lb -help for its flags)

Every flag can also be set by the environment variable named after it; a flag
on the command line wins. Flags:
`

// parseConfig parses the server's flags and environment.
func parseConfig(args []string, out io.Writer) (*config, error) {
	c := &config{}
	f := newEnvFlags("server", out, serverUsage)
	f.str(&c.addr, "addr", "HOURGLASS_ADDR", DefaultAddr, "listen address")
	f.str(&c.dataDir, "data", "HOURGLASS_DATA", DefaultDataDir, "data directory: tokens.json, cache/, tsdb/, archive/, amqp/, reprocess/, reprocess-dry-run/, and with -replicas tsdb-standby-N/ and replicate/")
	f.str(&c.tokens, "tokens", "HOURGLASS_TOKENS", "", "tokens file, created on first start; empty means <data>/tokens.json (servers behind one balancer share it)")
	f.i64(&c.maxBody, "max-body", "HOURGLASS_MAX_BODY", DefaultMaxBody, "largest request body in bytes (after gzip decoding); larger ones get 413")
	f.f64(&c.rate, "rate", "HOURGLASS_RATE", DefaultRate, "requests per second per merchant (token bucket); 0 means unlimited")
	f.num(&c.burst, "burst", "HOURGLASS_BURST", DefaultBurst, "token bucket size per merchant")
	f.dur(&c.shutdown, "shutdown-timeout", "HOURGLASS_SHUTDOWN_TIMEOUT", DefaultShutdownTimeout, "how long SIGTERM waits for requests in flight")
	f.str(&c.pprof, "pprof", "HOURGLASS_PPROF", "", "address of Go's profiling endpoints (/debug/pprof/), e.g. 127.0.0.1:6060; keep it on loopback (it has no authentication); empty means none")

	f.str(&c.store, "store", "HOURGLASS_STORE", "promtsdb", "time-series store: promtsdb (embedded, in <data>/tsdb), influx or promremote (a Prometheus remote-write engine: VictoriaMetrics, Mimir, Thanos, Prometheus)")
	f.str(&c.influxURL, "influx-url", "HOURGLASS_INFLUX_URL", "http://127.0.0.1:8086", "InfluxDB URL (-store influx)")
	f.str(&c.influxDB, "influx-db", "HOURGLASS_INFLUX_DB", "hourglass", "InfluxDB database, created when missing (-store influx)")
	f.str(&c.influxAPI, "influx-write-api", "HOURGLASS_INFLUX_WRITE_API", "", "InfluxDB write endpoint: v2 (/api/v2/write: 2.x, 3.x, 1.8+) or v1 (/write: older 1.x); empty means v2 where the server has it, else v1 (-store influx, -standby-influx-urls)")
	f.str(&c.influxToken, "influx-token", "HOURGLASS_INFLUX_TOKEN", "", "InfluxDB token or user:password (-store influx)")
	f.str(&c.prwWrite, "promremote-write-url", "HOURGLASS_PROMREMOTE_WRITE_URL", "http://127.0.0.1:8428/api/v1/write", "remote-write URL (-store promremote), e.g. http://vminsert:8480/insert/0/prometheus/api/v1/write")
	f.str(&c.prwRead, "promremote-read-url", "HOURGLASS_PROMREMOTE_READ_URL", "http://127.0.0.1:8428/", "prefix of the Prometheus HTTP API (-store promremote), e.g. http://vmselect:8481/select/0/prometheus/")
	f.str(&c.prwUser, "promremote-user", "HOURGLASS_PROMREMOTE_USER", "", "basic auth user (-store promremote)")
	f.str(&c.prwPassword, "promremote-password", "HOURGLASS_PROMREMOTE_PASSWORD", "", "basic auth password (-store promremote)")
	f.str(&c.prwToken, "promremote-bearer-token", "HOURGLASS_PROMREMOTE_BEARER_TOKEN", "", "bearer token (-store promremote)")
	f.str(&c.prwHeaders, "promremote-headers", "HOURGLASS_PROMREMOTE_HEADERS", "", "comma-separated Name=value headers of every request, e.g. X-Scope-OrgID=tenant1 (-store promremote)")
	f.str(&c.prwFlush, "promremote-flush-urls", "HOURGLASS_PROMREMOTE_FLUSH_URLS", "", "comma-separated URLs requested after every store write so that reads see it: each vmstorage's /internal/force_flush on a VictoriaMetrics cluster; empty means found at start for a single node (-store promremote)")

	f.str(&c.cache, "cache", "HOURGLASS_CACHE", "local", "write-back cache: local (memory + WAL in <data>/cache) or redis")
	f.str(&c.fsync, "fsync", "HOURGLASS_FSYNC", "interval", "local cache WAL fsync: interval (every 100 ms), always or never")
	f.str(&c.redisAddrs, "redis-addr", "HOURGLASS_REDIS_ADDR", "127.0.0.1:6379", "Redis address; comma-separated Sentinel or Cluster addresses (-cache redis)")
	f.str(&c.redisMaster, "redis-master", "HOURGLASS_REDIS_MASTER", "", "Sentinel master name: -redis-addr lists the sentinels (-cache redis)")
	f.boolean(&c.redisCluster, "redis-cluster", "HOURGLASS_REDIS_CLUSTER", false, "-redis-addr lists Redis Cluster nodes (-cache redis)")
	f.str(&c.redisPassword, "redis-password", "HOURGLASS_REDIS_PASSWORD", "", "Redis password (-cache redis)")
	f.str(&c.redisPrefix, "redis-prefix", "HOURGLASS_REDIS_PREFIX", "hourglass", "Redis key prefix, one per server (-cache redis)")
	f.num(&c.redisReplicas, "redis-wait-replicas", "HOURGLASS_REDIS_WAIT_REPLICAS", 0, "replicas that must have a write before it is acknowledged (WAIT; -cache redis): with 1 or more a Sentinel failover loses no acknowledged write")
	f.str(&c.cluster, "cluster", "HOURGLASS_CLUSTER", "", "name of the cluster of servers sharing the Redis (-cache redis): each holds a lease on its -redis-prefix, queries merge every member's cells, and a dead member's prefix is adopted and flushed; empty means no cluster")
	f.dur(&c.leaseTTL, "lease-ttl", "HOURGLASS_LEASE_TTL", rediscache.DefaultLeaseTTL, "lease of a cluster member on its prefix (-cluster): another member adopts the prefix within the TTL plus a third of it after the member stops renewing")
	f.str(&c.peers, "peers", "HOURGLASS_PEERS", "", "comma-separated base URLs of the other servers (-cache local): queries merge their cached cells, read over "+peerhttp.Path+" with the tokens file's secret; a peer that does not answer makes the answer partial")

	f.str(&c.archiveDirs, "archive-dirs", "HOURGLASS_ARCHIVE_DIRS", "", "comma-separated archive directories; empty means <data>/archive, \"none\" means no directory archive")
	f.str(&c.s3Endpoint, "s3-endpoint", "HOURGLASS_S3_ENDPOINT", "", "S3 endpoint (host:port or URL) of an archive on object storage, used with -s3-bucket")
	f.str(&c.s3Bucket, "s3-bucket", "HOURGLASS_S3_BUCKET", "", "S3 bucket of the archive (created when missing); empty means no S3 archive")
	f.str(&c.s3Prefix, "s3-prefix", "HOURGLASS_S3_PREFIX", "hourglass/", "key prefix of the S3 archive")
	f.str(&c.s3AccessKey, "s3-access-key", "HOURGLASS_S3_ACCESS_KEY", "", "S3 access key; empty means the AWS credential chain")
	f.str(&c.s3SecretKey, "s3-secret-key", "HOURGLASS_S3_SECRET_KEY", "", "S3 secret key")
	f.str(&c.s3Region, "s3-region", "HOURGLASS_S3_REGION", "", "S3 region; empty asks the server")

	f.dur(&c.flushInterval, "flush-interval", "HOURGLASS_FLUSH_INTERVAL", writeback.DefaultFlushInterval, "time between flushes of the cache to the store and archives (±5 % jitter)")
	f.dur(&c.flushBudget, "flush-budget", "HOURGLASS_FLUSH_BUDGET", writeback.DefaultFlushBudget, "longest time one flush may take")
	f.num(&c.flushWriters, "flush-writers", "HOURGLASS_FLUSH_WRITERS", 0, "write requests parsed and written at once while a flush runs (the others queue), so that under full load the flush gets more of the CPU and ends sooner: 0 means half the CPUs (GOMAXPROCS), at least 1; -1 means no bound")
	f.num(&c.flushWaiters, "flush-waiters", "HOURGLASS_FLUSH_WAITERS", 0, "write requests that may queue while a flush runs (each holds its body); one more gets 503 with Retry-After: 0 means 64 per CPU (GOMAXPROCS); -1 means no cap")
	f.dur(&c.flushStall, "flush-stall", "HOURGLASS_FLUSH_STALL", writeback.DefaultFlushStall, "flush work that makes no progress this long (a store or archive that hangs) holds no write request back until it does; a negative value means never")
	f.i64(&c.maxCacheBytes, "max-cache-bytes", "HOURGLASS_MAX_CACHE_BYTES", writeback.DefaultMaxCacheBytes, "cache bound; writes beyond it get 503 with Retry-After")

	f.str(&c.processor, "processor", "HOURGLASS_PROCESSOR", eventsProcessorVersion, "processing logic of the live engine: "+strings.Join(processorVersions(), " or ")+" (reprocess jobs choose theirs)")

	f.num(&c.replicas, "replicas", "HOURGLASS_REPLICAS", 0, "standby copies of the promtsdb store, in <data>/tsdb-standby-1 ... (package replicate: hints in <data>/replicate, failover); 0 means no replication")
	f.str(&c.standbyInflux, "standby-influx-urls", "HOURGLASS_STANDBY_INFLUX_URLS", "", "comma-separated InfluxDB URLs of further standbys (same -influx-db and -influx-token; they must start as copies of the primary)")
	f.str(&c.ack, "ack", "HOURGLASS_ACK", "primary", "ack level of replicated store writes: primary, primary+K, quorum or all (with -replicas or -standby-influx-urls)")

	f.str(&c.amqpURL, "amqp-url", "HOURGLASS_AMQP_URL", "", "RabbitMQ URL: also consume write batches from -amqp-write-queue and answer queries from -amqp-read-queue (amqpsource); empty means off")
	f.str(&c.amqpWriteQueue, "amqp-write-queue", "HOURGLASS_AMQP_WRITE_QUEUE", amqpsource.DefaultWriteQueue, "queue of write batches (-amqp-url); invalid messages go to <it>"+amqpsource.DefaultDeadLetterSuffix)
	f.str(&c.amqpReadQueue, "amqp-read-queue", "HOURGLASS_AMQP_READ_QUEUE", amqpsource.DefaultReadQueue, "queue of read requests, answered on their reply-to (-amqp-url)")
	if err := f.parse(args); err != nil {
		return nil, err
	}
	if f.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (see -help)", f.Arg(0))
	}
	if c.tokens == "" {
		c.tokens = filepath.Join(c.dataDir, "tokens.json")
	}
	switch c.store {
	case "promtsdb", "influx", "promremote":
	default:
		return nil, fmt.Errorf("-store %q: want promtsdb, influx or promremote", c.store)
	}
	switch c.cache {
	case "local", "redis":
	default:
		return nil, fmt.Errorf("-cache %q: want local or redis", c.cache)
	}
	if c.cluster != "" && c.cache != "redis" {
		return nil, fmt.Errorf("-cluster %q needs -cache redis (with -cache local, list the other servers in -peers)", c.cluster)
	}
	if c.peers != "" && c.cache != "local" {
		return nil, fmt.Errorf("-peers needs -cache local (with -cache redis, name the cluster in -cluster)")
	}
	if c.influxAPI != "" && c.influxAPI != "v1" && c.influxAPI != "v2" {
		return nil, fmt.Errorf("-influx-write-api %q: want v1 or v2 (or empty to detect)", c.influxAPI)
	}
	if processors[c.processor] == nil {
		return nil, fmt.Errorf("-processor %q: want one of %v", c.processor, processorVersions())
	}
	if c.replicas < 0 {
		return nil, fmt.Errorf("-replicas %d: want 0 or more standbys", c.replicas)
	}
	ack, err := parseAck(c.ack)
	if err != nil {
		return nil, err
	}
	c.ackLevel = ack
	if need, have := ackStandbys(ack, c.standbys()), c.standbys(); need > have {
		return nil, fmt.Errorf("-ack %s needs %d standbys; -replicas and -standby-influx-urls give %d", c.ack, need, have)
	}
	if c.maxBody <= 0 || c.burst <= 0 || c.rate < 0 {
		return nil, fmt.Errorf("-max-body and -burst must be positive, -rate not negative")
	}
	return c, nil
}

// archivePaths returns the directory archives to open.
func (c *config) archivePaths() []string {
	switch strings.TrimSpace(c.archiveDirs) {
	case "":
		return []string{filepath.Join(c.dataDir, "archive")}
	case "none":
		return nil
	}
	var out []string
	for _, d := range strings.Split(c.archiveDirs, ",") {
		if d = strings.TrimSpace(d); d != "" {
			out = append(out, d)
		}
	}
	return out
}

// standbys returns the number of standby replicas configured.
func (c *config) standbys() int { return c.replicas + len(splitList(c.standbyInflux)) }

// parseAck reads an ack level: primary, primary+K, quorum or all.
func parseAck(s string) (replicate.Ack, error) {
	switch s {
	case "primary":
		return replicate.AckPrimary, nil
	case "quorum":
		return replicate.AckQuorum, nil
	case "all":
		return replicate.AckAll, nil
	}
	if k, ok := strings.CutPrefix(s, "primary+"); ok {
		n, err := strconv.Atoi(k)
		if err == nil && n >= 0 {
			return replicate.AckPrimaryPlus(n), nil
		}
	}
	return replicate.Ack{}, fmt.Errorf("-ack %q: want primary, primary+K (K standbys), quorum or all", s)
}

// ackStandbys returns the standbys (of n) that must apply a write at ack.
func ackStandbys(ack replicate.Ack, n int) int {
	switch ack {
	case replicate.AckQuorum:
		return (n + 1) / 2
	case replicate.AckAll:
		return n
	}
	var k int
	_, _ = fmt.Sscanf(ack.String(), "primary+%d", &k)
	return k
}

// promremoteOptions returns the options of a remote-write store.
func (c *config) promremoteOptions() (*promremote.Options, error) {
	o := &promremote.Options{Username: c.prwUser, Password: c.prwPassword, BearerToken: c.prwToken, FlushURLs: splitList(c.prwFlush)}
	for _, h := range splitList(c.prwHeaders) {
		name, value, ok := strings.Cut(h, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("-promremote-headers: %q is not Name=value", h)
		}
		if o.Headers == nil {
			o.Headers = map[string]string{}
		}
		o.Headers[name] = value
	}
	return o, nil
}

// influxOptions returns the options of an InfluxDB store writing through
// api (v1 or v2). With v1 (servers before 1.8, which know no "Token"
// authorization) a token "user:password" is sent as HTTP basic auth.
func (c *config) influxOptions(api string) *influx.Options {
	o := &influx.Options{Database: c.influxDB, Token: c.influxToken}
	if user, pass, ok := strings.Cut(c.influxToken, ":"); ok && api == "v1" {
		o.Token, o.Username, o.Password = "", user, pass
	}
	if api == "v1" {
		o.WriteAPI = influx.WriteV1
	}
	return o
}
