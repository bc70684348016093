package main

import (
	"net/http"
	"time"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/writeback"
)

// quarantinedCell is one cell of GET /v1/admin/quarantine: a cell the store
// refused for good during a flush (writeback.Engine.Quarantined).
type quarantinedCell struct {
	Metric     string            `json:"metric"`
	Labels     map[string]string `json:"labels"`
	Start      time.Time         `json:"start"`
	Writer     string            `json:"writer"`
	Seq        uint32            `json:"seq"`
	Count      float64           `json:"count"`
	Sum        float64           `json:"sum"`
	Min        float64           `json:"min"`
	Max        float64           `json:"max"`
	Generation uint64            `json:"generation"`
	Reason     string            `json:"reason"`
	Time       time.Time         `json:"time"`
}

// quarantineResponse is the answer of GET /v1/admin/quarantine: this
// server's writer id and its quarantined cells.
type quarantineResponse struct {
	Writer string            `json:"writer"`
	Count  int               `json:"count"`
	Cells  []quarantinedCell `json:"cells"`
}

func toQuarantined(qs []writeback.QuarantinedCell) []quarantinedCell {
	out := make([]quarantinedCell, 0, len(qs))
	for _, q := range qs {
		out = append(out, quarantinedCell{
			Metric: q.Cell.Metric, Labels: q.Cell.Labels.Map(), Start: tsstore.TimeOf(q.Cell.Start), Writer: q.Cell.Writer, Seq: q.Cell.Seq,
			Count: float64(q.Cell.Count), Sum: q.Cell.Sum, Min: q.Cell.Min, Max: q.Cell.Max,
			Generation: q.Gen, Reason: q.Reason, Time: q.Time.UTC(),
		})
	}
	return out
}

// getQuarantine is GET /v1/admin/quarantine: the cells the store refused
// for good, which the cache keeps until they are resubmitted.
func (a *api) getQuarantine(w http.ResponseWriter, r *http.Request) {
	qs, err := a.eng.Quarantined(r.Context())
	if err != nil {
		a.writeEngineError(w, "quarantine", err)
		return
	}
	writeJSON(w, http.StatusOK, quarantineResponse{Writer: a.eng.WriterID(), Count: len(qs), Cells: toQuarantined(qs)})
}

// resubmitResponse is the answer of POST /v1/admin/quarantine/resubmit.
type resubmitResponse struct {
	Landed  []quarantinedCell `json:"landed"`
	Refused []quarantinedCell `json:"refused"`
}

// postResubmit is POST /v1/admin/quarantine/resubmit: write every
// quarantined cell to the store again; those that land leave the
// quarantine, those refused again stay with the new reason.
func (a *api) postResubmit(w http.ResponseWriter, r *http.Request) {
	rep, err := a.eng.Resubmit(r.Context())
	if err != nil {
		a.writeEngineError(w, "resubmit", err)
		return
	}
	writeJSON(w, http.StatusOK, resubmitResponse{Landed: toQuarantined(rep.Landed), Refused: toQuarantined(rep.Refused)})
}
