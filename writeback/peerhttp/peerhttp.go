package peerhttp

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hourglass-io/hourglass/internal/wire"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/writeback"
)

// Path is where a Handler is mounted on each server.
const Path = "/internal/v1/peer-cells"

// Defaults of Client.
const (
	// DefaultTimeout bounds one peer's answer.
	DefaultTimeout = 2 * time.Second
	// MaxRequestBytes bounds a request's body (the selector).
	MaxRequestBytes = 1 << 20
	// MaxResponseBytes bounds a peer's answer.
	MaxResponseBytes = 1 << 30
)

// tokenLabel is what the cluster token signs: it differs from anything
// a merchant or admin token signs.
const tokenLabel = "hourglass peer cells v1"

// Token returns the cluster token of secret: what a Client sends and a
// Handler accepts.
func Token(secret []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(tokenLabel))
	return "hgc_" + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Handler serves an engine's cached cells to its peers: a POST of a JSON
// tsstore.Selector, answered with the cells (internal/wire encoding, with
// Writer and Seq). Configure its fields before serving, and do not change
// or copy it after: it derives the token of Secret once.
type Handler struct {
	// Cells answers a request; typically (*writeback.Engine).CachedCells.
	Cells func(ctx context.Context, sel tsstore.Selector) ([]tsstore.Cell, error)
	// Secret is the cluster secret; a request must carry Token(Secret).
	// An empty secret refuses every request.
	Secret []byte

	tokenOnce sync.Once
	token     []byte // Token(Secret), set by tokenOnce
}

// ServeHTTP answers one request: 401 without the cluster token, 405 for a
// method but POST, 400 for a bad selector, 503 when the engine is closed
// or its cache unavailable, else 200 with the cells.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hourglass-cluster"`)
		http.Error(w, "the cluster token is required", http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST a selector", http.StatusMethodNotAllowed)
		return
	}
	var sel tsstore.Selector
	if err := json.NewDecoder(io.LimitReader(r.Body, MaxRequestBytes)).Decode(&sel); err != nil {
		http.Error(w, "bad selector: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := sel.Validate(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	cells, err := h.Cells(r.Context(), sel)
	if err != nil {
		code := http.StatusInternalServerError
		switch {
		case errors.Is(err, tsstore.ErrInvalid):
			code = http.StatusBadRequest
		case errors.Is(err, tsstore.ErrClosed), errors.Is(err, tsstore.ErrUnavailable):
			code = http.StatusServiceUnavailable
		}
		http.Error(w, err.Error(), code)
		return
	}
	b := wire.AppendCells(make([]byte, 0, wire.CellsSize(cells)), cells)
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(b)
}

func (h *Handler) authorized(r *http.Request) bool {
	if len(h.Secret) == 0 {
		return false
	}
	h.tokenOnce.Do(func() { h.token = []byte(Token(h.Secret)) })
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), h.token) == 1
}

// Client is a writeback.Peers over other servers' Handlers. Configure its
// fields before use, and do not change or copy it after: it derives the
// token of Secret once. Safe for concurrent use.
type Client struct {
	// Peers are the base URLs of the other servers (Path is appended).
	Peers []string
	// Secret is the cluster secret.
	Secret []byte
	// Timeout bounds each peer's answer; 0 means DefaultTimeout.
	Timeout time.Duration
	// HTTP is the client to use; nil means http.DefaultClient.
	HTTP *http.Client

	mu       sync.Mutex // guards failures
	failures map[string]*atomic.Int64
	requests atomic.Int64

	authOnce sync.Once
	auth     string // "Bearer " + Token(Secret), set by authOnce
}

var _ writeback.Peers = (*Client)(nil)

// ClientStats counts a Client's requests and, per peer URL, the requests
// that failed (the peer was missing from an answer).
type ClientStats struct {
	Requests int64
	Failures map[string]int64
}

// Stats returns the client's counters.
func (c *Client) Stats() ClientStats {
	s := ClientStats{Requests: c.requests.Load(), Failures: map[string]int64{}}
	c.mu.Lock()
	defer c.mu.Unlock()
	for p, n := range c.failures {
		s.Failures[p] = n.Load()
	}
	return s
}

func (c *Client) fail(peer string) {
	c.mu.Lock()
	if c.failures == nil {
		c.failures = map[string]*atomic.Int64{}
	}
	n := c.failures[peer]
	if n == nil {
		n = new(atomic.Int64)
		c.failures[peer] = n
	}
	c.mu.Unlock()
	n.Add(1)
}

// PeerCells asks every peer at once for its cached cells of sel, each
// within Timeout; the peers that fail are missing, by URL.
func (c *Client) PeerCells(ctx context.Context, sel tsstore.Selector) ([]tsstore.Cell, []string, error) {
	if err := sel.Validate(); err != nil {
		return nil, nil, fmt.Errorf("peerhttp: %w", err)
	}
	body, err := json.Marshal(sel)
	if err != nil {
		return nil, nil, tsstore.Errorf(tsstore.ErrInvalid, "peerhttp: encode the selector: %v", err)
	}
	type answer struct {
		cells []tsstore.Cell
		err   error
	}
	answers := make([]answer, len(c.Peers))
	var wg sync.WaitGroup
	for i, p := range c.Peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i].cells, answers[i].err = c.ask(ctx, p, body)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	var out []tsstore.Cell
	var missing []string
	for i, a := range answers {
		c.requests.Add(1)
		if a.err != nil {
			c.fail(c.Peers[i])
			missing = append(missing, c.Peers[i])
			continue
		}
		out = append(out, a.cells...)
	}
	return out, missing, nil
}

// ask asks one peer.
func (c *Client) ask(ctx context.Context, peer string, body []byte) ([]tsstore.Cell, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(peer, "/")+Path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	c.authOnce.Do(func() { c.auth = "Bearer " + Token(c.Secret) })
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("Content-Type", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("peerhttp: %s: %s: %s", peer, resp.Status, bytes.TrimSpace(b))
	}
	r := wire.Reader{B: b}
	cells := r.Cells()
	if err := r.End(); err != nil {
		return nil, fmt.Errorf("peerhttp: %s: bad answer: %w", peer, err)
	}
	return cells, nil
}
