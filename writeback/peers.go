package writeback

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
)

// Peers gives an engine's queries the cells that other live writers (the
// other servers of a cluster) hold in their caches, so that a query through
// any engine sees every write acknowledged by any of them. Set it in
// Options.Peers. Implementations: EnginePeers (engines of this process),
// rediscache.Registry (the other prefixes in one Redis), peerhttp.Client
// (other servers over HTTP). Implementations must be safe for concurrent
// use.
type Peers interface {
	// PeerCells returns the cells selected by sel that the peers' caches
	// hold (never their stores' cells), each a partial with its store
	// identity (Writer, Seq) as the peer's engine flushes it, so that the
	// querying engine merges them with its own cache's cells and the
	// store's cells by identity. A cell may appear in the answer of two
	// peers (a prefix read by its owner and by the server taking it over)
	// only with the same identity and Agg.
	//
	// missing names the peers whose cells the answer lacks (unreachable,
	// too slow, closed): the answer is partial, never silently. err is for
	// failures of the whole call (an invalid selector, ctx done); the
	// query then fails with it.
	PeerCells(ctx context.Context, sel tsstore.Selector) (cells []tsstore.Cell, missing []string, err error)
}

// EnginePeers are engines of this process seen as Peers, by name: their
// caches' cells (CachedCells). For several engines in one process and for
// tests. An engine whose CachedCells fails (closed, its cache down) is
// missing. Do not change the map while queries run.
type EnginePeers map[string]*Engine

var _ Peers = EnginePeers(nil)

// PeerCells returns the cached cells of every engine, by name order.
func (p EnginePeers) PeerCells(ctx context.Context, sel tsstore.Selector) ([]tsstore.Cell, []string, error) {
	names := make([]string, 0, len(p))
	for name := range p {
		names = append(names, name)
	}
	slices.Sort(names)
	var out []tsstore.Cell
	var missing []string
	for _, name := range names {
		cs, err := p[name].CachedCells(ctx, sel)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			if errors.Is(err, tsstore.ErrInvalid) {
				return nil, nil, err
			}
			missing = append(missing, name)
			continue
		}
		out = append(out, cs...)
	}
	return out, missing, nil
}

// CachedCells returns the cells selected by sel that the engine's cache
// holds, each with the store identity (Writer, Seq) its flush gives it,
// and none of the store's: what the engine offers its peers (see Peers).
func (e *Engine) CachedCells(ctx context.Context, sel tsstore.Selector) ([]tsstore.Cell, error) {
	if e.closed.Load() {
		return nil, tsstore.Errorf(tsstore.ErrClosed, "writeback: cached cells")
	}
	if err := sel.Validate(); err != nil {
		return nil, fmt.Errorf("writeback: cached cells: %w", err)
	}
	cells, err := e.cachedCells(ctx, sel)
	if err != nil {
		return nil, fmt.Errorf("writeback: cached cells: %w", err)
	}
	return cells, nil
}

// cachedCells returns the cache's cells of sel, each with the store
// identity (Writer, Seq) that its generation's flush gives it.
func (e *Engine) cachedCells(ctx context.Context, sel tsstore.Selector) ([]tsstore.Cell, error) {
	cached, err := e.cache.Cells(ctx, sel)
	if err != nil {
		return nil, err
	}
	out := make([]tsstore.Cell, len(cached))
	for i := range cached {
		c := &cached[i]
		e.identify(&c.Cell, c.Gen)
		out[i] = c.Cell
	}
	return out, nil
}

// unflushedCells reads what a read merges with the store's cells: the
// cache's (cachedCells) and the peers' (peerCells), with the peers that
// did not answer. A read calls it before it reads the store: a cell
// committed after these reads is in the store then.
func (e *Engine) unflushedCells(ctx context.Context, sel tsstore.Selector) (cached, peer []tsstore.Cell, missing []string, err error) {
	if cached, err = e.cachedCells(ctx, sel); err != nil {
		return nil, nil, nil, fmt.Errorf("cache: %w", err)
	}
	if peer, missing, err = e.peerCells(ctx, sel); err != nil {
		return nil, nil, nil, err
	}
	return cached, peer, missing, nil
}

// peerCells reads the peers' cells of sel; none without Options.Peers.
func (e *Engine) peerCells(ctx context.Context, sel tsstore.Selector) ([]tsstore.Cell, []string, error) {
	if e.opts.Peers == nil {
		return nil, nil, nil
	}
	cells, missing, err := e.opts.Peers.PeerCells(ctx, sel)
	if err != nil {
		return nil, nil, fmt.Errorf("peers: %w", err)
	}
	return cells, missing, nil
}

// markStored records a stored cell's identity in seen when there are
// peer cells: a peer's copy of a cell the store holds may lack batches the
// peer had not folded yet (rediscache.Registry), while the stored copy is
// complete, so the store's copy wins.
func markStored(seen map[tsstore.CellID]struct{}, peer []tsstore.Cell, c *tsstore.Cell) {
	if len(peer) > 0 {
		seen[c.ID()] = struct{}{}
	}
}

// addPeerCells appends to out the peer cells whose identity is not in seen
// yet (the querying engine's cache, the store and the other peers come
// first), and records them in seen.
func addPeerCells(out []tsstore.Cell, seen map[tsstore.CellID]struct{}, peer []tsstore.Cell) []tsstore.Cell {
	for i := range peer {
		id := peer[i].ID()
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		out = append(out, peer[i])
	}
	return out
}

// CellIdentity returns the store identity (Writer, Seq) that an engine
// gives the cells of generation gen of a cache whose writer id is writer,
// first written under it at generation since (Cache.WriterID), for cells
// of width width. Peers that read another engine's cache without that
// engine (rediscache.Registry) name its cells with it.
func CellIdentity(writer string, since uint64, width time.Duration, gen uint64) (string, uint32) {
	return writerOf(writer, since, width.Milliseconds(), gen)
}

// notePartial counts and logs an answer that lacks the cells of missing
// peers. A read calls it once it returns the answer, never for a read that
// fails.
func (e *Engine) notePartial(what string, missing []string) {
	if len(missing) == 0 {
		return
	}
	e.stats.partial.Add(1)
	e.log.Warn("writeback: partial answer: peers did not answer", "what", what, "missing", missing)
}

// Cells returns every cell selected by sel, exactly once, from the cache,
// the peers (Options.Peers) and the store merged by identity (as Query
// merges them): each cell is a partial with its store identity (Writer,
// Seq), cached or stored, so summing the partials of a (series, Start)
// gives the exact cell. It is the engine's view for callers that aggregate
// on their own, such as a PromQL engine.
//
// When peers are missing the answer is partial: Cells returns it all the
// same (counted in Stats.PartialAnswers and logged); CellsDetailed says
// which peers are missing.
func (e *Engine) Cells(ctx context.Context, sel tsstore.Selector) ([]tsstore.Cell, error) {
	cells, _, err := e.CellsDetailed(ctx, sel)
	return cells, err
}

// Query answers q exactly from the cache, the peers (Options.Peers) and
// the store: the store alone for buckets older than the oldest selected
// cell in the cache or the peers, and for the rest the cached and peer
// cells merged with the store's cells by identity, so that a cell present
// in both while it is flushed counts once.
//
// When peers are missing the answer is partial: Query returns it all the
// same (counted in Stats.PartialAnswers and logged); QueryDetailed says
// which peers are missing.
func (e *Engine) Query(ctx context.Context, q Query) (*tsstore.Result, error) {
	r, _, err := e.QueryDetailed(ctx, q)
	return r, err
}
