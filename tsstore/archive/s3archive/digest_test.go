package s3archive_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/tsstore/archive/archivetest"
	"github.com/hourglass-io/hourglass/tsstore/archive/internal/manifest"
	"github.com/hourglass-io/hourglass/tsstore/archive/internal/segment"
	"github.com/hourglass-io/hourglass/tsstore/archive/s3archive"
)

// plantV1 puts under prefix the segment of archivetest.V1 as s3archive
// at b2a3712 stored it: the object (with its user metadata) and, when
// listed, its manifest entry.
func plantV1(t *testing.T, raw *minio.Client, prefix string, v1 archivetest.V1Segment, listed bool) {
	t.Helper()
	ctx := context.Background()
	sum := sha256.Sum256(v1.File)
	opts := minio.PutObjectOptions{ContentType: "application/vnd.apache.parquet",
		UserMetadata: map[string]string{"hourglass-sha256": hex.EncodeToString(sum[:]), "hourglass-content-sha256": v1.Content}}
	if _, err := raw.PutObject(ctx, testBucket, prefix+v1.ID.Name(), bytes.NewReader(v1.File), int64(len(v1.File)), opts); err != nil {
		t.Fatal(err)
	}
	if listed {
		key := prefix + s3archive.ManifestDir + v1.ID.Name() + ".json"
		if _, err := raw.PutObject(ctx, testBucket, key, bytes.NewReader(v1.Line), int64(len(v1.Line)), minio.PutObjectOptions{ContentType: "application/json"}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestV1Archive runs archivetest.CheckV1 on a prefix that s3archive at
// b2a3712 wrote (content digests of version 1), and checks that the entry
// of version 1 is unchanged and the new segment's entry and object
// metadata are of version 2.
func TestV1Archive(t *testing.T) {
	srv := sharedServer(t)
	raw := rawClient(t, srv)
	prefix := uniquePrefix(t)
	v1 := archivetest.V1(t)
	plantV1(t, raw, prefix, v1, true)
	archivetest.CheckV1(t, func(t *testing.T) archive.Archive { return openArchive(t, srv, prefix, nil) })
	if b, _ := getObject(t, raw, prefix+s3archive.ManifestDir+v1.ID.Name()+".json"); !bytes.Equal(b, v1.Line) {
		t.Errorf("the entry of version 1 became %s", b)
	}
	now := v1.ID
	now.Generation = 8
	b, _ := getObject(t, raw, prefix+s3archive.ManifestDir+now.Name()+".json")
	var rec manifest.Record
	if err := json.Unmarshal(b, &rec); err != nil || rec.Content != segment.Digest(v1.Points) || !strings.HasPrefix(rec.Content, "v2:") {
		t.Errorf("the entry of the new segment: %s, %v; want content %s", b, err, segment.Digest(v1.Points))
	}
	if _, info := getObject(t, raw, prefix+now.Name()); info.UserMetadata["Hourglass-Content-Sha256"] != rec.Content {
		t.Errorf("the new segment object's metadata %v, want content %s", info.UserMetadata, rec.Content)
	}
}

// TestEntryReplacedByOtherVersion: a name indexed with a digest of version
// 1 whose entry is read again with a digest of version 2 (replaced by a
// racing writer of the other version, on a server that ignores
// If-None-Match) is decided by the segment object's points: the same
// points are accepted, other points are corruption, and a version this
// program does not know cannot be decided.
func TestEntryReplacedByOtherVersion(t *testing.T) {
	srv := sharedServer(t)
	ctx := context.Background()
	v1 := archivetest.V1(t)
	prefix := uniquePrefix(t)
	plantV1(t, rawClient(t, srv), prefix, v1, true)
	a := openArchive(t, srv, prefix, nil)
	before, err := a.Stat(ctx)
	if err != nil || before.Segments != 1 {
		t.Fatalf("Stat: %+v, %v", before, err)
	}
	recs, _, err := manifest.Parse(v1.Line, 1)
	if err != nil || len(recs) != 1 {
		t.Fatalf("the fixture's record: %v, %v", recs, err)
	}
	with := func(content string) manifest.Record { r := recs[0]; r.Content = content; return r }
	if err := a.AddRecord(ctx, with(segment.Digest(v1.Points))); err != nil {
		t.Errorf("the same points in version 2: %v", err)
	}
	if err := a.AddRecord(ctx, with(segment.Digest(v1.Points[1:]))); !errors.Is(err, archive.ErrCorrupt) || !strings.Contains(err.Error(), v1.ID.Name()) {
		t.Errorf("other points in version 2: got %v, want ErrCorrupt naming the segment", err)
	}
	if err := a.AddRecord(ctx, with("v3:"+strings.Repeat("0", 64))); !errors.Is(err, tsstore.ErrUnavailable) {
		t.Errorf("a digest of version 3: got %v, want ErrUnavailable", err)
	}
	if after, err := a.Stat(ctx); err != nil || after != before {
		t.Errorf("Stat after the second records: %+v, %v; want %+v", after, err, before)
	}
	if _, err := a.Append(ctx, v1.ID, v1.Points); err != nil {
		t.Errorf("Append of the points again: %v", err)
	}
}
