package s3archive

import (
	"context"

	"github.com/hourglass-io/hourglass/tsstore/archive/internal/manifest"
)

// AddRecord indexes r as a record read from the bucket: the tests give it
// a second record of an indexed name, which otherwise needs a server that
// lets racing writers replace a manifest entry.
func (a *Archive) AddRecord(ctx context.Context, r manifest.Record) error { return a.add(ctx, r) }
