package reprocess

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hourglass-io/hourglass/internal/atomicfile"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/promtsdb"
)

// Names inside a Versions root and inside a version's directory.
const (
	versionsDir    = "versions"
	currentFile    = "current"
	lineageFile    = "lineage.json"
	checkpointFile = "checkpoint.json"
	diffFile       = "diff.json"
	storeDir       = "tsdb"
	cacheDir       = "cache"
)

// VersionsOptions configures a Versions catalog. A nil *VersionsOptions
// means the defaults.
type VersionsOptions struct {
	// Store configures the promtsdb store of every version; nil means
	// promtsdb's defaults. Its CellWidth must be the live store's.
	Store *promtsdb.Options
}

// Versions is a catalog of store versions in a directory:
//
//	<root>/versions/<id>/tsdb/             the version's promtsdb directory
//	<root>/versions/<id>/lineage.json      what the version was made from
//	<root>/versions/<id>/checkpoint.json   how far its job got
//	<root>/versions/<id>/diff.json         the last Versions.Compare report
//	<root>/versions/<id>/cache-*/          its job's and catch-ups' write-back caches (scratch)
//	<root>/current                         the id of the version serving reads
//
// Versions are never deleted. Safe for concurrent use within one process;
// a version's job must run in one process at a time (its promtsdb
// directory is locked while open).
type Versions struct {
	root string
	opts VersionsOptions
	mu   sync.Mutex // serialises writes of the current pointer

	catchMu sync.Mutex // serialises catch-ups (they rewrite lineages)
}

// OpenVersions opens (creating it if needed) the catalog in root.
func OpenVersions(root string, opts *VersionsOptions) (*Versions, error) {
	v := &Versions{root: root}
	if opts != nil {
		v.opts = *opts
	}
	if err := os.MkdirAll(filepath.Join(root, versionsDir), 0o755); err != nil {
		return nil, tsstore.Errorf(tsstore.ErrUnavailable, "reprocess: open versions %s: %w", root, err)
	}
	return v, nil
}

// Root returns the catalog's directory.
func (v *Versions) Root() string { return v.root }

// Dir returns the directory of the version id.
func (v *Versions) Dir(id string) string { return filepath.Join(v.root, versionsDir, id) }

// validID checks a version id: [a-zA-Z0-9_.-]{1,64}, not "." or "..".
func validID(id string) error {
	if id == "" || len(id) > 64 || id == "." || id == ".." {
		return tsstore.Errorf(tsstore.ErrInvalid, "reprocess: version id %q: want 1 to 64 characters of [a-zA-Z0-9_.-]", id)
	}
	for _, c := range []byte(id) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return tsstore.Errorf(tsstore.ErrInvalid, "reprocess: version id %q: character %q not in [a-zA-Z0-9_.-]", id, c)
		}
	}
	return nil
}

// Lineage records what a version was made from. It is stored as JSON next
// to the version's data.
type Lineage struct {
	ID string `json:"id"`
	// Processor is the Version of the processor that made the cells.
	Processor string `json:"processor"`
	// From and Cutover bound the reprocessed range [From, Cutover) (ms).
	From    int64 `json:"from"`
	Cutover int64 `json:"cutover"`
	// Filter holds the job's matchers (PromQL syntax); empty means every
	// series.
	Filter []string `json:"filter,omitempty"`
	// CellWidth is the version's cell width in ms.
	CellWidth int64 `json:"cell_width_ms"`
	// Segments are the archive segments the job read, with checksums.
	Segments []SegmentRef `json:"segments"`
	// Metrics are the metric names the processor produced.
	Metrics []string `json:"metrics"`
	// Points is the number of raw points read; Cells the number of cells
	// written.
	Points int64 `json:"points"`
	Cells  int64 `json:"cells"`
	// Created is when the job first started, Completed when it finished
	// (zero while running).
	Created   time.Time `json:"created"`
	Completed time.Time `json:"completed,omitzero"`
	// Resumes counts the times the job was resumed from a checkpoint.
	Resumes int `json:"resumes,omitempty"`
	// CatchUps lists the catch-up passes (see Versions.CatchUp): late
	// segments added after the job, each pass's cells with their own Seq.
	// Points and Cells include them.
	CatchUps []CatchUpPass `json:"catch_ups,omitempty"`
}

// Complete reports whether the version's job has finished.
func (l *Lineage) Complete() bool { return !l.Completed.IsZero() }

// filter returns the lineage's filter as matchers.
func (l *Lineage) matchers() ([]tsstore.Matcher, error) { return parseMatchers(l.Filter) }

