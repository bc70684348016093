package s3archive_test

import (
	"testing"

	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/tsstore/archive/archivetest"
)

// TestConformance runs the archive suite against the S3 server of
// scripts/test.sh, one prefix per archive.
func TestConformance(t *testing.T) {
	srv := sharedServer(t)
	archivetest.Run(t, func(t *testing.T) archive.Archive { return openArchive(t, srv, uniquePrefix(t), nil) })
}
