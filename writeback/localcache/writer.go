package localcache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hourglass-io/hourglass/internal/atomicfile"
	"github.com/hourglass-io/hourglass/writeback"
)

// writerFile is the file in the cache's directory that keeps its writer id
// and the first generation written under it (writeback.FormatWriterFile).
const writerFile = "WRITER"

// loadWriter reads the cache's writer id, or makes one and persists it
// when the directory has none (new, or written by a version without writer
// ids): the open generation is then the first one under the new id.
func (c *Cache) loadWriter() error {
	path := filepath.Join(c.dir, writerFile)
	b, err := os.ReadFile(path)
	if err == nil {
		c.writer, c.since, err = writeback.ParseWriterFile(string(b))
		if err != nil {
			return fmt.Errorf("localcache: %s: %w", path, err)
		}
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("localcache: %w", err)
	}
	id, since := writeback.NewWriterID(), c.open.num
	if err := atomicfile.Write(filepath.Join(c.dir, writerFile), []byte(writeback.FormatWriterFile(id, since))); err != nil {
		return fmt.Errorf("localcache: persist the writer id: %w", err)
	}
	if len(c.sealed) > 0 || c.open.points.Load() > 0 {
		c.log.Info("localcache: made a writer id for a directory written without one; older generations keep the legacy writer", "dir", c.dir, "writer", id, "first_generation", since)
	}
	c.writer, c.since = id, since
	return nil
}

// WriterID returns the directory's writer id and the first generation
// written under it.
func (c *Cache) WriterID() (string, uint64) { return c.writer, c.since }
