package replicate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hourglass-io/hourglass/internal/atomicfile"
)

// state is what a Store keeps across restarts in Dir/state.json: its epoch,
// the primary of that epoch, and the replicas that must be re-synced.
type state struct {
	Epoch   uint64                 `json:"epoch"`
	Primary string                 `json:"primary"`
	Stale   map[string]*staleRange `json:"stale,omitempty"`
}

// staleRange is what a stale replica misses: the writes MinSeq..MaxSeq
// whose hints were dropped, covering the cells of Metrics in [From, To)
// with the flush identities Seqs (the legacy writer's) and Flushes; Last
// is the time of the newest of them (unix ns).
type staleRange struct {
	MinSeq uint64 `json:"min_seq"`
	MaxSeq uint64 `json:"max_seq"`
	Last   int64  `json:"last,omitempty"`
	span
}

func statePath(dir string) string { return filepath.Join(dir, "state.json") }

func loadState(dir string) (*state, error) {
	b, err := os.ReadFile(statePath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", statePath(dir), err)
	}
	return &st, nil
}

// saveState writes the state durably. s.stateMu is held.
func (s *Store) saveStateLocked() error {
	b, err := json.MarshalIndent(&s.state, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(statePath(s.opts.Dir), b)
}

// setStale records (st != nil) or clears the stale range of a replica,
// durably.
func (s *Store) setStale(name string, st *staleRange) error {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	if st == nil {
		delete(s.state.Stale, name)
	} else {
		if s.state.Stale == nil {
			s.state.Stale = make(map[string]*staleRange)
		}
		c := *st
		s.state.Stale[name] = &c
	}
	return s.saveStateLocked()
}
