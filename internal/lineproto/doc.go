// Package lineproto decodes InfluxDB line protocol (1.x and 2.x are the same
// format) into hourglass points, for the servers' /write endpoints.
//
// It is built on the zero-allocation decoder of
// github.com/influxdata/line-protocol/v2/lineprotocol and interns what
// repeats: a series (a merchant and a line's tags) is sanitized, sorted and
// validated once and then shared by every point of it, across lines and
// requests, and so is a metric name. A request of lines of known series
// allocates little more than its points.
//
// # Concurrency
//
// Decode is safe for concurrent use; a Decoder is not.
//
// # Errors
//
// Errors are of kind tsstore.ErrInvalid and name the line, from 1.
package lineproto
