package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/hourglass-io/hourglass/replicate"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/influx"
	"github.com/hourglass-io/hourglass/tsstore/promtsdb"
)

// fenceFile is the epoch fence (replicate.Fenced) of a local promtsdb
// replica, inside its directory: deleting the directory deletes the fence,
// which is how a lost replica is recognised.
const fenceFile = "hourglass-epoch"

// replicaSet is the store when the server replicates: a replicate.Store
// over fenced replicas, which it closes after the Store.
type replicaSet struct {
	*replicate.Store
	replicas []tsstore.Store // the primary first
	names    []string
	log      *slog.Logger
}

// Close closes the replicate.Store, then the replicas. A standby that
// fails to close (its directory was deleted, its server is gone) is
// logged, not returned: what the engine wrote is on the primary and in
// the hints, and the next start rebuilds or re-syncs the standby.
func (r *replicaSet) Close() error {
	errs := []error{r.Store.Close()}
	for i, s := range r.replicas {
		err := s.Close()
		if i > 0 && err != nil {
			r.log.Warn("closing a standby failed", "replica", r.names[i], "err", err)
			continue
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// localReplica is a promtsdb replica in a directory of the data dir.
type localReplica struct{ name, dir string }

// localReplicas returns the promtsdb replicas of c: the primary's directory
// (when the store is promtsdb) and the standbys'.
func (c *config) localReplicas() []localReplica {
	var out []localReplica
	if c.store == "promtsdb" {
		out = append(out, localReplica{"primary", filepath.Join(c.dataDir, "tsdb")})
	}
	for i := 1; i <= c.replicas; i++ {
		out = append(out, localReplica{fmt.Sprintf("standby-%d", i), filepath.Join(c.dataDir, fmt.Sprintf("tsdb-standby-%d", i))})
	}
	return out
}

// openReplicated opens the replicated store of c over the primary (already
// open): c.replicas promtsdb standbys in the data dir and the InfluxDB
// standbys, each behind an epoch fence, at ack level c.ackLevel. Local
// replicas that are new or were lost are first seeded (see seedReplicas).
// On error primary is not closed.
func openReplicated(ctx context.Context, c *config, primary tsstore.Store, primaryName string, log *slog.Logger) (_ *replicaSet, describe []string, err error) {
	stateDir := filepath.Join(c.dataDir, "replicate")
	set := &replicaSet{}
	defer func() {
		if err != nil {
			for _, s := range set.replicas[1:] {
				_ = s.Close()
			}
		}
	}()
	fenceDir := filepath.Join(stateDir, "fence")
	if err := os.MkdirAll(fenceDir, 0o755); err != nil {
		return nil, nil, err
	}
	fencePath := filepath.Join(fenceDir, primaryName+".epoch")
	if primaryName == "primary" {
		fencePath = filepath.Join(c.dataDir, "tsdb", fenceFile)
	}
	fp, err := replicate.NewFenced(primary, fencePath)
	if err != nil {
		return nil, nil, err
	}
	set.replicas = append(set.replicas, fp)
	names := []string{primaryName}
	for _, r := range c.localReplicas() {
		if r.name == "primary" {
			continue
		}
		s, err := promtsdb.Open(r.dir, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("standby %s: %w", r.name, err)
		}
		f, err := replicate.NewFenced(s, filepath.Join(r.dir, fenceFile))
		if err != nil {
			_ = s.Close()
			return nil, nil, err
		}
		set.replicas = append(set.replicas, f)
		names = append(names, r.name)
		describe = append(describe, "standby "+r.name+": promtsdb in "+r.dir)
	}
	for i, u := range splitList(c.standbyInflux) {
		api := c.influxAPI
		if api == "" { // detect; a standby that is down is written with v2 once up
			api = "v2"
			client := &http.Client{Timeout: startCheckTimeout}
			if _, v2, err := influxServer(ctx, client, u); err == nil && !v2 {
				api = "v1"
			}
			client.CloseIdleConnections()
		}
		s, err := influx.Open(u, c.influxOptions(api))
		if err != nil {
			return nil, nil, fmt.Errorf("standby %s: %w", u, err)
		}
		name := "influx-" + strconv.Itoa(i+1)
		st := &influxStandby{Store: s}
		if err := st.ensure(ctx); err != nil {
			log.Warn("standby is down at start: its writes are hinted until it answers", "replica", name, "url", u, "err", err)
		}
		f, err := replicate.NewFenced(st, filepath.Join(fenceDir, name+".epoch"))
		if err != nil {
			_ = s.Close()
			return nil, nil, err
		}
		set.replicas = append(set.replicas, f)
		names = append(names, name)
		describe = append(describe, "standby "+name+": InfluxDB "+u+" database "+c.influxDB)
	}
	rs, err := replicate.New(set.replicas[0], set.replicas[1:], &replicate.Options{
		Dir: stateDir, Names: names, Ack: c.ackLevel, Logger: log,
	})
	if err != nil {
		return nil, nil, err
	}
	set.Store, set.names, set.log = rs, names, log
	describe = append(describe, fmt.Sprintf("replication: %d standbys, ack %s, primary now %s, hints in %s", len(names)-1, c.ackLevel, rs.Primary(), stateDir))
	return set, describe, nil
}

// seedReplicas makes every local promtsdb replica that has no fence file (a
// new standby, or one whose directory was deleted) a copy of a replica that
// has one, before any is opened: the replicate.Store only copies what it
// writes, and reads go to any replica, so a standby added to a data dir
// with history, or rebuilt after a loss, must start with the history. The
// source is the primary of the last replicated run (from replicate's state),
// else any fenced replica, else (the first replicated run) the primary's
// directory. It returns what it did, for the log.
func seedReplicas(c *config) ([]string, error) {
	reps := c.localReplicas()
	if len(reps) < 2 {
		return nil, nil
	}
	fenced := func(r localReplica) bool {
		_, err := os.Stat(filepath.Join(r.dir, fenceFile))
		return err == nil
	}
	src := -1
	var st struct {
		Primary string `json:"primary"`
	}
	if b, err := os.ReadFile(filepath.Join(c.dataDir, "replicate", "state.json")); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	for i, r := range reps {
		if r.name == st.Primary && fenced(r) {
			src = i
		}
	}
	for i, r := range reps {
		if src < 0 && fenced(r) {
			src = i
		}
	}
	if src < 0 {
		if reps[0].name != "primary" {
			return nil, nil // an InfluxDB primary: nothing local to copy
		}
		src = 0
	}
	if ents, err := os.ReadDir(reps[src].dir); err != nil || len(ents) == 0 {
		return nil, nil // nothing to copy
	}
	var done []string
	for i, r := range reps {
		if i == src || fenced(r) {
			continue
		}
		if err := os.RemoveAll(r.dir); err != nil {
			return done, err
		}
		if err := copyDir(reps[src].dir, r.dir); err != nil {
			return done, fmt.Errorf("seeding replica %s from %s: %w", r.name, reps[src].name, err)
		}
		done = append(done, fmt.Sprintf("replica %s (%s) had no fence file (new or lost): seeded with a copy of %s", r.name, r.dir, reps[src].name))
	}
	return done, nil
}

// copyDir copies the directory tree src to dst (which must not exist),
// without promtsdb's lock file.
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if rel == "lock" || strings.HasPrefix(d.Name(), ".") && strings.Contains(d.Name(), ".tmp") {
			return nil
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		if err := out.Sync(); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

// influxStandby is an InfluxDB standby whose database is created on first
// use: a standby that is down when the server starts does not stop it (the
// replicate.Store hints its writes and replays them once it answers, and
// reads it only then). Safe for concurrent use.
type influxStandby struct {
	*influx.Store
	mu    sync.Mutex // guards ready
	ready bool
}

func (s *influxStandby) ensure(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready {
		return nil
	}
	if err := s.EnsureDatabase(ctx); err != nil {
		return err
	}
	s.ready = true
	return nil
}

// Write creates the database if needed, then writes.
func (s *influxStandby) Write(ctx context.Context, cells []tsstore.Cell) error {
	if err := s.ensure(ctx); err != nil {
		return tsstore.Errorf(tsstore.ErrUnavailable, "creating the database: %w", err)
	}
	return s.Store.Write(ctx, cells)
}

// Query creates the database if needed, then queries.
func (s *influxStandby) Query(ctx context.Context, q tsstore.Query) (*tsstore.Result, error) {
	if err := s.ensure(ctx); err != nil {
		return nil, tsstore.Errorf(tsstore.ErrUnavailable, "creating the database: %w", err)
	}
	return s.Store.Query(ctx, q)
}

// Cells creates the database if needed, then reads.
func (s *influxStandby) Cells(ctx context.Context, sel tsstore.Selector) ([]tsstore.Cell, error) {
	if err := s.ensure(ctx); err != nil {
		return nil, tsstore.Errorf(tsstore.ErrUnavailable, "creating the database: %w", err)
	}
	return s.Store.Cells(ctx, sel)
}
