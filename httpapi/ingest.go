package httpapi

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/hourglass-io/hourglass/internal/lineproto"
	"github.com/hourglass-io/hourglass/tsstore"
)

// errTooLarge reports a body over the limit.
var errTooLarge = errors.New("request body too large")

// readBody reads the request body into buf's memory, gzip-decoded when
// Content-Encoding says so, refusing more than a.maxBody bytes (before and
// after decoding). buf grows as the bytes arrive, not by Content-Length:
// a request that only claims a large body allocates nothing for it.
func (a *API) readBody(w http.ResponseWriter, r *http.Request, buf []byte) ([]byte, error) {
	var body io.Reader = http.MaxBytesReader(w, r.Body, a.maxBody)
	switch enc := strings.ToLower(r.Header.Get("Content-Encoding")); enc {
	case "", "identity":
	case "gzip":
		g, err := getGunzipper(body)
		if err != nil {
			return nil, classifyRead(err)
		}
		defer g.release()
		body = &g.zr
	default:
		return nil, tsstore.Errorf(tsstore.ErrInvalid, "Content-Encoding %q: only gzip is accepted", enc)
	}
	b, err := readAll(buf[:0], io.LimitReader(body, a.maxBody+1))
	if err != nil {
		return nil, classifyRead(err)
	}
	if int64(len(b)) > a.maxBody {
		return nil, errTooLarge
	}
	return b, nil
}

func classifyRead(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errTooLarge
	}
	return tsstore.Errorf(tsstore.ErrInvalid, "reading the body: %w", err)
}

// bodyError answers a readBody error: 413 or 400.
func (a *API) bodyError(w http.ResponseWriter, api string, err error) {
	if errors.Is(err, errTooLarge) {
		a.reject(api, "too_large")
		Error(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes; send smaller batches", a.maxBody))
		return
	}
	a.reject(api, "invalid")
	Error(w, http.StatusBadRequest, err.Error())
}

// admit waits, when the engine bounds the writes running at once
// (Admitter), until this request may parse and write its body; it
// answers 503 and reports false when the request ends first (its client
// gone: counted as "cancelled", not as an outage), and 503 with
// Retry-After when too many requests wait already (the engine's
// tsstore.ErrBackPressure: counted as "unavailable", as a full cache).
func (a *API) admit(w http.ResponseWriter, r *http.Request, api string) (release func(), ok bool) {
	if a.admitter == nil {
		return func() {}, true
	}
	release, err := a.admitter.Admit(r.Context())
	if errors.Is(err, tsstore.ErrBackPressure) {
		a.reject(api, "unavailable")
		a.WriteEngineError(w, "write", err)
		return nil, false
	}
	if err != nil {
		a.reject(api, "cancelled")
		Error(w, http.StatusServiceUnavailable, fmt.Sprintf("waiting to write while the server flushes: %v", err))
		return nil, false
	}
	return release, true
}

// write hands the points of one request to the engine in ONE Write: all of
// them are kept or none.
func (a *API) write(w http.ResponseWriter, r *http.Request, api string, points []tsstore.Point) bool {
	if err := a.eng.Write(r.Context(), points); err != nil {
		reason := "invalid"
		if !errors.Is(err, tsstore.ErrInvalid) {
			reason = "unavailable"
		}
		a.reject(api, reason)
		a.WriteEngineError(w, "write", err)
		return false
	}
	a.metrics.ingested(api, len(points))
	return true
}

// postEvents is POST /v1/events: a JSON array of events (Content-Type
// application/json) or NDJSON (application/x-ndjson, application/jsonl).
func (a *API) postEvents(w http.ResponseWriter, r *http.Request, merchant string) {
	const api = "events"
	parse := parseEventsJSON
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		switch {
		case err != nil:
			a.reject(api, "invalid")
			Error(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q: %v", ct, err))
			return
		case mt == "application/json", mt == "application/x-www-form-urlencoded": // curl -d's default
		case mt == "application/x-ndjson" || mt == "application/ndjson" || mt == "application/jsonl" || mt == "application/x-jsonlines":
			parse = parseEventsNDJSON
		default:
			a.reject(api, "invalid")
			Error(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q: want application/json (an array of events) or application/x-ndjson (one event per line)", mt))
			return
		}
	}
	buf := getIngestBuffers()
	defer buf.release()
	body, err := a.readBody(w, r, buf.body)
	if err != nil {
		a.bodyError(w, api, err)
		return
	}
	buf.body = body
	release, ok := a.admit(w, r, api)
	if !ok {
		return
	}
	defer release()
	points, err := parse(buf.points[:0], body, a.decode, merchant, a.now())
	buf.points = points // nil on error: the decoder may have written past what it returned
	if err != nil {
		a.reject(api, "invalid")
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if a.write(w, r, api, points) {
		WriteJSON(w, http.StatusOK, map[string]any{"accepted": len(points), "merchant": merchant})
	}
}

// postLineProtocol is POST /write (InfluxDB 1.x: ?db= is ignored) and POST
// /api/v2/write (2.x: ?org= and ?bucket= are ignored): line protocol with
// ?precision=. It answers 204 like InfluxDB.
func (a *API) postLineProtocol(api string) func(http.ResponseWriter, *http.Request, string) {
	return func(w http.ResponseWriter, r *http.Request, merchant string) {
		buf := getIngestBuffers()
		defer buf.release()
		body, err := a.readBody(w, r, buf.body)
		if err != nil {
			a.bodyError(w, api, err)
			return
		}
		buf.body = body
		release, ok := a.admit(w, r, api)
		if !ok {
			return
		}
		defer release()
		points, err := lineproto.Append(buf.points[:0], body, r.URL.Query().Get("precision"), merchant, a.now())
		buf.points = points // nil on error: the decoder may have written past what it returned
		if err != nil {
			a.reject(api, "invalid")
			Error(w, http.StatusBadRequest, err.Error())
			return
		}
		if a.write(w, r, api, points) {
			w.WriteHeader(http.StatusNoContent)
		}
	}
}
