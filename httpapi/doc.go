// Package httpapi is the HTTP layer of an analytics server on a write-back
// engine, to mount in a Go program's own mux: ingest endpoints (JSON or
// NDJSON events, InfluxDB 1.x and 2.x line protocol, gzip, body limits),
// token authentication bound to a merchant, per-merchant rate limits, and
// a query API over the engine's exact merge of cache and store.
//
//	POST /v1/events           events in a format of the program's (Options.DecodeEvent):
//	                          a JSON array (application/json) or NDJSON (application/x-ndjson)
//	POST /write               InfluxDB 1.x line protocol (?precision=; Telegraf's influxdb output)
//	POST /api/v2/write        InfluxDB 2.x line protocol (influxdb-client-go, Telegraf's influxdb_v2)
//	GET  /v1/metrics/{metric} from, to, step, agg, group_by, label.<name>=<value>
//
// New returns an API over an Engine (*writeback.Engine) and a Tokens
// (*TokenFile, or the program's own); it is an http.Handler, and Register
// mounts its routes on an existing http.ServeMux next to the program's
// own. TokenOf, Admin, WriteError and WriteJSON serve the program's own
// endpoints the same way.
//
// A request's merchant is the one its token names (TokenOf: Authorization
// "Bearer <t>" or "Token <t>", or the basic-auth password; POST /write also
// takes InfluxDB 1.x's ?p=, which every other route refuses with 401, since
// a URL ends up in logs). Every ingested point gets the label
// merchant=<that merchant> (line protocol naming another merchant is
// refused) and every query carries the matcher merchant=<that merchant>,
// so a merchant reads and writes only its own series. One request is one
// Engine.Write: all of its points are kept, or none.
//
// An Engine that is also a DetailedEngine (*writeback.Engine with
// Options.Peers: the other servers of a cluster) names the peers an answer
// lacks: GET /v1/metrics then says "partial": true and lists them in
// "missing_peers".
//
// Line protocol fields become metrics named measurement_field (measurement
// alone for a field "value"), tags become labels, booleans count as 1 and
// 0, string fields are skipped; parsing uses InfluxData's maintained
// zero-allocation decoder (github.com/influxdata/line-protocol/v2), with
// series interned so that a repeated series is validated once per request
// (package internal/lineproto). Event bodies are split into events in
// place by a scanner (package internal/jsonscan), not by encoding/json;
// DecodeEvents does the same for a program's own sources of events.
//
// # Concurrency
//
// An API, a TokenFile and a Metrics are safe for concurrent use. An
// EventDecoder and the methods of an Engine and of a Tokens are called
// concurrently by requests. The API starts no goroutine.
//
// # Errors
//
// Answers are JSON; an error is {"error": msg, "code": c, "message": msg},
// the form InfluxDB 2.x clients read. Malformed input gets 400 naming the
// event's index (JSON array, from 0) or line (NDJSON and line protocol,
// from 1) and the field; a missing or invalid token 401 with
// WWW-Authenticate; a body over Options.MaxBody (before or after gzip
// decoding) 413; an unknown Content-Type 415; a merchant over its rate 429
// with Retry-After. Engine errors are answered by their tsstore kind
// (WriteError): ErrInvalid 400, ErrConflict 409, ErrBackPressure and
// ErrUnavailable 503 with Retry-After, ErrClosed 503, anything else 500
// (logged).
package httpapi
