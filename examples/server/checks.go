package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/influx"
)

// startCheckTimeout bounds the checks of the backends at start, together:
// a wrong URL, wrong credentials or an unreachable server stop the start
// within it, with an error naming the flag and what was tried.
const startCheckTimeout = 7 * time.Second

// probeMetric is the metric of the cell the start writes to a remote store
// and reads back. It has no merchant label, so no merchant's query selects
// it, and one identity per UTC day: a later start rewrites the same cell
// with the same aggregate, which every store treats as a no-op.
const probeMetric = "hourglass_start_probe"

// probeStore writes the probe cell of now's day to s and reads it back.
func probeStore(ctx context.Context, s tsstore.Store, now time.Time) error {
	day := now.UTC().Truncate(24 * time.Hour).UnixMilli()
	ls, err := tsstore.NewLabels("check", "start")
	if err != nil {
		return err
	}
	cell := tsstore.Cell{Metric: probeMetric, Labels: ls, Start: day, Agg: tsstore.Agg{Count: 1, Sum: 1, Min: 1, Max: 1}}
	if err := s.Write(ctx, []tsstore.Cell{cell}); err != nil {
		return fmt.Errorf("writing a probe cell (%s at %s): %w", probeMetric, tsstore.TimeOf(day).Format(time.DateOnly), err)
	}
	cells, err := s.Cells(ctx, tsstore.Selector{Metric: probeMetric, From: day, To: day + s.CellWidth().Milliseconds()})
	if err != nil {
		return fmt.Errorf("reading the probe cell back: %w", err)
	}
	for _, c := range cells {
		if c.Start == day && c.Labels.Equal(ls) {
			return nil
		}
	}
	return fmt.Errorf("the probe cell (%s at %s) was written but a read does not return it", probeMetric, tsstore.TimeOf(day).Format(time.DateOnly))
}

