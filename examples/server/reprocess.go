package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/hourglass-io/hourglass/httpapi"
	"github.com/hourglass-io/hourglass/reprocess"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/writeback"
)

// liveVersion is the version id that POST /v1/admin/reprocess/live/switch
// switches reads back to: the live store alone. No job may take it.
const liveVersion = "live"

// versionPattern is what a job (version) id may be.
var versionPattern = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,64}$`)

// Job states, as GET /v1/admin/reprocess/{id} reports them.
const (
	jobFlushing    = "flushing"    // flushing the live engine so that the range is archived
	jobRunning     = "running"     // reading the archive into the version
	jobComparing   = "comparing"   // computing the diff against what reads serve
	jobCompleted   = "completed"   // done: diff available; switchable unless a dry run
	jobFailed      = "failed"      // stopped by an error (see error); POST again to resume
	jobInterrupted = "interrupted" // stopped by a shutdown; POST the same job again to resume
)

// reprocessJobs runs and tracks reprocess jobs: each reads the archive of a
// time range through a processor version into a new store version (under
// <data>/reprocess, switchable) or, for a dry run, into a version of a
// separate catalog (<data>/reprocess-dry-run) that never serves reads.
// Safe for concurrent use; Close stops the jobs and waits for them.
type reprocessJobs struct {
	eng      *writeback.Engine // flushed before a job lists the archive
	archive  archive.Archive   // read by jobs; nil: jobs are refused
	versions *reprocess.Versions
	dryRuns  *reprocess.Versions
	sw       *reprocess.Switchable
	metrics  *reprocess.Metrics
	log      *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex           // guards jobs, opened and the fields of every job
	jobs map[string]*jobState // jobs started by this process
	// opened are the versions the Switchable has opened (it keeps them
	// open until Close): their stores cannot be opened again for a diff
	// or a catch-up while they do not serve reads.
	opened map[string]bool
}

// jobState is a job started by this process. Its fields are guarded by
// reprocessJobs.mu.
type jobState struct {
	state     string
	dryRun    bool
	processor string
	merchant  string
	progress  reprocess.Progress
	err       string
}

func newReprocessJobs(eng *writeback.Engine, arch archive.Archive, versions, dryRuns *reprocess.Versions, sw *reprocess.Switchable, m *reprocess.Metrics, log *slog.Logger) *reprocessJobs {
	ctx, cancel := context.WithCancel(context.Background())
	j := &reprocessJobs{eng: eng, archive: arch, versions: versions, dryRuns: dryRuns, sw: sw, metrics: m, log: log,
		ctx: ctx, cancel: cancel, jobs: map[string]*jobState{}, opened: map[string]bool{}}
	if id := sw.Current(); id != "" {
		j.opened[id] = true
	}
	return j
}

// lockedOut reports whether version id is held open by the Switchable
// without serving reads.
func (j *reprocessJobs) lockedOut(id string) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.opened[id] && j.sw.Current() != id
}

// lockedOutMessage explains lockedOut.
func lockedOutMessage(id string) string {
	return "version " + id + " served reads earlier in this server's life and its store stays open until a restart; restart the server to compare or catch it up"
}

// Close cancels the running jobs and waits for them; they resume from their
// checkpoints when started again.
func (j *reprocessJobs) Close() {
	j.cancel()
	j.wg.Wait()
}

// jobRequest is the body of POST /v1/admin/reprocess.
type jobRequest struct {
	ID        string   `json:"id"`
	Processor string   `json:"processor"`
	From      string   `json:"from"`
	To        string   `json:"to"`
	Merchant  string   `json:"merchant"`
	DryRun    bool     `json:"dry_run"`
	Rate      *float64 `json:"rate"`
}

// jobStatus is the answer of the reprocess endpoints about one job.
type jobStatus struct {
	ID        string    `json:"id"`
	State     string    `json:"state"`
	DryRun    bool      `json:"dry_run"`
	Processor string    `json:"processor"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Merchant  string    `json:"merchant,omitempty"`
	// Points are the raw points read so far; PointsTotal estimates those of
	// the range (the points of the archive segments it overlaps).
	Points      int64    `json:"points"`
	PointsTotal int64    `json:"points_total"`
	Fraction    float64  `json:"fraction"`
	Rate        float64  `json:"points_per_second,omitempty"`
	ETA         string   `json:"eta,omitempty"`
	Cells       int64    `json:"cells"`
	Segments    int      `json:"segments"`
	Metrics     []string `json:"metrics,omitempty"`
	Error       string   `json:"error,omitempty"`
	// Current reports that the version serves reads of its range.
	Current   bool       `json:"current"`
	Diff      string     `json:"diff,omitempty"`
	Created   time.Time  `json:"created,omitzero"`
	Completed *time.Time `json:"completed,omitempty"`
}

