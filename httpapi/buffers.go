package httpapi

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"sync"

	"github.com/hourglass-io/hourglass/tsstore"
)

// Caps of the pooled ingest buffers: a buffer grown past them (by a request
// larger than the usual batches) is dropped after its request rather than
// pooled, so that one huge request does not keep its memory for the ones
// after it. InfluxDB clients and examples/loadgen send batches of 5,000
// lines: about 0.5 MB and 10,000 points.
const (
	maxPooledBody   = 2 << 20
	maxPooledPoints = 1 << 16 // 3.5 MiB of points
)

// ingestBuffers are an ingest request's body and points, reused by later
// requests: without them, every request allocates a body and a slice of
// points as large as itself, which is most of what the garbage collector
// pays for under sustained ingest.
//
// Nothing may refer to them once the request is answered: the decoders
// copy what they keep (metric names, label strings) out of the body, and
// Engine.Write does not keep the points' slice (Engine's contract).
type ingestBuffers struct {
	body   []byte
	points []tsstore.Point
}

var ingestPool = sync.Pool{New: func() any { return new(ingestBuffers) }}

func getIngestBuffers() *ingestBuffers { return ingestPool.Get().(*ingestBuffers) }

// release pools b, once its request is answered. b.points must be the
// slice that was decoded into (its length covers every point written to
// it), or nil when a decode failed.
func (b *ingestBuffers) release() {
	if cap(b.body) > maxPooledBody {
		b.body = nil
	}
	// The points refer to label sets and metric names: cleared, they keep
	// none alive while pooled.
	clear(b.points)
	if cap(b.points) > maxPooledPoints {
		b.points = nil
	}
	b.body, b.points = b.body[:0], b.points[:0]
	ingestPool.Put(b)
}

// readAll is io.ReadAll reading into b's memory, growing it only when r
// holds more.
func readAll(b []byte, r io.Reader) ([]byte, error) {
	buf := bytes.NewBuffer(b[:0])
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}

// gunzipper is a gzip reader for reuse: its decompressor's window and
// tables and its read buffer are tens of kB, which a new reader per
// gzipped request allocated.
type gunzipper struct {
	br *bufio.Reader
	zr gzip.Reader
}

var gunzippers = sync.Pool{New: func() any { return &gunzipper{br: bufio.NewReader(nil)} }}

// getGunzipper returns a pooled gunzipper reading r, or the error of r's
// gzip header; release it after the read.
func getGunzipper(r io.Reader) (*gunzipper, error) {
	g := gunzippers.Get().(*gunzipper)
	g.br.Reset(r)
	if err := g.zr.Reset(g.br); err != nil {
		g.release()
		return nil, err
	}
	return g, nil
}

// release pools g, which keeps no reference to the request it read.
func (g *gunzipper) release() {
	g.br.Reset(nil)
	gunzippers.Put(g)
}
