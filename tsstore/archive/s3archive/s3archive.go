package s3archive

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/hourglass-io/hourglass/internal/gate"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/tsstore/archive/internal/manifest"
	"github.com/hourglass-io/hourglass/tsstore/archive/internal/segment"
)

// Defaults of Options.
const (
	// DefaultRowGroupRows is the default number of points per Parquet row
	// group.
	DefaultRowGroupRows = segment.DefaultRowGroupRows
	// DefaultPartSize is the size above which a segment is uploaded in
	// parts (multipart upload), and the size of a part. Up to it a segment
	// goes in one PUT, which every S3 server makes conditional.
	DefaultPartSize = 64 << 20
	// DefaultMaxAttempts is how often a request is tried when it fails with
	// a transient error (connection refused or reset, 5xx, 429, SlowDown).
	DefaultMaxAttempts = 8
	// DefaultMinBackoff is the wait after the first failed attempt; it
	// doubles after every further one, up to DefaultMaxBackoff, with
	// jitter.
	DefaultMinBackoff = 100 * time.Millisecond
	// DefaultMaxBackoff bounds the wait between two attempts.
	DefaultMaxBackoff = 10 * time.Second
	// DefaultListParallelism is how many manifest entries are fetched at
	// once when a refresh finds new ones.
	DefaultListParallelism = 8
)

// ManifestDir is the folder, under the archive's prefix, that holds the
// manifest: one object per segment, <prefix>manifest/<segment name>.json.
const ManifestDir = "manifest/"

// ErrAccessDenied reports that the server refused the credentials or the
// request (HTTP 403: wrong keys, a bucket policy, an expired token). It
// comes together with tsstore.ErrUnavailable: it is not retried by the
// archive, but a caller may retry once the configuration is fixed.
var ErrAccessDenied = errors.New("access denied by the S3 server (check the credentials and the bucket policy)")

// Options configures an Archive. The zero value (or nil) means defaults.
type Options struct {
	// AccessKey and SecretKey (and SessionToken for temporary
	// credentials) sign the requests. When AccessKey is empty,
	// Credentials is used, and when that is nil too, the standard AWS
	// chain: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
	// from the environment, then the shared file ~/.aws/credentials
	// (AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE), then the instance role
	// (EC2/ECS/EKS metadata).
	AccessKey, SecretKey, SessionToken string
	// Credentials, when not nil and AccessKey is empty, provides the
	// credentials (any minio-go credentials provider).
	Credentials *credentials.Credentials
	// Secure selects HTTPS. An endpoint given as https://host[:port]
	// implies it; http://host[:port] or host:port without it means HTTP.
	Secure bool
	// TLSConfig configures HTTPS (a private CA, client certificates); nil
	// means the system's roots. Ignored when Transport is set.
	TLSConfig *tls.Config
	// Transport carries the requests; nil means a transport owned by the
	// Archive (closed by Close), like http.DefaultTransport.
	Transport http.RoundTripper
	// Region is the bucket's region; "" asks the server (one request,
	// cached) and uses us-east-1 for a bucket created by CreateBucket.
	Region string
	// CreateBucket creates the bucket (in Region) when it does not exist;
	// false makes Open fail with tsstore.ErrInvalid instead.
	CreateBucket bool
	// PartSize is the size above which a segment is uploaded in parts,
	// and the part size; 0 means DefaultPartSize. S3 allows 5 MiB to
	// 5 GiB.
	PartSize int64
	// MaxAttempts is how often a request is tried on transient errors; 0
	// means DefaultMaxAttempts, 1 means no retries.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the wait between attempts; 0 means
	// DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// RefreshInterval is how long the manifest read from the bucket is
	// reused before the next call lists it again for other writers'
	// segments; 0 lists it before every Segments, Read, Scan and Stat
	// (one LIST request per 1000 segments). This Archive's own appends
	// are visible at once either way.
	RefreshInterval time.Duration
	// ListParallelism is how many new manifest entries a refresh fetches
	// at once; 0 means DefaultListParallelism.
	ListParallelism int
	// RowGroupRows is the number of points per Parquet row group of a
	// segment; 0 means DefaultRowGroupRows.
	RowGroupRows int
	// Now returns the time recorded as a segment's Created; nil means
	// time.Now.
	Now func() time.Time
}

// Archive is an archive.Archive in an S3 bucket under a key prefix. It is
// safe for concurrent use by goroutines, processes and hosts (see the
// package comment).
type Archive struct {
	client   *minio.Client
	owned    *http.Transport // closed by Close; nil for Options.Transport
	bucket   string
	prefix   string // "" or ending in "/"
	where    string // s3://bucket/prefix, for messages
	opts     Options
	partSize int64

	// refreshMu serialises refreshes, so that concurrent calls list the
	// manifest once rather than each.
	refreshMu sync.Mutex

	calls gate.Gate // calls in progress; closed by Close

	mu        sync.Mutex // guards the fields below
	index     *manifest.Index
	refreshed time.Time // end of the last complete refresh
}

var (
	_ archive.Archive         = (*Archive)(nil)
	_ archive.ColumnsAppender = (*Archive)(nil)
)

