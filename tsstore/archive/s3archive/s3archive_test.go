package s3archive_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/hourglass-io/hourglass/internal/servertest"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/tsstore/archive/archivetest"
	"github.com/hourglass-io/hourglass/tsstore/archive/internal/segment"
	"github.com/hourglass-io/hourglass/tsstore/archive/s3archive"
)

// TestThrottlingRetried answers a third of the requests with 503 SlowDown
// or 429 before they reach the server: appends, reads and scans still
// succeed; without retries they fail as unavailable.
func TestThrottlingRetried(t *testing.T) {
	srv := sharedServer(t)
	tr, err := minio.DefaultTransport(false)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	var calls, injected atomic.Int64
	var quiet atomic.Bool // no injection while set
	hook := &hookTransport{rt: tr, fail: func(req *http.Request) *http.Response {
		if quiet.Load() {
			return nil
		}
		switch calls.Add(1) % 6 {
		case 1:
			injected.Add(1)
			return errorReply(req, http.StatusServiceUnavailable, "SlowDown")
		case 4:
			injected.Add(1)
			return errorReply(req, http.StatusTooManyRequests, "TooManyRequests")
		}
		return nil
	}}
	prefix := uniquePrefix(t)
	a := openArchive(t, srv, prefix, &s3archive.Options{Transport: hook, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	w := newWorkload()
	var all []tsstore.Point
	for i := 0; i < 4; i++ {
		ps := w.points(uint64(i), 2000, base+int64(i)*60_000, 60_000, false)
		info := mustAppend(t, a, idOf("throttled", uint64(i), 0, ps), ps)
		checkSegment(t, a, info.Name, ps)
		all = append(all, ps...)
	}
	n, err := count(context.Background(), a, archive.ScanRequest{From: 0, To: tsstore.MaxTimestamp})
	if err != nil || n != len(all) {
		t.Errorf("Scan under throttling: %d points, %v; want %d", n, err, len(all))
	}
	if injected.Load() == 0 {
		t.Fatal("no failure was injected")
	}
	t.Logf("%d of %d requests answered with 503 or 429", injected.Load(), calls.Load())

	quiet.Store(true)
	once := openArchive(t, srv, prefix, &s3archive.Options{Transport: hook, MaxAttempts: 1})
	quiet.Store(false)
	var failed error
	for i := 0; i < 6 && failed == nil; i++ { // one of six requests fails
		_, failed = once.Stat(context.Background())
	}
	if !errors.Is(failed, tsstore.ErrUnavailable) || !strings.Contains(failed.Error(), "SlowDown") && !strings.Contains(failed.Error(), "TooManyRequests") {
		t.Errorf("without retries: got %v, want ErrUnavailable naming the throttling", failed)
	}
}

// TestAccessDenied opens with a wrong secret: the error says access
// denied, and the request is not retried.
func TestAccessDenied(t *testing.T) {
	srv := sharedServer(t)
	tr, err := minio.DefaultTransport(false)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	var calls atomic.Int64
	hook := &hookTransport{rt: tr, fail: func(*http.Request) *http.Response { calls.Add(1); return nil }}
	_, err = s3archive.Open(context.Background(), srv.endpoint, testBucket, "denied", &s3archive.Options{
		AccessKey: srv.key, SecretKey: srv.secret + "-wrong", Region: "us-east-1", Transport: hook, MaxAttempts: 5})
	if !errors.Is(err, s3archive.ErrAccessDenied) || !errors.Is(err, tsstore.ErrUnavailable) {
		t.Fatalf("Open with a wrong secret: got %v, want ErrAccessDenied", err)
	}
	if calls.Load() != 1 {
		t.Errorf("%d requests, want 1: a refusal is not retried", calls.Load())
	}
	t.Logf("the error: %v", err)
}

// TestUnreachable opens on a port where nothing listens.
func TestUnreachable(t *testing.T) {
	endpoint := "127.0.0.1:" + itoa(servertest.FreePort(t))
	_, err := s3archive.Open(context.Background(), endpoint, testBucket, "", &s3archive.Options{
		AccessKey: "k", SecretKey: "secret-key", Region: "us-east-1", MaxAttempts: 3, MinBackoff: time.Millisecond})
	if !errors.Is(err, tsstore.ErrUnavailable) || !tsstore.IsRetryable(err) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("Open of a dead endpoint: got %v, want a retryable ErrUnavailable saying connection refused", err)
	}
}

func TestInvalidOptions(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		endpoint, prefix string
		opts             *s3archive.Options
	}{
		{"ftp://host", "", nil},
		{"127.0.0.1:1", "/abs", nil},
		{"127.0.0.1:1", "a//b", nil},
		{"127.0.0.1:1", "", &s3archive.Options{PartSize: 1 << 20}},
	} {
		if _, err := s3archive.Open(ctx, tc.endpoint, testBucket, tc.prefix, tc.opts); !errors.Is(err, tsstore.ErrInvalid) {
			t.Errorf("Open(%q, %q, %+v): got %v, want ErrInvalid", tc.endpoint, tc.prefix, tc.opts, err)
		}
	}
	srv := sharedServer(t)
	_, err := s3archive.Open(ctx, srv.endpoint, "no-such-bucket-hourglass", "", &s3archive.Options{AccessKey: srv.key, SecretKey: srv.secret})
	if !errors.Is(err, tsstore.ErrInvalid) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Open of a missing bucket: got %v, want ErrInvalid", err)
	}
}

