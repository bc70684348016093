package influx

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	http2 "github.com/influxdata/influxdb-client-go/v2/api/http"

	"github.com/hourglass-io/hourglass/internal/httpretry"
	"github.com/hourglass-io/hourglass/tsstore"
)

// postBatch sends one batch of lines through the configured write API.
func (s *Store) postBatch(ctx context.Context, body []byte) *httpretry.Failure {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if s.opts.WriteAPI == WriteV1 {
		return s.postV1(ctx, body)
	}
	// The blocking write API sends one request per call, without retries
	// of its own (those are ours, below); it gzips when configured.
	err := s.writeV2.WriteRecord(ctx, string(bytes.TrimSuffix(body, []byte("\n"))))
	if err == nil {
		return nil
	}
	var he *http2.Error
	if errors.As(err, &he) && he.StatusCode != 0 {
		msg := he.Message
		if he.Code != "" && !strings.Contains(msg, he.Code) {
			msg = he.Code + ": " + msg
		}
		return &httpretry.Failure{Status: he.StatusCode, Msg: msg, RetryAfter: time.Duration(he.RetryAfter) * time.Second, Err: he}
	}
	return &httpretry.Failure{Err: err}
}

// gzipper compresses request bodies; pooled, because a gzip.Writer holds
// about a megabyte of compressor state that NewWriter allocates and clears.
type gzipper struct {
	w      *gzip.Writer
	buf    bytes.Buffer
	rd     bytes.Reader
	closed atomic.Bool
}

func (z *gzipper) Read(p []byte) (int, error) { return z.rd.Read(p) }

// Close returns z to the pool, once.
func (z *gzipper) Close() error {
	if z.closed.CompareAndSwap(false, true) {
		gzipPool.Put(z)
	}
	return nil
}

var gzipPool = sync.Pool{New: func() any { return &gzipper{w: gzip.NewWriter(nil)} }}

// postV1 POSTs body to the 1.x /write endpoint.
func (s *Store) postV1(ctx context.Context, body []byte) *httpretry.Failure {
	var rd io.Reader = bytes.NewReader(body)
	if !s.opts.DisableGzip {
		z := gzipPool.Get().(*gzipper)
		z.buf.Reset()
		z.w.Reset(&z.buf)
		_, _ = z.w.Write(body)
		_ = z.w.Close()
		z.rd.Reset(z.buf.Bytes())
		z.closed.Store(false)
		rd = z // the transport closes it, maybe after Do returns: then it is pooled again
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.v1WriteURL, rd)
	if err != nil {
		return &httpretry.Failure{Err: err}
	}
	if z, ok := rd.(*gzipper); ok {
		req.ContentLength = int64(z.rd.Len()) // not chunked
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	if !s.opts.DisableGzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	s.authorize(req)
	resp, err := s.http.Do(req)
	if err != nil {
		return &httpretry.Failure{Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	return failureOf(resp)
}

// failureOf reads an error answer of InfluxDB: {"error": "..."} (1.x),
// {"code": ..., "message": "..."} (2.x), or the X-Influxdb-Error header.
func failureOf(resp *http.Response) *httpretry.Failure {
	f := &httpretry.Failure{Status: resp.StatusCode}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body struct {
		Error   string `json:"error"`
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	switch {
	case json.Unmarshal(raw, &body) == nil && (body.Error != "" || body.Message != ""):
		f.Msg = body.Error
		if f.Msg == "" {
			f.Msg = strings.TrimPrefix(body.Code+": ", ": ") + body.Message
		}
	case resp.Header.Get("X-Influxdb-Error") != "":
		f.Msg = resp.Header.Get("X-Influxdb-Error")
	default:
		f.Msg = strings.TrimSpace(string(raw))
		if f.Msg == "" {
			f.Msg = resp.Status
		}
	}
	f.RetryAfter = httpretry.RetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return f
}

// authorize adds the configured credentials to a request of ours.
func (s *Store) authorize(req *http.Request) {
	switch {
	case s.opts.Token != "":
		req.Header.Set("Authorization", "Token "+s.opts.Token)
	case s.opts.Username != "":
		req.SetBasicAuth(s.opts.Username, s.opts.Password)
	}
}

// sendBatch sends one batch, retrying connection errors, 429 and 5xx with
// exponential backoff (or the server's Retry-After), and classifies the
// final failure. lines maps the batch's lines to the cells they encode, to
// name a rejected one.
func (s *Store) sendBatch(ctx context.Context, body []byte, cells []*tsstore.Cell, index []int) error {
	f, retries, err := s.retry.Do(ctx, func() *httpretry.Failure { return s.postBatch(ctx, body) })
	switch {
	case err != nil && f != nil:
		return fmt.Errorf("influx: write: waiting to retry after %v: %w", f, err)
	case err != nil:
		return fmt.Errorf("influx: write: %w", err)
	case f != nil:
		return s.classify(f, body, cells, index, retries)
	}
	return nil
}

var (
	fieldConflict = regexp.MustCompile(`on measurement "((?:[^"\\]|\\.)*)"`)
)

// classify turns the final failure of a batch into an error of a tsstore
// kind: 400 (a rejected or partial write) is ErrInvalid and names the
// rejected cell when the server's message lets us find it; everything else
// (connection refused, 5xx after the retries, 401, 404 database not found)
// is ErrUnavailable.
func (s *Store) classify(f *httpretry.Failure, body []byte, cells []*tsstore.Cell, index []int, retries int) error {
	if f.Status != http.StatusBadRequest {
		what := "server answered"
		if f.Status == 0 {
			what = "could not reach the server"
		}
		return tsstore.Errorf(tsstore.ErrUnavailable, "influx: write to %s (%s API, %d retries): %s: %w", s.url, s.opts.WriteAPI, retries, what, f)
	}
	name := "a line of the batch"
	lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	found := -1
	if strings.Contains(f.Msg, "unable to parse '") {
		for i, l := range lines {
			if strings.Contains(f.Msg, "'"+l+"'") {
				found = i
				break
			}
		}
	} else if m := fieldConflict.FindStringSubmatch(f.Msg); m != nil {
		for i, c := range cells {
			if c.Metric == m[1] {
				found = i
				break
			}
		}
	}
	if found >= 0 && found < len(cells) {
		c := cells[found]
		name = fmt.Sprintf("cell %d (%s, line %q)", index[found], c.IDString(), lines[found])
	}
	return tsstore.Errorf(tsstore.ErrInvalid, "influx: write: server rejected %s: %w", name, f)
}

// v1WriteURL returns the /write URL of a 1.x server.
func v1WriteURL(base *url.URL, db, rp string) string {
	u := base.JoinPath("write")
	q := url.Values{"db": {db}, "precision": {"ms"}}
	if rp != "" {
		q.Set("rp", rp)
	}
	u.RawQuery = q.Encode()
	return u.String()
}