// Open opens the archive in bucket under prefix (a key prefix such as
// "hourglass/" or ""; a missing trailing "/" is added) on the S3 server at
// endpoint (host:port, or an http:// or https:// URL). It checks that the
// bucket exists (creating it when Options.CreateBucket is set) and reads
// the manifest.
func Open(ctx context.Context, endpoint, bucket, prefix string, opts *Options) (*Archive, error) {
	a := &Archive{bucket: bucket, index: manifest.NewIndex()}
	if opts != nil {
		a.opts = *opts
	}
	if a.opts.PartSize != 0 && (a.opts.PartSize < 5<<20 || a.opts.PartSize > 5<<30) {
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "s3archive: Options.PartSize %d outside [5 MiB, 5 GiB]", a.opts.PartSize)
	}
	a.setDefaults()
	if err := a.setPrefix(prefix); err != nil {
		return nil, err
	}
	a.where = "s3://" + bucket + "/" + a.prefix
	if err := a.connect(endpoint); err != nil {
		return nil, err
	}
	if err := a.checkBucket(ctx); err != nil {
		a.release()
		return nil, err
	}
	a.refreshMu.Lock()
	defer a.refreshMu.Unlock()
	if err := a.refreshLocked(ctx); err != nil {
		a.release()
		return nil, err
	}
	return a, nil
}

func (a *Archive) setDefaults() {
	o := &a.opts
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.ListParallelism <= 0 {
		o.ListParallelism = DefaultListParallelism
	}
	a.partSize = o.PartSize
	if a.partSize <= 0 {
		a.partSize = DefaultPartSize
	}
}

func (a *Archive) setPrefix(prefix string) error {
	if strings.HasPrefix(prefix, "/") || strings.Contains(prefix, "//") || len(prefix) > 512 {
		return tsstore.Errorf(tsstore.ErrInvalid, "s3archive: prefix %q: want a relative key prefix without empty path elements, at most 512 bytes", prefix)
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	a.prefix = prefix
	return nil
}

// connect makes the minio client.
func (a *Archive) connect(endpoint string) error {
	o := &a.opts
	secure := o.Secure
	host := endpoint
	if strings.Contains(endpoint, "://") {
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return tsstore.Errorf(tsstore.ErrInvalid, "s3archive: endpoint %q: want host:port or http(s)://host:port", endpoint)
		}
		host, secure = u.Host, u.Scheme == "https"
	}
	creds := o.Credentials
	switch {
	case o.AccessKey != "":
		creds = credentials.NewStaticV4(o.AccessKey, o.SecretKey, o.SessionToken)
	case creds == nil:
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{},
			&credentials.FileAWSCredentials{},
			&credentials.IAM{},
		})
	}
	rt := o.Transport
	if rt == nil {
		tr, err := minio.DefaultTransport(secure)
		if err != nil {
			return tsstore.Errorf(tsstore.ErrInvalid, "s3archive: transport: %w", err)
		}
		if o.TLSConfig != nil {
			tr.TLSClientConfig = o.TLSConfig.Clone()
		}
		a.owned, rt = tr, tr
	}
	c, err := minio.New(host, &minio.Options{
		Creds:     creds,
		Secure:    secure,
		Transport: rt,
		Region:    o.Region,
		// The archive retries, with its own backoff and classification.
		MaxRetries: 1,
	})
	if err != nil {
		a.release()
		return tsstore.Errorf(tsstore.ErrInvalid, "s3archive: endpoint %q: %w", endpoint, err)
	}
	a.client = c
	return nil
}

func (a *Archive) checkBucket(ctx context.Context) error {
	var exists bool
	err := a.try(ctx, func(ctx context.Context) error {
		var err error
		exists, err = a.client.BucketExists(ctx, a.bucket)
		return err
	})
	if err != nil {
		return a.fail("open: check bucket", err)
	}
	if exists {
		return nil
	}
	if !a.opts.CreateBucket {
		return tsstore.Errorf(tsstore.ErrInvalid, "s3archive: bucket %q does not exist (create it, or set Options.CreateBucket)", a.bucket)
	}
	err = a.try(ctx, func(ctx context.Context) error {
		err := a.client.MakeBucket(ctx, a.bucket, minio.MakeBucketOptions{Region: a.opts.Region})
		if c := errorCode(err); c == "BucketAlreadyOwnedByYou" || c == "BucketAlreadyExists" {
			return nil // created by a concurrent Open
		}
		return err
	})
	if err != nil {
		return a.fail("open: create bucket", err)
	}
	return nil
}

// enter starts a call; leave ends it.
func (a *Archive) enter(ctx context.Context) error {
	if !a.calls.Enter() {
		return tsstore.Errorf(tsstore.ErrClosed, "s3archive %s is closed", a.where)
	}
	if err := ctx.Err(); err != nil {
		a.calls.Leave()
		return err
	}
	return nil
}

func (a *Archive) leave() { a.calls.Leave() }

func (a *Archive) segmentKey(name string) string { return a.prefix + name }
func (a *Archive) entryKey(name string) string   { return a.prefix + ManifestDir + name + ".json" }

// Bucket returns the archive's bucket.
func (a *Archive) Bucket() string { return a.bucket }

// Prefix returns the archive's key prefix ("" or ending in "/").
func (a *Archive) Prefix() string { return a.prefix }

// Close waits for the calls in progress and closes the connections of the
// Archive's own transport. Later calls fail with tsstore.ErrClosed; Close
// itself returns nil again.
func (a *Archive) Close() error {
	if !a.calls.Close() {
		return nil
	}
	a.release()
	return nil
}

func (a *Archive) release() {
	if a.owned != nil {
		a.owned.CloseIdleConnections()
	}
}
