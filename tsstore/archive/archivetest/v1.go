package archivetest

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
)

// v1Files is a dirarchive that the code of b2a3712 (before content digests
// of version 2) wrote: its manifest and the segment of v1Points, whose
// record and KeyContent hold the points' content digest of version 1.
//
//go:embed testdata/v1
var v1Files embed.FS

const v1Dir = "testdata/v1"

// V1Segment is a segment as the writers before content digests of version
// 2 stored it, to be placed in an archive as its backend's writers of
// then did (see CheckV1).
type V1Segment struct {
	ID     archive.SegmentID
	Points []tsstore.Point
	// File is the segment file; Line its manifest record (a line of
	// manifest.jsonl, and the body of an s3archive manifest entry), which
	// lists File in its ID's Name. Content is the record's content digest,
	// of version 1.
	File, Line []byte
	Content    string
}

// V1 returns the segment of v1Points that the code of b2a3712 wrote.
func V1(t testing.TB) V1Segment {
	t.Helper()
	line, err := v1Files.ReadFile(v1Dir + "/manifest.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Name    string `json:"name"`
		Content string `json:"content_sha256"`
	}
	if err := json.Unmarshal(line, &rec); err != nil {
		t.Fatal(err)
	}
	file, err := v1Files.ReadFile(v1Dir + "/" + rec.Name)
	if err != nil {
		t.Fatal(err)
	}
	ps := v1Points()
	s := V1Segment{ID: idOf("v1", 7, 0, ps), Points: ps, File: file, Line: line, Content: rec.Content}
	if s.ID.Name() != rec.Name || len(rec.Content) != 64 {
		t.Fatalf("the fixture lists %s of content %q, want %s of a digest of version 1", rec.Name, rec.Content, s.ID.Name())
	}
	return s
}

// v1Points returns the points of the segment of V1.
func v1Points() []tsstore.Point {
	var ps []tsstore.Point
	for i := range 240 {
		ls := tsstore.Labels{{Name: "merchant", Value: fmt.Sprint("m", i%7)}, {Name: "v", Value: AwkwardValues[i%len(AwkwardValues)]}}
		ps = append(ps, tsstore.Point{Metric: []string{"views", "orders"}[i%2], Labels: ls, Timestamp: Base + int64(i*7919%50_000), Value: float64(i%5) - 2})
	}
	return append(ps, pt("nolabels", nil, Base+2, -1/inf()), ps[3])
}

// CheckV1 checks an archive that holds the segment of V1, placed by the
// backend's test as its writers stored it before content digests of
// version 2, opened by open (more than once: the archive is reopened once
// a segment of the current version is beside it). The segment reads as
// its points; an append of its points (in another order, as points and as
// columns) is a no-op that returns its info, whatever the version of its
// digest; other points under its name conflict; and the manifest of both
// versions loads again.
func CheckV1(t *testing.T, open NewArchive) {
	ctx := context.Background()
	v1 := V1(t)
	a := open(t)
	sum := sha256.Sum256(v1.File)
	segs, err := a.Segments(ctx, 0, tsstore.MaxTimestamp)
	if err != nil || len(segs) != 1 || segs[0].Name != v1.ID.Name() || segs[0].Checksum != hex.EncodeToString(sum[:]) || segs[0].Points != int64(len(v1.Points)) {
		t.Fatalf("Segments of an archive of a segment written with a digest of version 1: %+v, %v", segs, err)
	}
	info := segs[0]
	if d := sameMultiset(v1.Points, readAll(t, a, info.Name)); d != "" {
		t.Fatalf("Read of the segment written with a digest of version 1 (-want +got):\n%s", d)
	}
	// A second segment, of the current version: the archive holds both.
	now := idOf("v1", 8, 0, v1.Points)
	nowInfo := mustAppend(t, a, now, v1.Points)
	for round, a := range []archive.Archive{a, open(t)} {
		for _, s := range []struct {
			id   archive.SegmentID
			info archive.SegmentInfo
		}{{v1.ID, info}, {now, nowInfo}} {
			checkAppendAgain(t, a, s.id, s.info, v1.Points, uint64(round))
		}
		st, err := a.Stat(ctx)
		if err != nil || st.Segments != 2 || st.Points != 2*int64(len(v1.Points)) {
			t.Errorf("round %d: Stat of the segments of both versions: %+v, %v", round, st, err)
		}
		got := scanAll(t, a, archive.ScanRequest{From: 0, To: tsstore.MaxTimestamp})
		if d := sameMultiset(append(v1.Points, v1.Points...), got); d != "" {
			t.Errorf("round %d: Scan of the segments of both versions (-want +got):\n%s", round, d)
		}
	}
}

// checkAppendAgain checks that the points ps of the stored segment id
// (info) append again as a no-op, as points and as columns, and that
// other points conflict.
func checkAppendAgain(t *testing.T, a archive.Archive, id archive.SegmentID, info archive.SegmentInfo, ps []tsstore.Point, seed uint64) {
	t.Helper()
	ctx := context.Background()
	if again, err := a.Append(ctx, id, shuffled(ps, seed)); err != nil || again != info {
		t.Errorf("Append of the points of %s again: %+v, %v; want the stored info %+v", id.Name(), again, err, info)
	}
	ca, columns := a.(archive.ColumnsAppender)
	if columns {
		if again, err := ca.AppendColumns(ctx, id, columnsOf(shuffled(ps, seed+1))); err != nil || again != info {
			t.Errorf("AppendColumns of the points of %s again: %+v, %v; want the stored info %+v", id.Name(), again, err, info)
		}
	}
	changed := shuffled(ps, seed)
	changed[0].Value++
	for name, other := range map[string][]tsstore.Point{
		"other value":      changed,
		"a point fewer":    ps[1:],
		"a duplicate more": append(ps[:len(ps):len(ps)], ps[0]),
	} {
		_, err := a.Append(ctx, id, other)
		if !errors.Is(err, tsstore.ErrConflict) || !strings.Contains(err.Error(), id.Name()) {
			t.Errorf("%s: Append under %s: got %v, want ErrConflict naming it", name, id.Name(), err)
		}
		if columns {
			_, err := ca.AppendColumns(ctx, id, columnsOf(other))
			if !errors.Is(err, tsstore.ErrConflict) || !strings.Contains(err.Error(), id.Name()) {
				t.Errorf("%s: AppendColumns under %s: got %v, want ErrConflict naming it", name, id.Name(), err)
			}
		}
	}
	if d := sameMultiset(ps, readAll(t, a, info.Name)); d != "" {
		t.Errorf("segment %s after appends again (-want +got):\n%s", id.Name(), d)
	}
	if d := gocmp.Diff(info, mustSegment(t, a, info.Name)); d != "" {
		t.Errorf("the info of %s changed (-before +after):\n%s", info.Name, d)
	}
}

func mustSegment(t testing.TB, a archive.Archive, name string) archive.SegmentInfo {
	t.Helper()
	segs, err := a.Segments(context.Background(), 0, tsstore.MaxTimestamp)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range segs {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("segment %s not listed", name)
	return archive.SegmentInfo{}
}
