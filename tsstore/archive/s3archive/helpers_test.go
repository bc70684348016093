package s3archive_test

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/tsstore/archive/s3archive"
)

// testBucket is the bucket the tests share on the server of
// scripts/test.sh; every archive gets its own prefix in it.
const testBucket = "hourglass-s3archive-test"

// s3Server is an S3 endpoint with its credentials.
type s3Server struct {
	endpoint, key, secret string
}

// sharedServer returns the test script's server (skipping the test, or
// failing it in CI, without one).
func sharedServer(t testing.TB) s3Server {
	t.Helper()
	e, k, s := servertest.S3(t)
	return s3Server{e, k, s}
}

// uniquePrefix returns a fresh key prefix named after the test.
func uniquePrefix(t testing.TB) string {
	var b [4]byte
	_, _ = crand.Read(b[:])
	name := regexp.MustCompile(`[^a-zA-Z0-9_-]+`).ReplaceAllString(t.Name(), "_")
	return "t/" + name + "-" + hex.EncodeToString(b[:]) + "/"
}

// openArchive opens an archive on srv under prefix in testBucket (created
// when missing), closed when the test ends.
func openArchive(t testing.TB, srv s3Server, prefix string, opts *s3archive.Options) *s3archive.Archive {
	t.Helper()
	o := s3archive.Options{}
	if opts != nil {
		o = *opts
	}
	if o.AccessKey == "" {
		o.AccessKey, o.SecretKey = srv.key, srv.secret
	}
	o.CreateBucket = true
	a, err := s3archive.Open(context.Background(), srv.endpoint, testBucket, prefix, &o)
	if err != nil {
		t.Fatalf("Open(%s, %s, %s): %v", srv.endpoint, testBucket, prefix, err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

// rawClient is a plain minio client on srv, for looking at (and damaging)
// what the archive stored, or planting what it would find; testBucket
// exists.
func rawClient(t testing.TB, srv s3Server) *minio.Client {
	t.Helper()
	tr, err := minio.DefaultTransport(false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	c, err := minio.New(srv.endpoint, &minio.Options{Creds: credentials.NewStaticV4(srv.key, srv.secret, ""), Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if ok, err := c.BucketExists(ctx, testBucket); err != nil {
		t.Fatal(err)
	} else if !ok {
		if err := c.MakeBucket(ctx, testBucket, minio.MakeBucketOptions{}); err != nil {
			// Another test's archive may have made it meanwhile.
			if ok, _ := c.BucketExists(ctx, testBucket); !ok {
				t.Fatal(err)
			}
		}
	}
	return c
}

// getObject returns the bytes and the information of the object key.
func getObject(t testing.TB, raw *minio.Client, key string) ([]byte, minio.ObjectInfo) {
	t.Helper()
	obj, err := raw.GetObject(context.Background(), testBucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	info, err := obj.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return b, info
}

// listKeys lists every object key under prefix.
func listKeys(t testing.TB, c *minio.Client, bucket, prefix string) []string {
	t.Helper()
	var keys []string
	for obj := range c.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			t.Fatalf("list %s/%s: %v", bucket, prefix, obj.Err)
		}
		keys = append(keys, obj.Key)
	}
	return keys
}

// base is 2026-01-01T00:00Z in ms.
var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

// workload makes the points of a flush: metrics views/orders/revenue, 1000
// merchants, 20 pages, timestamps in [from, from+span), integer values.
// The same arguments give the same points.
type workload struct {
	labels [][]tsstore.Labels // [merchant][page]
}

func newWorkload() *workload {
	w := &workload{}
	for m := 0; m < 1000; m++ {
		var row []tsstore.Labels
		for p := 0; p < 20; p++ {
			ls, err := tsstore.NewLabels("merchant", fmt.Sprintf("m%04d", m), "page", fmt.Sprintf("/page/%d", p))
			if err != nil {
				panic(err)
			}
			row = append(row, ls)
		}
		w.labels = append(w.labels, row)
	}
	return w
}

var metrics = []string{"views", "orders", "revenue"}

// points returns n points; noisy ones (random values and a random "req"
// label) hardly compress: about 40 bytes a point.
func (w *workload) points(seed uint64, n int, from, span int64, noisy bool) []tsstore.Point {
	r := rand.New(rand.NewPCG(seed, 7))
	ps := make([]tsstore.Point, n)
	for i := range ps {
		v := float64(r.IntN(10000))
		ls := w.labels[r.IntN(len(w.labels))][r.IntN(20)]
		if noisy {
			v = r.Float64()
			ls = append(ls[:len(ls):len(ls)], tsstore.Label{Name: "req", Value: fmt.Sprintf("%016x%08x", r.Uint64(), r.Uint32())})
		}
		ps[i] = tsstore.Point{
			Metric:    metrics[r.IntN(len(metrics))],
			Labels:    ls,
			Timestamp: from + r.Int64N(span),
			Value:     v,
		}
	}
	return ps
}

func idOf(source string, gen uint64, shard int, ps []tsstore.Point) archive.SegmentID {
	id := archive.SegmentID{Source: source, Generation: gen, Shard: shard, MinTime: ps[0].Timestamp, MaxTime: ps[0].Timestamp}
	for _, p := range ps {
		id.MinTime = min(id.MinTime, p.Timestamp)
		id.MaxTime = max(id.MaxTime, p.Timestamp)
	}
	return id
}

func mustAppend(t testing.TB, a archive.Archive, id archive.SegmentID, ps []tsstore.Point) archive.SegmentInfo {
	t.Helper()
	info, err := a.Append(context.Background(), id, ps)
	if err != nil {
		t.Fatalf("Append(%s): %v", id.Name(), err)
	}
	return info
}

func readAll(ctx context.Context, a archive.Archive, name string) ([]tsstore.Point, error) {
	var out []tsstore.Point
	err := a.Read(ctx, name, func(p tsstore.Point) error { out = append(out, p); return nil })
	return out, err
}

func count(ctx context.Context, a archive.Archive, r archive.ScanRequest) (int, error) {
	n := 0
	err := a.Scan(ctx, r, func(tsstore.Point) error { n++; return nil })
	return n, err
}

// versitygw is a private versitygw process (posix backend) that a test
// can kill and restart on the same port and directory.
type versitygw struct {
	bin, dir string
	srv      s3Server
	cmd      *exec.Cmd
	log      *os.File
}

// startVersitygw starts a private versitygw on a free port; the binary is
// $HOURGLASS_S3_BINARY (set by scripts/test.sh) or versitygw on $PATH or in
// $(go env GOPATH)/bin.
func startVersitygw(t *testing.T) *versitygw {
	t.Helper()
	bin := os.Getenv("HOURGLASS_S3_BINARY")
	if bin == "" {
		bin, _ = exec.LookPath("versitygw")
	}
	if bin == "" {
		if home, err := os.UserHomeDir(); err == nil {
			if p := filepath.Join(home, "go", "bin", "versitygw"); fileExists(p) {
				bin = p
			}
		}
	}
	if bin == "" {
		servertest.Missing(t, "the versitygw binary", "set HOURGLASS_S3_BINARY or go install github.com/versity/versitygw/cmd/versitygw@v1.8.0")
	}
	dir := t.TempDir()
	g := &versitygw{bin: bin, dir: dir, srv: s3Server{
		endpoint: "127.0.0.1:" + strconv.Itoa(servertest.FreePort(t)),
		key:      "killtest", secret: "killtest-secret-key",
	}}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	var err error
	if g.log, err = os.Create(filepath.Join(dir, "versitygw.log")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.kill(); _ = g.log.Close() })
	if err := g.start(); err != nil {
		t.Fatal(err)
	}
	return g
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func (g *versitygw) start() error {
	g.cmd = exec.Command(g.bin, "--port", g.srv.endpoint, "posix", filepath.Join(g.dir, "data"))
	g.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+g.srv.key, "ROOT_SECRET_KEY="+g.srv.secret)
	g.cmd.Stdout, g.cmd.Stderr = g.log, g.log
	if err := g.cmd.Start(); err != nil {
		return fmt.Errorf("start versitygw: %w", err)
	}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if servertest.Reachable(g.srv.endpoint) {
			return nil
		}
	}
	g.kill()
	log, _ := os.ReadFile(g.log.Name())
	return fmt.Errorf("versitygw on %s did not answer within 20s; log:\n%s", g.srv.endpoint, log)
}

// kill stops the server with SIGKILL and waits for it to exit.
func (g *versitygw) kill() {
	if g.cmd != nil && g.cmd.Process != nil {
		_ = g.cmd.Process.Kill()
		_ = g.cmd.Wait()
		g.cmd = nil
	}
}

// hookTransport is an http.RoundTripper that calls hook with the number
// of request body bytes sent so far (over all requests) as they are read,
// and can answer requests itself (fail) before they reach the server.
type hookTransport struct {
	rt   http.RoundTripper
	sent func(total int64)
	fail func(*http.Request) *http.Response
	n    atomic.Int64
}

func (h *hookTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if h.fail != nil {
		if res := h.fail(req); res != nil {
			if req.Body != nil {
				_ = req.Body.Close()
			}
			return res, nil
		}
	}
	if h.sent != nil && req.Body != nil && req.Body != http.NoBody {
		req = req.Clone(req.Context())
		req.Body = &countingBody{ReadCloser: req.Body, h: h}
	}
	return h.rt.RoundTrip(req)
}

type countingBody struct {
	io.ReadCloser
	h *hookTransport
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.h.sent(b.h.n.Add(int64(n)))
	return n, err
}

// errorReply is an S3 error response with the given status and code.
func errorReply(req *http.Request, status int, code string) *http.Response {
	body := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>` + code + `</Code><Message>injected by the test</Message></Error>`
	return &http.Response{
		StatusCode: status, Status: strconv.Itoa(status) + " " + http.StatusText(status),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/xml"}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}