// jobList is the answer of GET /v1/admin/reprocess.
type jobList struct {
	// Current is the version serving reads of its range ("" for the live
	// store alone).
	Current    string      `json:"current"`
	Processors []string    `json:"processors"`
	Jobs       []jobStatus `json:"jobs"`
}

// parseJob checks a job request. Errors name the field.
func (j *reprocessJobs) parseJob(req *jobRequest, width time.Duration, now time.Time) (reprocess.Job, error) {
	job := reprocess.Job{ID: req.ID, Archive: j.archive}
	switch {
	case req.ID == "":
		return job, fmt.Errorf("field \"id\": required (1 to 64 of [a-zA-Z0-9_.-], naming the new version)")
	case !versionPattern.MatchString(req.ID) || req.ID == "." || req.ID == "..":
		return job, fmt.Errorf("field \"id\": %s is not 1 to 64 of [a-zA-Z0-9_.-]", quote(req.ID))
	case req.ID == liveVersion:
		return job, fmt.Errorf("field \"id\": %q is reserved (it names the live store)", liveVersion)
	}
	p := processors[req.Processor]
	if p == nil {
		return job, fmt.Errorf("field \"processor\": %s is not a known processor version (known: %v)", quote(req.Processor), processorVersions())
	}
	job.Processor = p
	wms := width.Milliseconds()
	parse := func(field, s string, def string) (int64, error) {
		if s == "" {
			if def == "" {
				return 0, fmt.Errorf("field %q: required (RFC 3339, milliseconds, now or now-<duration>)", field)
			}
			s = def
		}
		t, err := httpapi.ParseTime(s, now)
		if err != nil {
			return 0, fmt.Errorf("field %q: %w", field, err)
		}
		if httpapi.IsRelativeTime(s) {
			return tsstore.CellStart(t, width), nil
		}
		if t%wms != 0 {
			return 0, fmt.Errorf("field %q: %s is not a multiple of the cell width %v", field, tsstore.TimeOf(t).Format(time.RFC3339Nano), width)
		}
		return t, nil
	}
	var err error
	if job.From, err = parse("from", req.From, ""); err != nil {
		return job, err
	}
	if job.Cutover, err = parse("to", req.To, "now"); err != nil {
		return job, err
	}
	if job.From < 0 {
		return job, fmt.Errorf("field \"from\": before 1970")
	}
	if job.Cutover > tsstore.Millis(now) {
		return job, fmt.Errorf("field \"to\": %s is in the future (a job reprocesses archived history)", tsstore.TimeOf(job.Cutover).Format(time.RFC3339))
	}
	if job.From >= job.Cutover {
		return job, fmt.Errorf("fields \"from\" and \"to\": %s is not before %s", tsstore.TimeOf(job.From).Format(time.RFC3339), tsstore.TimeOf(job.Cutover).Format(time.RFC3339))
	}
	if req.Merchant != "" {
		if err := httpapi.ValidateMerchant(req.Merchant); err != nil {
			return job, fmt.Errorf("field \"merchant\": %w", err)
		}
		job.Matchers = []tsstore.Matcher{{Type: tsstore.MatchEqual, Name: "merchant", Value: req.Merchant}}
	}
	if req.Rate != nil {
		if *req.Rate < 0 {
			return job, fmt.Errorf("field \"rate\": %v is negative (raw points per second; 0 means no limit)", *req.Rate)
		}
		job.Rate = *req.Rate
	}
	return job, nil
}

