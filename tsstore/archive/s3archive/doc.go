// Package s3archive is the archive backend on S3-compatible object storage
// (Amazon S3, MinIO, Ceph RGW, versitygw, GCS's S3 API, ...):
// github.com/hourglass-io/hourglass/tsstore/archive.Archive in a bucket,
// under a key prefix, with github.com/minio/minio-go/v7.
//
// # Layout
//
//	<prefix>YYYY/MM/DD/HH/<name>.parquet            segments (SegmentID.Name), written once
//	<prefix>manifest/YYYY/MM/DD/HH/<name>.parquet.json  the manifest: one JSON record per segment, written once
//
// A segment is the same Apache Parquet file as in dirarchive (the schema
// is in tsstore/archive/internal/segment), so any Parquet reader of its
// byte-stream-split values (DuckDB's
// read_parquet('s3://bucket/prefix/*/*/*/*/*.parquet'), Spark, Athena
// engine 3) reads the archive in place. A manifest entry is one line of the manifest
// format of tsstore/archive/internal/manifest: name, id, points, size,
// SHA-256 of the object, digest of the points, creation time.
//
// # The manifest: one object per segment
//
// The manifest is one small object per segment rather than one object
// rewritten by conditional updates. Each entry is created once with
// If-None-Match: * and never changed, so concurrent writers never contend
// on a shared object (a compare-and-swap manifest makes every writer
// re-read and rewrite a file that grows for ever, and retry when another
// won), nothing is ever overwritten (a buggy writer cannot truncate the
// manifest), and a name has exactly one entry: the first writer's. The
// price is reading: an Archive keeps the records in memory and, before
// Segments, Read, Scan and Stat, lists <prefix>manifest/ (one LIST request
// per 1000 segments) and fetches only the entries it has not seen;
// Options.RefreshInterval trades freshness for fewer LIST requests. Its
// own appends are visible at once.
//
// # Durability and write-once segments
//
// Append encodes the segment in memory, then:
//
//  1. HEAD <prefix><name>: when the object exists (a retried flush, a
//     crashed writer, a concurrent one), it is downloaded: with the same
//     points it is adopted; with other points the manifest entry decides
//     (listed: the usual conflict or no-op; not listed: a conflict, as the
//     object cannot be replaced).
//  2. PUT the segment with If-None-Match: * (and Content-MD5), in one
//     request up to Options.PartSize (64 MiB by default), as a multipart
//     upload above it. S3 makes a PUT visible only when it is complete; an
//     interrupted multipart upload is never visible either (its parts
//     occupy space until the upload is aborted: minio-go aborts it when it
//     can; a bucket lifecycle rule AbortIncompleteMultipartUpload collects
//     the rest). A 412 answer means another writer created the object
//     first: step 1's adoption applies.
//  3. Create the manifest entry with If-None-Match: *, then read it back:
//     the stored entry is the truth. Only now is the segment visible, and
//     Append returns the stored entry's info (another writer's, when it
//     created the entry first with the same points; a conflict when with
//     other points).
//
// A crash or failure anywhere before step 3 leaves nothing visible: at
// most an unlisted segment object, adopted by the retry of the same flush.
//
// On conditional writes: Amazon S3 (since 2024), MinIO and versitygw honour
// If-None-Match: * on PutObject, so on them a segment object and a
// manifest entry are created at most once, whatever the races. Servers
// differ on CompleteMultipartUpload: Amazon S3 honours the header there
// too, versitygw v1.8.0 ignores it (tested: a second multipart upload of a
// name replaces the object). Where the header is ignored, step 1 makes
// the create a checked create: only two writers of one name that both pass
// the HEAD before either finishes its upload can overwrite each other.
// Writers of one name normally write the same points (a retried flush),
// which encode to the same bytes, so the overwrite changes nothing; with
// other points the manifest entry (created once, read back) still names
// one of them, and if the object then holds the other's bytes, Read and
// Scan detect it by the SHA-256 and fail with archive.ErrCorrupt: a wrong
// point is never returned. Keeping segments under Options.PartSize (one
// PUT) closes that window on every server above.
//
// Read and Scan download a segment whole, check its size and SHA-256
// against its entry, decode it and check its points against the entry
// (count, order, time range); a missing or altered segment fails the call
// with archive.ErrCorrupt naming it. The code deletes nothing, ever.
//
// # Retries
//
// Every request is retried on transient failures (connection refused or
// reset, a torn response, HTTP 5xx, 429, S3 codes SlowDown, Throttling,
// InternalError, RequestTimeout, ...) up to Options.MaxAttempts times,
// with exponential backoff and jitter between Options.MinBackoff and
// Options.MaxBackoff; minio-go's own retries are turned off so that one
// policy applies. Uploads are retried from their start.
//
// # Replication across regions
//
// A copy in another region is a second Archive on a bucket there, written
// by the same flush: the write-back engine appends every flushed
// generation to each archive in writeback.Options.Archives, and commits
// the generation only when all of them have it. Two buckets (say
// hourglass-eu in eu-west-1 and hourglass-us in us-east-1, with Options.Region
// set for each) are two Open calls; see Example_twoRegions. Each bucket is
// complete on its own, and a segment lost in one (archive.ErrCorrupt)
// can be copied back from the other, byte for byte. Bucket replication by
// the provider (S3 CRR) is an alternative that needs no second Archive.
//
// # Concurrency
//
// An *Archive is safe for concurrent use by goroutines. Any number of
// processes and hosts may open the same bucket and prefix, each with its
// own Archive: they coordinate only through the conditional creates
// above, and each sees the others' segments at its next refresh. Close
// waits for the calls in progress; calling it from a Scan or Read
// callback of the same archive deadlocks. No goroutine outlives a call.
//
// # Errors
//
// Invalid ids, points, ranges or options fail with tsstore.ErrInvalid (a
// missing bucket at Open too, unless Options.CreateBucket); a name that
// exists with other points with tsstore.ErrConflict; a segment that does
// not match its entry, or an entry that cannot be parsed, with
// archive.ErrCorrupt; a name that is not in the archive (Read) with
// tsstore.ErrInvalid and archive.ErrNotFound; a server that cannot be
// reached or keeps failing with tsstore.ErrUnavailable; refused
// credentials (HTTP 403) with tsstore.ErrUnavailable and ErrAccessDenied,
// without retries; use after Close with tsstore.ErrClosed; a cancelled
// context with its error. An error returned by the callback of Read or
// Scan is returned as it is.
package s3archive
