package manifest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hourglass-io/hourglass/tsstore/archive"
)

// TestLinesOlderProgramsParse checks that a manifest line holds the bare 64
// hex digits of the content digest in content_sha256 whatever its version
// (version 2 adds content_version), so that a program older than version
// 2 parses every line, and that every line reads back as the record.
func TestLinesOlderProgramsParse(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	id := archive.SegmentID{Source: "w1", Generation: 7, MinTime: 1767225600000, MaxTime: 1767225649819}
	for _, tc := range []struct {
		content     string
		wantVersion int
	}{
		{sum, 0},
		{"v2:" + sum, 2},
	} {
		r := NewRecord(id, 3, 100, strings.Repeat("cd", 32), tc.content, time.Unix(1767225700, 0))
		line := r.Line()
		// What a program before version 2 read: its Record had these
		// fields, and it checked len(content) == 64.
		var old struct {
			Content        string `json:"content_sha256"`
			ContentVersion int    `json:"content_version"`
		}
		if err := json.Unmarshal(line, &old); err != nil || old.Content != sum || old.ContentVersion != tc.wantVersion {
			t.Errorf("line of content %s: %s: content_sha256 %q, content_version %d, %v; want %q, %d",
				tc.content, line, old.Content, old.ContentVersion, err, sum, tc.wantVersion)
		}
		recs, n, err := Parse(line, 1)
		if err != nil || n != len(line) || len(recs) != 1 {
			t.Fatalf("Parse(%s) = %d records, %d bytes, %v", line, len(recs), n, err)
		}
		if d := cmp.Diff(r, recs[0]); d != "" {
			t.Errorf("Parse(Line()) (-want +got):\n%s", d)
		}
	}
}

// TestBadContentVersions checks that a line whose content_version and
// content_sha256 disagree is refused, not read as another digest.
func TestBadContentVersions(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	line := func(field string) []byte {
		return []byte(`{"name":"2026/01/01/00/w1-g0000000000000007-s0000-1767225600000-1767225649819.parquet","source":"w1","generation":7,"min_time":1767225600000,"max_time":1767225649819,"points":3,"bytes":100,"sha256":"` + strings.Repeat("cd", 32) + `",` + field + "}\n")
	}
	// The same lines with good contents parse: only the field is wrong
	// below.
	for _, good := range []string{`"content_sha256":"` + sum + `"`, `"content_sha256":"` + sum + `","content_version":2`} {
		if _, _, err := Parse(append(line(good), line(good)...), 1); err != nil {
			t.Fatalf("a line with %s: %v", good, err)
		}
	}
	for _, field := range []string{
		`"content_sha256":"` + sum + `","content_version":1`,
		`"content_sha256":"` + sum + `","content_version":-2`,
		`"content_sha256":"v2:` + sum + `","content_version":2`,
		`"content_sha256":"` + sum[:60] + `","content_version":2`,
		`"content_sha256":"` + sum[:60] + `"`,
	} {
		if recs, _, err := Parse(append(line(field), line(field)...), 1); err == nil {
			t.Errorf("a line with %s: read as %+v, want an error", field, recs)
		}
	}
}
