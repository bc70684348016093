// Package atomicfile replaces a small file so that a crash leaves either
// its old content or its new one, never a mix, and a returned nil means
// the new content is on disk.
//
// # Errors
//
// Errors are those of package os, which name the file; callers add their
// context and classify them.
//
// # Concurrency
//
// Write is safe for concurrent use on different paths; writers of one path
// must be serialised by the caller (the last rename wins).
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write replaces the file at path with data: it writes a temporary file
// in the same directory (named ".<base>.tmp*", mode 0600), fsyncs it,
// renames it over path and fsyncs the directory. On an error before the
// rename the temporary file is removed and path is unchanged.
func Write(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	if _, err = tmp.Write(data); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	return SyncDir(dir)
}

// SyncDir fsyncs the directory dir, which makes a file created, renamed
// or removed in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