// SegmentRef names an archive segment and its checksum.
type SegmentRef struct {
	Name     string `json:"name"`
	Checksum string `json:"sha256"`
	Points   int64  `json:"points"`
	// MinTime and MaxTime bound the segment's points (ms, inclusive).
	MinTime int64 `json:"min_time"`
	MaxTime int64 `json:"max_time"`
}

// Lineage returns the lineage of the version id. A version that does not
// exist fails with tsstore.ErrInvalid wrapping fs.ErrNotExist.
func (v *Versions) Lineage(id string) (*Lineage, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	return readLineage(v.Dir(id))
}

func readLineage(dir string) (*Lineage, error) {
	b, err := os.ReadFile(filepath.Join(dir, lineageFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "reprocess: no version in %s: %w", dir, err)
	}
	if err != nil {
		return nil, tsstore.Errorf(tsstore.ErrUnavailable, "reprocess: read lineage: %w", err)
	}
	var l Lineage
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("reprocess: decode %s: %w", filepath.Join(dir, lineageFile), err)
	}
	return &l, nil
}

// List returns the lineage of every version, sorted by creation time.
func (v *Versions) List() ([]*Lineage, error) {
	ents, err := os.ReadDir(filepath.Join(v.root, versionsDir))
	if err != nil {
		return nil, tsstore.Errorf(tsstore.ErrUnavailable, "reprocess: list versions: %w", err)
	}
	var out []*Lineage
	for _, e := range ents {
		if !e.IsDir() || validID(e.Name()) != nil {
			continue
		}
		l, err := readLineage(v.Dir(e.Name()))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, err
		}
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b *Lineage) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// OpenStore opens the promtsdb store of the version id (read and write;
// its directory is locked until the store is closed).
func (v *Versions) OpenStore(id string) (*promtsdb.Store, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	s, err := promtsdb.Open(filepath.Join(v.Dir(id), storeDir), v.opts.Store)
	if err != nil {
		return nil, fmt.Errorf("reprocess: version %s: %w", id, err)
	}
	return s, nil
}

// Current returns the id of the version that serves reads, or "" when the
// live store serves them all.
func (v *Versions) Current() (string, error) {
	b, err := os.ReadFile(filepath.Join(v.root, currentFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", tsstore.Errorf(tsstore.ErrUnavailable, "reprocess: read current version: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// SetCurrent points the catalog's current pointer at the version id ("" for
// the live store alone), atomically: a crash leaves the old or the new
// pointer. The version must be complete. It does not switch a running
// Switchable; use Switchable.Switch, which calls it.
func (v *Versions) SetCurrent(id string) error {
	if id != "" {
		l, err := v.Lineage(id)
		if err != nil {
			return err
		}
		if !l.Complete() {
			return tsstore.Errorf(tsstore.ErrInvalid, "reprocess: version %s is not complete", id)
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return writeFileAtomic(filepath.Join(v.root, currentFile), []byte(id+"\n"))
}

// writeFileAtomic replaces the file at path with data (atomicfile.Write).
func writeFileAtomic(path string, data []byte) error {
	if err := atomicfile.Write(path, data); err != nil {
		return tsstore.Errorf(tsstore.ErrUnavailable, "reprocess: write %s: %w", path, err)
	}
	return nil
}

func writeJSONAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("reprocess: encode %s: %w", path, err)
	}
	return writeFileAtomic(path, append(b, '\n'))
}

// formatMatchers renders matchers in PromQL syntax.
func formatMatchers(ms []tsstore.Matcher) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.String()
	}
	return out
}

// parseMatchers parses what formatMatchers wrote.
func parseMatchers(ss []string) ([]tsstore.Matcher, error) {
	out := make([]tsstore.Matcher, 0, len(ss))
	for _, s := range ss {
		var m tsstore.Matcher
		var op string
		i := strings.IndexAny(s, "=!")
		if i <= 0 {
			return nil, fmt.Errorf("reprocess: bad matcher %q in lineage", s)
		}
		name, rest := s[:i], s[i:]
		for _, t := range []tsstore.MatchType{tsstore.MatchNotRegexp, tsstore.MatchRegexp, tsstore.MatchNotEqual, tsstore.MatchEqual} {
			if strings.HasPrefix(rest, t.String()) {
				op, m.Type = t.String(), t
				break
			}
		}
		if op == "" {
			return nil, fmt.Errorf("reprocess: bad matcher %q in lineage", s)
		}
		val, err := strconv.Unquote(rest[len(op):])
		if err != nil {
			return nil, fmt.Errorf("reprocess: bad matcher %q in lineage: %w", s, err)
		}
		m, err = tsstore.NewMatcher(m.Type, name, val)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}
