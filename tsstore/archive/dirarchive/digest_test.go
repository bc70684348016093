package dirarchive_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/tsstore/archive/archivetest"
	"github.com/hourglass-io/hourglass/tsstore/archive/dirarchive"
	"github.com/hourglass-io/hourglass/tsstore/archive/internal/manifest"
	"github.com/hourglass-io/hourglass/tsstore/archive/internal/segment"
)

// plantV1 writes into dir the segment of archivetest.V1, as the code of
// b2a3712 did: the file, and its line in the manifest when listed.
func plantV1(t *testing.T, dir string, v1 archivetest.V1Segment, listed bool) {
	t.Helper()
	path := filepath.Join(dir, filepath.FromSlash(v1.ID.Name()))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, v1.File, 0o444); err != nil {
		t.Fatal(err)
	}
	if listed {
		if err := os.WriteFile(filepath.Join(dir, dirarchive.ManifestFile), v1.Line, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestV1Archive runs archivetest.CheckV1 on a directory that the code of
// b2a3712 wrote (content digests of version 1), and checks that the
// manifest then holds its line unchanged and a line of version 2.
func TestV1Archive(t *testing.T) {
	dir := t.TempDir()
	v1 := archivetest.V1(t)
	plantV1(t, dir, v1, true)
	archivetest.CheckV1(t, func(t *testing.T) archive.Archive { return open(t, dir, nil) })
	lines := scanLines(t, filepath.Join(dir, dirarchive.ManifestFile))
	if len(lines) != 2 || lines[0]+"\n" != string(v1.Line) || !strings.Contains(lines[1], `"content_version":2`) {
		t.Errorf("manifest after CheckV1:\n%s\nwant the line of version 1 unchanged and a line of version 2", strings.Join(lines, "\n"))
	}
}

// TestNameListedTwiceInTwoVersions: no writer lists a name twice (see
// manifestCorrupt), so a second line of a name whose digest is of another
// version is corruption, even of the same points; the same line twice is
// ignored, as before.
func TestNameListedTwiceInTwoVersions(t *testing.T) {
	v1 := archivetest.V1(t)
	// The same record with the points' digest of version 2.
	recs, _, err := manifest.Parse(v1.Line, 1)
	if err != nil || len(recs) != 1 {
		t.Fatalf("the fixture's record: %v, %v", recs, err)
	}
	r := recs[0]
	r.Content = segment.Digest(v1.Points)
	v2 := r.Line()
	for _, tc := range []struct {
		manifest []byte
		ok       bool
	}{
		{append(append([]byte(nil), v1.Line...), v1.Line...), true},
		{append(append([]byte(nil), v1.Line...), v2...), false},
		{append(append([]byte(nil), v2...), v1.Line...), false},
	} {
		dir := t.TempDir()
		plantV1(t, dir, v1, false)
		if err := os.WriteFile(filepath.Join(dir, dirarchive.ManifestFile), tc.manifest, 0o644); err != nil {
			t.Fatal(err)
		}
		a, err := dirarchive.Open(dir, nil)
		if err == nil {
			_ = a.Close()
		}
		if tc.ok && err != nil {
			t.Errorf("a line repeated: %v", err)
		}
		if !tc.ok && (!errors.Is(err, archive.ErrCorrupt) || !strings.Contains(err.Error(), v1.ID.Name())) {
			t.Errorf("a name listed with digests of versions 1 and 2: got %v, want ErrCorrupt naming it", err)
		}
	}
}
