// Package balancer picks a backend for each request: an HTTP upstream, a
// tsstore.Store replica, anything. It is the application and database load
// balancer of hourglass, as a library, after Envoy's load balancers and
// outlier detection, Finagle's and Linkerd's peak-EWMA power of two choices
// and HAProxy's bounded-load consistent hashing.
//
// A [Balancer] holds backends ([Backend]: ID, value, weight) and a [Policy]:
//
//   - [RoundRobin]: in turn, unweighted.
//   - [WeightedRoundRobin]: nginx's smooth weighted round robin.
//   - [LeastConnections]: fewest requests in flight per unit of weight.
//   - [PeakEWMA]: power of two choices over a peak-sensitive moving average
//     of latency times requests in flight; failures count as slow.
//   - [ConsistentHash]: key affinity (a merchant stays on one backend) by a
//     ring hash with virtual nodes and bounded load, so hot keys spill over.
//
// [Balancer.Pick] returns a [Conn]; the caller sends its request to
// Conn.Backend() and completes the Conn with Done(err) (or Report with its
// own latency, or Release), which is how least connections, peak EWMA and
// outlier detection learn.
//
// # Choosing the ring hash over Maglev
//
// ConsistentHash uses a ring hash with virtual nodes (100 per unit of
// weight) rather than Maglev. Maglev's lookup table spreads keys a little
// more evenly and answers in O(1), but a membership change moves somewhat
// more than the minimum share of keys, and the bounded-load algorithm of
// Mirrokni, Thorup and Zadimoghaddam is defined as a walk along the ring (as
// in HAProxy's hash-balance-factor): a backend over its bound passes the
// key to the next one on the ring, so the spill-over is itself consistent.
// With bounded load the balance problem that Maglev solves is handled by
// the bound. Removing one of N backends moves about 1/N of the keys (only
// the removed backend's keys; see TestConsistentHashKeyMovement).
//
// # Health
//
// Active checks: with Options.Probe, a goroutine of the balancer probes
// every backend each CheckInterval (bounded by CheckTimeout); Fall failures
// in a row make a backend unhealthy, Rise successes in a row healthy again.
// Passive outlier detection: ConsecutiveFailures failed requests in a row
// eject a backend for BaseEjectionTime × (its ejections in a row), capped at
// MaxEjectionTime, never ejecting more than MaxEjectionPercent of the
// backends (at least one). Panic threshold: when fewer than PanicThreshold
// percent of the backends are usable, picks ignore health and use all of
// them. Slow start: a backend that joins ramps its weight up over
// SlowStart. Options.Now injects the clock, so ejection and slow start can
// be tested (and simulated) without sleeping.
//
// Backends are added and removed at run time; picks read an immutable
// snapshot swapped atomically (copy on write), so membership and health
// changes never block a pick or disturb a request in flight.
//
// [StoreRouter] routes the reads of tsstore.Store replicas by the policy,
// retrying on another replica after a retryable error. Package
// balancer/proxy is an HTTP reverse proxy over a Balancer of upstream URLs.
// [Balancer.Collector] exports the state as Prometheus metrics, opt-in.
//
// # Concurrency
//
// Balancer, StoreRouter and the collector are safe for concurrent use. A
// Conn belongs to one request: complete it once. Health checks run on the
// balancer's own goroutine, stopped and waited for by Close.
//
// # Errors
//
// Picks fail with an error of kind tsstore.ErrUnavailable that says why
// when no backend is usable (none registered, all unhealthy, all ejected,
// none eligible), and with tsstore.ErrClosed after Close. Add fails with
// ErrInvalid (empty ID, negative weight) or ErrConflict (duplicate ID).
// StoreRouter wraps the replicas' errors; when every attempt failed the
// error is of kind ErrUnavailable and wraps the last replica's error.
package balancer