// TestCorruption alters, truncates and removes segment objects behind the
// archive's back (the test's own client, not the archive, deletes) and
// garbles a manifest entry: every read fails with archive.ErrCorrupt
// naming the segment.
func TestCorruption(t *testing.T) {
	srv := sharedServer(t)
	ctx := context.Background()
	prefix := uniquePrefix(t)
	a := openArchive(t, srv, prefix, nil)
	raw := rawClient(t, srv)
	w := newWorkload()
	put := func(key string, data []byte) {
		t.Helper()
		if _, err := raw.PutObject(ctx, testBucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(key string) []byte {
		t.Helper()
		b, _ := getObject(t, raw, key)
		return b
	}
	for i, damage := range []struct {
		name string
		do   func(key string)
	}{
		{"flipped byte", func(key string) { b := get(key); b[len(b)/2] ^= 1; put(key, b) }},
		{"truncated", func(key string) { b := get(key); put(key, b[:len(b)-10]) }},
		{"grown", func(key string) { put(key, append(get(key), 0)) }},
		{"removed", func(key string) {
			if err := raw.RemoveObject(ctx, testBucket, key, minio.RemoveObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		ps := w.points(uint64(i), 500, base+int64(i)*3_600_000, 60_000, false)
		info := mustAppend(t, a, idOf("corrupt", uint64(i), 0, ps), ps)
		damage.do(prefix + info.Name)
		_, err := readAll(ctx, a, info.Name)
		if !errors.Is(err, archive.ErrCorrupt) || !strings.Contains(err.Error(), info.Name) {
			t.Errorf("%s: Read: got %v, want ErrCorrupt naming %s", damage.name, err, info.Name)
		}
		_, err = count(ctx, a, archive.ScanRequest{From: info.ID.MinTime, To: info.ID.MaxTime + 1})
		if !errors.Is(err, archive.ErrCorrupt) {
			t.Errorf("%s: Scan: got %v, want ErrCorrupt", damage.name, err)
		}
	}
	// A garbled manifest entry written by someone else.
	ps := w.points(9, 10, base, 1000, false)
	id := idOf("garbled", 1, 0, ps)
	put(prefix+"manifest/"+id.Name()+".json", []byte(`{"name": "nope"`))
	if _, err := a.Stat(ctx); !errors.Is(err, archive.ErrCorrupt) || !strings.Contains(err.Error(), id.Name()) {
		t.Errorf("Stat with a garbled manifest entry: got %v, want ErrCorrupt naming it", err)
	}
}

// TestUnlistedObject finds a segment object without a manifest entry (a
// writer that crashed between the two): the same points adopt it, other
// points conflict and leave it, unlisted, as it is; an object of this
// version, and one of b2a3712 (its content digest of version 1).
func TestUnlistedObject(t *testing.T) {
	srv := sharedServer(t)
	ctx := context.Background()
	raw := rawClient(t, srv)
	w := newWorkload()
	now := w.points(1, 1000, base, 60_000, false)
	nowID := idOf("orphan", 1, 0, now)
	nowData, err := segment.Prepare(now).EncodeBytes(nowID.Name(), segment.Digest(now), segment.EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v1 := archivetest.V1(t)
	for _, tc := range []struct {
		name  string
		id    archive.SegmentID
		ps    []tsstore.Point
		data  []byte
		plant func(prefix string)
	}{
		{"now", nowID, now, nowData, func(prefix string) {
			if _, err := raw.PutObject(ctx, testBucket, prefix+nowID.Name(), bytes.NewReader(nowData), int64(len(nowData)), minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		}},
		{"version 1", v1.ID, v1.Points, v1.File, func(prefix string) { plantV1(t, raw, prefix, v1, false) }},
	} {
		for _, same := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/same %v", tc.name, same), func(t *testing.T) {
				unlisted(t, srv, raw, tc.id, tc.ps, tc.data, tc.plant, same)
			})
		}
	}
}

// unlisted plants a segment object of points ps and bytes data with plant,
// unlisted, then appends ps (same) or other points of id.
func unlisted(t *testing.T, srv s3Server, raw *minio.Client, id archive.SegmentID, ps []tsstore.Point, data []byte, plant func(prefix string), same bool) {
	ctx := context.Background()
	prefix := uniquePrefix(t)
	plant(prefix)
	a := openArchive(t, srv, prefix, nil)
	if st, _ := a.Stat(ctx); st.Segments != 0 {
		t.Fatalf("an unlisted object is visible: %+v", st)
	}
	if same {
		info := mustAppend(t, a, id, ps)
		if sum := sha256.Sum256(data); info.Checksum != hex.EncodeToString(sum[:]) || info.Bytes != int64(len(data)) {
			t.Errorf("adopted %+v, want the object's checksum and size", info)
		}
		checkSegment(t, a, info.Name, ps)
		return
	}
	other := append([]tsstore.Point(nil), ps...)
	other[0].Value++
	if _, err := a.Append(ctx, id, other); !errors.Is(err, tsstore.ErrConflict) || !strings.Contains(err.Error(), id.Name()) {
		t.Errorf("Append of other points over an unlisted object: got %v, want ErrConflict naming it", err)
	}
	if st, _ := a.Stat(ctx); st.Segments != 0 {
		t.Errorf("after the conflict: %+v, want nothing listed", st)
	}
	if keys := listKeys(t, raw, testBucket, prefix); len(keys) != 1 {
		t.Errorf("after the conflict the bucket holds %v, want the unlisted object alone", keys)
	}
}

// TestWritersRace has two Archives (two processes, as far as the bucket
// can tell) append the same names at once, one with other points than the
// other: each name is won by exactly one of them, both then read the
// winner's points, and neither finds anything corrupt.
func TestWritersRace(t *testing.T) {
	srv := sharedServer(t)
	ctx := context.Background()
	prefix := uniquePrefix(t)
	archives := []*s3archive.Archive{openArchive(t, srv, prefix, nil), openArchive(t, srv, prefix, nil)}
	w := newWorkload()
	const names = 8
	type result struct {
		info archive.SegmentInfo
		err  error
	}
	results := make([][2]result, names)
	points := make([][2][]tsstore.Point, names)
	var wg sync.WaitGroup
	for i := 0; i < names; i++ {
		ps := w.points(uint64(i), 2000, base+int64(i)*60_000, 60_000, false)
		other := append([]tsstore.Point(nil), ps...)
		other[i].Value = -1
		points[i] = [2][]tsstore.Point{ps, other}
		id := idOf("race", uint64(i), 0, ps)
		for j := range archives {
			wg.Add(1)
			go func() {
				defer wg.Done()
				info, err := archives[j].Append(ctx, id, points[i][j])
				results[i][j] = result{info, err}
			}()
		}
	}
	wg.Wait()
	for i := 0; i < names; i++ {
		won := -1
		for j, r := range results[i] {
			switch {
			case r.err == nil:
				if won >= 0 {
					t.Fatalf("name %d: both writers won", i)
				}
				won = j
			case !errors.Is(r.err, tsstore.ErrConflict):
				t.Fatalf("name %d, writer %d: %v", i, j, r.err)
			}
		}
		if won < 0 {
			t.Fatalf("name %d: no writer won: %v, %v", i, results[i][0].err, results[i][1].err)
		}
		for _, a := range archives {
			checkSegment(t, a, results[i][won].info.Name, points[i][won])
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
