package s3archive_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/tsstore/archive/internal/segment"
	"github.com/hourglass-io/hourglass/tsstore/archive/s3archive"
)

// TestServerKilledDuringUpload kills a private versitygw with SIGKILL
// while a multipart upload of a large segment is under way: the Append
// fails as unavailable and nothing of the segment is visible, neither to
// the archive nor in a listing of the bucket; after a restart the same
// Append succeeds. Then a second kill, with the server restarted while the
// archive still retries: that Append succeeds on its own.
func TestServerKilledDuringUpload(t *testing.T) {
	g := startVersitygw(t)
	ctx := context.Background()
	const partSize = 5 << 20
	w := newWorkload()
	// Noisy points hardly compress: about 40 bytes a point, so two parts.
	ps := w.points(1, 200_000, base, 2_700_000, true)
	id := idOf("kill", 1, 0, ps)

	tr, err := minio.DefaultTransport(false)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	var (
		mu      sync.Mutex
		armedAt int64  = -1 // bytes sent when armed; -1: disarmed
		onKill  func()      // what to do right after the kill
		killed  = make(chan struct{}, 2)
	)
	hook := &hookTransport{rt: tr, sent: func(total int64) {
		mu.Lock()
		defer mu.Unlock()
		if armedAt >= 0 && total-armedAt > 3<<20 { // inside the first part
			armedAt = -1
			g.kill()
			killed <- struct{}{}
			if onKill != nil {
				onKill()
			}
		}
	}}
	arm := func(after func()) {
		mu.Lock()
		armedAt, onKill = hook.n.Load(), after
		mu.Unlock()
	}
	prefix := uniquePrefix(t)
	opts := &s3archive.Options{Transport: hook, PartSize: partSize, MaxAttempts: 2, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}
	a := openArchive(t, g.srv, prefix, opts)

	arm(nil)
	_, err = a.Append(ctx, id, ps)
	select {
	case <-killed:
	default:
		t.Fatalf("the server was not killed during the upload (Append: %v)", err)
	}
	if !errors.Is(err, tsstore.ErrUnavailable) || !tsstore.IsRetryable(err) {
		t.Fatalf("Append while the server died: got %v, want a retryable ErrUnavailable", err)
	}
	if err := g.start(); err != nil {
		t.Fatal(err)
	}
	raw := rawClient(t, g.srv)
	if keys := listKeys(t, raw, testBucket, prefix); len(keys) != 0 {
		t.Errorf("after the failed upload the bucket lists %v, want nothing", keys)
	}
	if _, err := raw.StatObject(ctx, testBucket, prefix+id.Name(), minio.StatObjectOptions{}); minio.ToErrorResponse(err).Code != "NoSuchKey" {
		t.Errorf("the segment object after the failed upload: %v, want NoSuchKey", err)
	}
	if st, err := a.Stat(ctx); err != nil || st != (archive.Stats{}) {
		t.Errorf("Stat after the failed upload: %+v, %v; want nothing", st, err)
	}
	uploads := 0
	for u := range raw.ListIncompleteUploads(ctx, testBucket, prefix, true) {
		if u.Err == nil {
			uploads++
		}
	}
	t.Logf("incomplete multipart uploads left on the server (invisible): %d", uploads)

	// The retry after the restart.
	info, err := a.Append(ctx, id, ps)
	if err != nil {
		t.Fatalf("Append after the restart: %v", err)
	}
	if info.Bytes <= partSize {
		t.Fatalf("the segment has %d bytes, not more than the part size %d: no multipart upload was tested", info.Bytes, partSize)
	}
	checkSegment(t, a, info.Name, ps)
	t.Logf("segment of %d points, %d bytes, in parts of %d", len(ps), info.Bytes, partSize)

	// Killed again, and restarted while Append still retries.
	b := openArchive(t, g.srv, prefix, &s3archive.Options{Transport: hook, PartSize: partSize,
		MaxAttempts: 10_000, MinBackoff: time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	ps2 := w.points(2, 200_000, base+2_700_000, 2_700_000, true)
	id2 := idOf("kill", 2, 0, ps2)
	var restart sync.WaitGroup
	restartErr := make(chan error, 1)
	arm(func() {
		restart.Add(1)
		go func() {
			defer restart.Done()
			restartErr <- g.start()
		}()
	})
	actx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	info2, err := b.Append(actx, id2, ps2)
	restart.Wait()
	if err := <-restartErr; err != nil {
		t.Fatal(err)
	}
	select {
	case <-killed:
	default:
		t.Fatal("the server was not killed during the second upload")
	}
	if err != nil {
		t.Fatalf("Append with the server restarted during its retries: %v", err)
	}
	checkSegment(t, b, info2.Name, ps2)
	// The first archive sees the second's segment.
	if st, err := a.Stat(ctx); err != nil || st.Segments != 2 || st.Points != int64(len(ps)+len(ps2)) {
		t.Errorf("Stat: %+v, %v; want 2 segments of %d points", st, err, len(ps)+len(ps2))
	}
}

// checkSegment reads the segment name and compares its points with ps.
func checkSegment(t *testing.T, a archive.Archive, name string, ps []tsstore.Point) {
	t.Helper()
	got, err := readAll(context.Background(), a, name)
	if err != nil {
		t.Fatalf("Read(%s): %v", name, err)
	}
	if len(got) != len(ps) || segment.Digest(got) != segment.Digest(segment.Sorted(ps)) {
		t.Fatalf("Read(%s) returned %d points, not the %d appended", name, len(got), len(ps))
	}
}