// influxServer describes the InfluxDB server at base: whether it answers
// GET /ping, its version, and whether it has the v2 write API (a 404 from
// /api/v2/write that is not InfluxDB's own JSON "not found", such as a
// missing bucket, means the endpoint does not exist: InfluxDB before 1.8).
func influxServer(ctx context.Context, client *http.Client, base string) (version string, v2 bool, err error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.JoinPath("ping").String(), nil)
	if err != nil {
		return "", false, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", false, fmt.Errorf("GET /ping: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	version = resp.Header.Get("X-Influxdb-Version")
	if resp.StatusCode/100 != 2 || version == "" {
		return "", false, fmt.Errorf("GET /ping answered %s without an X-Influxdb-Version header: not an InfluxDB server", resp.Status)
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, u.JoinPath("api", "v2", "write").String()+"?bucket=hourglass-probe&precision=ms", nil)
	if err != nil {
		return "", false, err
	}
	resp, err = client.Do(req)
	if err != nil {
		return version, false, fmt.Errorf("POST /api/v2/write: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		return version, true, nil
	}
	var body struct {
		Code string `json:"code"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return version, json.Unmarshal(b, &body) == nil && body.Code != "", nil
}

// checkInflux checks the InfluxDB of -influx-url (or a standby's URL, named
// by flag) and returns the write API to use: api when set, else v2 where
// the server has it and v1 otherwise. It creates the database when
// missing, then writes the probe cell and reads it back through a store
// opened like the real one, without retries.
func checkInflux(ctx context.Context, c *config, flag, serverURL, api string) (string, error) {
	where := fmt.Sprintf("%s %s", flag, serverURL)
	client := &http.Client{Timeout: startCheckTimeout}
	defer client.CloseIdleConnections()
	version, v2, err := influxServer(ctx, client, serverURL)
	if err != nil {
		return "", fmt.Errorf("%s: no InfluxDB answers there: %w", where, err)
	}
	switch {
	case api == "" && v2:
		api = "v2"
	case api == "":
		api = "v1"
	case api == "v2" && !v2:
		return "", fmt.Errorf("-influx-write-api v2: InfluxDB %s at %s has no /api/v2/write (404; it came with 1.8): set -influx-write-api v1, or leave it empty to detect", version, serverURL)
	}
	o := c.influxOptions(api)
	o.MaxRetries, o.RequestTimeout, o.HTTPClient = -1, startCheckTimeout, client
	s, err := influx.Open(serverURL, o)
	if err != nil {
		return "", fmt.Errorf("%s: %w", where, err)
	}
	defer s.Close()
	blame := func(err error) error {
		flag := where
		if msg := err.Error(); strings.Contains(msg, "HTTP 401") || strings.Contains(msg, "HTTP 403") {
			flag = "-influx-token (" + tokenNote(c.influxToken) + ") at " + serverURL
		} else if strings.Contains(msg, "database not found") || strings.Contains(msg, "bucket") {
			flag = "-influx-db " + c.influxDB + " at " + serverURL
		}
		return fmt.Errorf("%s (InfluxDB %s, write API %s): %w", flag, version, api, err)
	}
	if err := s.EnsureDatabase(ctx); err != nil {
		return "", blame(fmt.Errorf("creating the database: %w", err))
	}
	if err := probeStore(ctx, s, time.Now()); err != nil {
		return "", blame(err)
	}
	return api, nil
}

func tokenNote(token string) string {
	if token == "" {
		return "empty"
	}
	return "set"
}

// checkDir checks that an archive directory is writable: it creates the
// directory and writes and removes a probe file in it.
func checkDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("-archive-dirs %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".start-probe-*")
	if err != nil {
		return fmt.Errorf("-archive-dirs %s: not writable: %w", dir, err)
	}
	name := f.Name()
	_, werr := f.Write([]byte("probe\n"))
	err = errors.Join(werr, f.Close(), os.Remove(name))
	if err != nil {
		return fmt.Errorf("-archive-dirs %s: writing %s: %w", dir, filepath.Base(name), err)
	}
	return nil
}

// pingRedis checks that the Redis of -redis-addr answers PING, which also
// checks -redis-password (the client authenticates on connecting).
func pingRedis(ctx context.Context, client redis.UniversalClient, c *config) error {
	if err := client.Ping(ctx).Err(); err != nil {
		flag := "-redis-addr " + c.redisAddrs
		if msg := strings.ToUpper(err.Error()); strings.Contains(msg, "AUTH") || strings.Contains(msg, "PASS") {
			flag = "-redis-password (" + tokenNote(c.redisPassword) + ") at " + c.redisAddrs
		} else if c.redisMaster != "" {
			flag += " (-redis-master " + c.redisMaster + ")"
		}
		return fmt.Errorf("%s: PING: %w", flag, err)
	}
	return nil
}

// dialAMQP checks that the RabbitMQ of -amqp-url accepts a connection with
// its credentials; the consumer then connects on its own.
func dialAMQP(ctx context.Context, rawURL string) error {
	timeout := startCheckTimeout
	if deadline, ok := ctx.Deadline(); ok {
		timeout = time.Until(deadline)
	}
	conn, err := amqp.DialConfig(rawURL, amqp.Config{Dial: amqp.DefaultDial(timeout), Heartbeat: 10 * time.Second})
	if err != nil {
		return fmt.Errorf("-amqp-url %s: connecting: %w", redactURL(rawURL), err)
	}
	return conn.Close()
}

// dialS3 checks that something listens at the S3 endpoint (host:port or a
// URL), so that an endpoint nobody serves fails at once rather than after
// the archive's retries.
func dialS3(ctx context.Context, endpoint string) error {
	hostport := endpoint
	if u, err := url.Parse(endpoint); err == nil && u.Host != "" {
		hostport = u.Host
	}
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		return nil // the default port of the scheme: left to the archive
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return fmt.Errorf("-s3-endpoint %s: %w", endpoint, err)
	}
	return conn.Close()
}

// checkS3Error names the flags of an S3 archive that failed to open.
func checkS3Error(c *config, err error) error {
	where := "-s3-endpoint " + c.s3Endpoint + " -s3-bucket " + c.s3Bucket
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("no answer within %v: %w", startCheckTimeout, err)
	}
	for _, s := range []string{"AccessKey", "Signature", "Access Denied", "AccessDenied", "credential", "403"} {
		if strings.Contains(err.Error(), s) {
			where = "-s3-access-key/-s3-secret-key (access key " + c.s3AccessKey + ") at " + where
			break
		}
	}
	return fmt.Errorf("%s: %w", where, err)
}

// redactURL returns rawURL without its password.
func redactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// redisLog sends go-redis's own log lines (such as a pool's failed dials,
// which the errors returned say as well) to the server's log at debug
// level, so that a failed start ends with one line.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
