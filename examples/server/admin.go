package main

import (
	"encoding/json"
	"net/http"
)

// flushResponse is the answer of POST /v1/admin/flush.
type flushResponse struct {
	Committed []uint64 `json:"committed"`
	Cells     int64    `json:"cells"`
	Points    int64    `json:"points"`
	Segments  int      `json:"segments"`
	Duration  string   `json:"duration"`
	Overrun   bool     `json:"overrun"`
	// Writer is this server's writer id; Quarantined the cells the store
	// refused for good in this flush (GET /v1/admin/quarantine lists them).
	Writer      string `json:"writer"`
	Quarantined int64  `json:"quarantined"`
}

// postFlush is POST /v1/admin/flush: flush the cache to the store and the
// archives now.
func (a *api) postFlush(w http.ResponseWriter, r *http.Request) {
	rep, err := a.eng.Flush(r.Context())
	if err != nil {
		a.writeEngineError(w, "flush", err)
		return
	}
	c := rep.Committed
	if c == nil {
		c = []uint64{}
	}
	writeJSON(w, http.StatusOK, flushResponse{
		Committed: c, Cells: rep.Cells, Points: rep.Points, Segments: rep.Segments,
		Duration: rep.Duration.String(), Overrun: rep.Overrun,
		Writer: a.eng.WriterID(), Quarantined: rep.Quarantined,
	})
}

// merchantRequest is the body of POST /v1/admin/merchants.
type merchantRequest struct {
	Merchant string `json:"merchant"`
}

// postMerchant is POST /v1/admin/merchants: issue the token of a merchant.
// Tokens are derived from the merchant id and the secret, so issuing one
// twice returns the same token.
func (a *api) postMerchant(w http.ResponseWriter, r *http.Request) {
	var req merchantRequest
	if err := decodeBody(w, r, 4096, &req); err != nil {
		writeError(w, http.StatusBadRequest, "body: want {\"merchant\": \"<id>\"}: "+err.Error())
		return
	}
	tok, err := a.tokens.MerchantToken(req.Merchant)
	if err != nil {
		writeError(w, http.StatusBadRequest, "field \"merchant\": "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"merchant": req.Merchant, "token": tok})
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