// catalog returns the catalog of a job.
func (j *reprocessJobs) catalog(dry bool) *reprocess.Versions {
	if dry {
		return j.dryRuns
	}
	return j.versions
}

// find returns the lineage of version id and whether it is a dry run;
// lin is nil when neither catalog has it.
func (j *reprocessJobs) find(id string) (lin *reprocess.Lineage, dry bool, err error) {
	for _, dry := range []bool{false, true} {
		l, err := j.catalog(dry).Lineage(id)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		return l, dry, nil
	}
	return nil, false, nil
}

// start starts job in the background. The version must not exist with
// other parameters, nor be running; an interrupted one is resumed.
func (j *reprocessJobs) start(job reprocess.Job, dry bool) (int, error) {
	lin, linDry, err := j.find(job.ID)
	if err != nil {
		return http.StatusInternalServerError, err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if s := j.jobs[job.ID]; s != nil && s.state != jobFailed && s.state != jobCompleted {
		return http.StatusConflict, fmt.Errorf("job %s is %s", job.ID, s.state)
	}
	if lin != nil {
		same := lin.Processor == job.Processor.Version() && lin.From == job.From && lin.Cutover == job.Cutover &&
			len(lin.Filter) == len(job.Matchers) && (len(job.Matchers) == 0 || lin.Filter[0] == job.Matchers[0].String())
		switch {
		case linDry != dry:
			return http.StatusConflict, fmt.Errorf("version %s exists as a %s; choose another id", job.ID, map[bool]string{true: "dry run", false: "switchable version"}[linDry])
		case !same:
			return http.StatusConflict, fmt.Errorf("version %s exists with other parameters (processor %s, range [%s, %s), filter %v); choose another id",
				job.ID, lin.Processor, tsstore.TimeOf(lin.From).Format(time.RFC3339), tsstore.TimeOf(lin.Cutover).Format(time.RFC3339), lin.Filter)
		case lin.Complete():
			return http.StatusConflict, fmt.Errorf("version %s is complete (GET /v1/admin/reprocess/%s); choose another id to run again", job.ID, job.ID)
		}
	}
	s := &jobState{state: jobFlushing, dryRun: dry, processor: job.Processor.Version(), progress: reprocess.Progress{ID: job.ID, From: job.From, Cutover: job.Cutover}}
	if len(job.Matchers) > 0 {
		s.merchant = job.Matchers[0].Value
	}
	j.jobs[job.ID] = s
	job.Metrics = j.metrics
	job.Logger = j.log
	job.Progress = func(p reprocess.Progress) {
		j.mu.Lock()
		s.progress = p
		j.mu.Unlock()
	}
	j.wg.Go(func() { j.run(job, s) })
	return http.StatusAccepted, nil
}

// run flushes the live engine (so that every point of the range written so
// far is archived), runs the job, and computes its diff against what reads
// serve.
func (j *reprocessJobs) run(job reprocess.Job, s *jobState) {
	set := func(state string, err error) {
		j.mu.Lock()
		defer j.mu.Unlock()
		s.state = state
		if err != nil {
			s.err = err.Error()
		}
	}
	fail := func(err error) {
		if j.ctx.Err() != nil {
			set(jobInterrupted, err)
			return
		}
		j.log.Error("reprocess job failed", "version", job.ID, "err", err)
		set(jobFailed, err)
	}
	if _, err := j.eng.Flush(j.ctx); err != nil {
		fail(fmt.Errorf("flushing the live engine before reading the archive: %w", err))
		return
	}
	set(jobRunning, nil)
	cat := j.catalog(s.dryRun)
	lin, err := cat.Run(j.ctx, job)
	if err != nil {
		fail(err)
		return
	}
	set(jobComparing, nil)
	d, err := cat.Compare(j.ctx, job.ID, j.sw, &reprocess.DiffOptions{Metrics: processorMetrics})
	if err != nil {
		fail(fmt.Errorf("diff: %w", err))
		return
	}
	j.log.Info("reprocess job completed", "version", job.ID, "dry_run", s.dryRun, "points", lin.Points, "cells", lin.Cells, "diff", d.String())
	set(jobCompleted, nil)
}

// status describes version id; ok is false when it is unknown.
func (j *reprocessJobs) status(id string) (st jobStatus, ok bool, err error) {
	lin, dry, err := j.find(id)
	if err != nil {
		return st, false, err
	}
	j.mu.Lock()
	s := j.jobs[id]
	var mem jobState
	if s != nil {
		mem = *s
	}
	j.mu.Unlock()
	if lin == nil && s == nil {
		return st, false, nil
	}
	st = jobStatus{ID: id}
	if lin != nil {
		st.DryRun, st.Processor, st.Segments, st.Metrics, st.Created = dry, lin.Processor, len(lin.Segments), lin.Metrics, lin.Created
		st.From, st.To = tsstore.TimeOf(lin.From).UTC(), tsstore.TimeOf(lin.Cutover).UTC()
		for _, sg := range lin.Segments {
			st.PointsTotal += sg.Points
		}
		if len(lin.Filter) > 0 {
			if ms, err := filterMerchant(lin.Filter); err == nil {
				st.Merchant = ms
			}
		}
		if lin.Complete() {
			c := lin.Completed
			st.Completed = &c
			st.Points, st.Cells, st.Fraction = lin.Points, lin.Cells, 1
			st.PointsTotal = max(st.PointsTotal, lin.Points)
		}
	}
	switch {
	case s != nil:
		st.State, st.DryRun, st.Error, st.Processor, st.Merchant = mem.state, mem.dryRun, mem.err, mem.processor, mem.merchant
		if st.Completed == nil {
			p := mem.progress
			st.Points, st.PointsTotal, st.Fraction, st.Rate = p.Points, max(st.PointsTotal, p.Total), p.Fraction, p.Rate
			st.From, st.To = tsstore.TimeOf(p.From).UTC(), tsstore.TimeOf(p.Cutover).UTC()
			if p.ETA > 0 {
				st.ETA = p.ETA.Round(time.Second).String()
			}
		}
	case lin.Complete():
		st.State = jobCompleted
	default:
		st.State = jobInterrupted
		st.Error = "the job was interrupted (server restart); POST the same job again to resume it from its checkpoint"
	}
	if st.State == jobCompleted {
		if d, err := j.readDiff(id, dry); err == nil {
			st.Diff = d.String()
		}
	}
	st.Current = !dry && j.sw.Current() == id
	return st, true, nil
}

// filterMerchant returns the merchant of a job's filter (merchant="m").
func filterMerchant(filter []string) (string, error) {
	var m string
	_, err := fmt.Sscanf(filter[0], "merchant=%q", &m)
	return m, err
}

// readDiff reads the diff kept in the version's diff.json.
func (j *reprocessJobs) readDiff(id string, dry bool) (*reprocess.Diff, error) {
	b, err := os.ReadFile(filepath.Join(j.catalog(dry).Dir(id), "diff.json"))
	if err != nil {
		return nil, err
	}
	var d reprocess.Diff
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// postReprocess is POST /v1/admin/reprocess: start a job.
func (a *api) postReprocess(w http.ResponseWriter, r *http.Request) {
	if a.jobs.archive == nil {
		writeError(w, http.StatusConflict, "reprocess needs an archive: this server runs with -archive-dirs none and no S3 archive")
		return
	}
	var req jobRequest
	if err := decodeBody(w, r, 64<<10, &req); err != nil {
		writeError(w, http.StatusBadRequest, `body: want {"id": "<version>", "processor": "<version>", "from": "<time>", "to": "<time>", "merchant": "<id>", "dry_run": false, "rate": 0}: `+err.Error())
		return
	}
	job, err := a.jobs.parseJob(&req, a.eng.CellWidth(), a.now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	code, err := a.jobs.start(job, req.DryRun)
	if err != nil {
		writeError(w, code, err.Error())
		return
	}
	st, _, err := a.jobs.status(job.ID)
	if err != nil {
		a.writeEngineError(w, "reprocess", err)
		return
	}
	w.Header().Set("Location", "/v1/admin/reprocess/"+job.ID)
	writeJSON(w, code, st)
}

// listReprocess is GET /v1/admin/reprocess: every version and job.
func (a *api) listReprocess(w http.ResponseWriter, r *http.Request) {
	out := jobList{Current: a.jobs.sw.Current(), Processors: processorVersions(), Jobs: []jobStatus{}}
	seen := map[string]bool{}
	for _, cat := range []*reprocess.Versions{a.jobs.versions, a.jobs.dryRuns} {
		lins, err := cat.List()
		if err != nil {
			a.writeEngineError(w, "reprocess", err)
			return
		}
		for _, l := range lins {
			seen[l.ID] = true
		}
	}
	a.jobs.mu.Lock()
	for id := range a.jobs.jobs {
		seen[id] = true
	}
	a.jobs.mu.Unlock()
	for _, id := range sortedKeys(seen) {
		st, ok, err := a.jobs.status(id)
		if err != nil {
			a.writeEngineError(w, "reprocess", err)
			return
		}
		if ok {
			out.Jobs = append(out.Jobs, st)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// jobPath returns the {id} of a reprocess path, answering 400 or 404 when
// it is bad or unknown.
func (a *api) jobPath(w http.ResponseWriter, r *http.Request) (jobStatus, bool) {
	id := r.PathValue("id")
	if !versionPattern.MatchString(id) || id == "." || id == ".." {
		writeError(w, http.StatusBadRequest, "version id "+quote(id)+": want 1 to 64 of [a-zA-Z0-9_.-]")
		return jobStatus{}, false
	}
	st, ok, err := a.jobs.status(id)
	if err != nil {
		a.writeEngineError(w, "reprocess", err)
		return st, false
	}
	if !ok {
		writeError(w, http.StatusNotFound, "no reprocess job or version "+quote(id)+" (GET /v1/admin/reprocess lists them)")
		return st, false
	}
	return st, true
}

// getReprocess is GET /v1/admin/reprocess/{id}: a job's state and progress.
func (a *api) getReprocess(w http.ResponseWriter, r *http.Request) {
	if st, ok := a.jobPath(w, r); ok {
		writeJSON(w, http.StatusOK, st)
	}
}

// getReprocessDiff is GET /v1/admin/reprocess/{id}/diff: the diff of the
// version against what reads served when the job completed, or, with
// refresh=true, now (not while the version itself serves reads).
func (a *api) getReprocessDiff(w http.ResponseWriter, r *http.Request) {
	st, ok := a.jobPath(w, r)
	if !ok {
		return
	}
	refresh := false
	switch v := r.URL.Query().Get("refresh"); v {
	case "", "false", "0":
	case "true", "1":
		refresh = true
	default:
		writeError(w, http.StatusBadRequest, "refresh "+quote(v)+": want true or false")
		return
	}
	if st.State != jobCompleted {
		writeError(w, http.StatusConflict, "job "+st.ID+" is "+st.State+"; its diff comes when it has completed")
		return
	}
	if refresh {
		if a.jobs.lockedOut(st.ID) {
			writeError(w, http.StatusConflict, lockedOutMessage(st.ID))
			return
		}
		if st.Current {
			writeError(w, http.StatusConflict, "version "+st.ID+" serves reads: it cannot be compared with itself; switch to live first (POST /v1/admin/reprocess/live/switch)")
			return
		}
		if _, err := a.jobs.catalog(st.DryRun).Compare(r.Context(), st.ID, a.jobs.sw, &reprocess.DiffOptions{Metrics: processorMetrics}); err != nil {
			a.writeEngineError(w, "reprocess", err)
			return
		}
	}
	d, err := a.jobs.readDiff(st.ID, st.DryRun)
	if errors.Is(err, fs.ErrNotExist) && !refresh && !st.Current && !a.jobs.lockedOut(st.ID) {
		// Completed, but stopped before its diff was kept: compare now.
		if d, err = a.jobs.catalog(st.DryRun).Compare(r.Context(), st.ID, a.jobs.sw, &reprocess.DiffOptions{Metrics: processorMetrics}); err == nil {
			writeJSON(w, http.StatusOK, d)
			return
		}
	}
	if err != nil {
		a.writeEngineError(w, "reprocess", err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// switchResponse is the answer of POST /v1/admin/reprocess/{id}/switch.
type switchResponse struct {
	Current  string `json:"current"`
	Previous string `json:"previous"`
}

// postReprocessSwitch is POST /v1/admin/reprocess/{id}/switch: serve reads
// of the version's range from it (id "live": from the live store alone).
func (a *api) postReprocessSwitch(w http.ResponseWriter, r *http.Request) {
	prev := a.jobs.sw.Current()
	if r.PathValue("id") == liveVersion {
		if err := a.jobs.sw.Switch(""); err != nil {
			a.writeEngineError(w, "reprocess", err)
			return
		}
		a.log.Info("reprocess: reads switched to the live store", "previous", prev)
		writeJSON(w, http.StatusOK, switchResponse{Current: "", Previous: prev})
		return
	}
	st, ok := a.jobPath(w, r)
	if !ok {
		return
	}
	switch {
	case st.DryRun:
		writeError(w, http.StatusConflict, "version "+st.ID+" is a dry run: it never serves reads; run the job again without dry_run")
		return
	case st.State != jobCompleted:
		writeError(w, http.StatusConflict, "job "+st.ID+" is "+st.State+"; only a completed version can serve reads")
		return
	}
	if err := a.jobs.sw.Switch(st.ID); err != nil {
		a.writeEngineError(w, "reprocess", err)
		return
	}
	a.jobs.mu.Lock()
	a.jobs.opened[st.ID] = true
	a.jobs.mu.Unlock()
	a.log.Info("reprocess: reads switched", "version", st.ID, "previous", prev)
	writeJSON(w, http.StatusOK, switchResponse{Current: st.ID, Previous: prev})
}

// catchUpResponse is the answer of POST /v1/admin/reprocess/{id}/catchup.
type catchUpResponse struct {
	ID          string `json:"id"`
	PointsAdded int64  `json:"points_added"`
}

// postReprocessCatchUp is POST /v1/admin/reprocess/{id}/catchup: flush the
// live engine, then add to the version the points of its range archived
// since its job read the archive (late data).
func (a *api) postReprocessCatchUp(w http.ResponseWriter, r *http.Request) {
	st, ok := a.jobPath(w, r)
	if !ok {
		return
	}
	if st.State != jobCompleted {
		writeError(w, http.StatusConflict, "job "+st.ID+" is "+st.State+"; catch up a completed version")
		return
	}
	p := processors[st.Processor]
	if p == nil {
		writeError(w, http.StatusConflict, "version "+st.ID+" was made by processor "+st.Processor+", which this server does not know")
		return
	}
	if a.jobs.lockedOut(st.ID) {
		writeError(w, http.StatusConflict, lockedOutMessage(st.ID))
		return
	}
	if _, err := a.eng.Flush(r.Context()); err != nil {
		a.writeEngineError(w, "flush", err)
		return
	}
	var n int64
	var err error
	if st.Current {
		n, err = a.jobs.sw.CatchUp(r.Context(), a.jobs.archive, p)
	} else {
		n, err = a.jobs.catalog(st.DryRun).CatchUp(r.Context(), st.ID, a.jobs.archive, p)
	}
	if err != nil {
		a.writeEngineError(w, "reprocess", err)
		return
	}
	writeJSON(w, http.StatusOK, catchUpResponse{ID: st.ID, PointsAdded: n})
}
