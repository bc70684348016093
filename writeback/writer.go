package writeback

import (
	"crypto/rand"
	"encoding/base32"
	"strconv"
	"strings"

	"github.com/hourglass-io/hourglass/tsstore"
)

// WriterIDLen is the length of the writer ids NewWriterID makes: 10
// base32 characters, 50 random bits.
const WriterIDLen = 10

var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewWriterID returns a fresh random writer id of WriterIDLen lowercase
// base32 characters. A Cache calls it once, when its storage is new, and
// persists the result (see Cache.WriterID).
func NewWriterID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return lowerBase32.EncodeToString(b[:])[:WriterIDLen]
}

// ValidateWriterID checks a writer id given to an engine (Options.Source)
// or kept by a cache: 1 to 64 bytes of [a-zA-Z0-9_.:-]. Unlike a cell's
// writer (tsstore.ValidateWriter) it may not hold '/': the engine appends
// "/<n>" to it for generation numbers past the cell width in ms, and an id
// with a '/' could equal such a name of another engine.
func ValidateWriterID(id string) error {
	if id == "" || len(id) > 64 {
		return tsstore.Errorf(tsstore.ErrInvalid, "writer id %q is empty or longer than 64 bytes", id)
	}
	if strings.Contains(id, "/") {
		return tsstore.Errorf(tsstore.ErrInvalid, "writer id %q holds '/'", id)
	}
	return tsstore.ValidateWriter(id)
}

// FormatWriterFile and ParseWriterFile are the text form in which a cache
// keeps its writer id and the first generation written under it: "<id>
// <since>\n".
func FormatWriterFile(id string, since uint64) string {
	return id + " " + strconv.FormatUint(since, 10) + "\n"
}

// ParseWriterFile parses what FormatWriterFile made.
func ParseWriterFile(s string) (id string, since uint64, err error) {
	id, num, ok := strings.Cut(strings.TrimSuffix(s, "\n"), " ")
	if !ok {
		return "", 0, tsstore.Errorf(tsstore.ErrInvalid, "writer record %q is not \"<id> <since>\"", s)
	}
	if err := ValidateWriterID(id); err != nil {
		return "", 0, err
	}
	since, err = strconv.ParseUint(num, 10, 64)
	if err != nil {
		return "", 0, tsstore.Errorf(tsstore.ErrInvalid, "writer record %q: since: %w", s, err)
	}
	return id, since, nil
}

// writerOf returns the store identity (Writer, Seq) of generation gen's
// cells: the legacy writer "" with Seq gen mod wms for generations from
// before the cache had a writer id (gen < since), else Writer id for gen <
// wms and "id/<gen/wms>" after, with Seq = gen mod wms. (Writer, Seq) is
// thus unique per generation, so two generations never give a cell the
// same identity, however close their seals.
func writerOf(id string, since uint64, wms int64, gen uint64) (string, uint32) {
	seq := uint32(gen % uint64(wms))
	if gen < since {
		return "", seq
	}
	if n := gen / uint64(wms); n > 0 {
		return id + "/" + strconv.FormatUint(n, 10), seq
	}
	return id, seq
}
