package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRefusalNamesTheLine: every kind of refusal (a timestamp outside the
// window, a foreign merchant, a bad name, a bad value), on the first, a
// middle and the last line of a body, with and without a trailing newline,
// is answered 400 naming that line (or event index) on /write,
// /api/v2/write and /v1/events (NDJSON and a JSON array).
func TestRefusalNamesTheLine(t *testing.T) {
	now := time.Now()
	ta := newTestAPI(t, &Options{Rate: -1, Now: func() time.Time { return now }})
	old := now.Add(-10 * 24 * time.Hour)
	type kind struct{ name, lp, event, want string }
	kinds := []kind{
		{"old timestamp", fmt.Sprintf("lpbad value=2 %d", old.UnixNano()), fmt.Sprintf(`{"metric":"m","time":%d}`, old.UnixMilli()), "timestamp"},
		{"future timestamp", fmt.Sprintf("lpbad value=2 %d", now.Add(2*time.Hour).UnixNano()), fmt.Sprintf(`{"metric":"m","time":%d}`, now.Add(2*time.Hour).UnixMilli()), "timestamp"},
		{"foreign merchant", "lpbad,merchant=other value=2", `{"metric":"m","labels":{"merchant":"other"}}`, "merchant"},
		{"bad label name", "lpbad,__x=y value=2", `{"metric":"m","labels":{"__x":"y"}}`, "__x"},
		{"bad metric name", strings.Repeat("n", 300) + " value=2", `{"metric":"9 lives"}`, "metric name"},
		{"bad value", "lpbad value=1x", `{"metric":"m","value":"x"}`, "value"},
		{"infinite value", "lpbad value=1e999", `{"metric":"m","value":1e999}`, "value"},
	}
	const good, goodEvent = "lpok value=1", `{"metric":"m","value":1}`
	for _, k := range kinds {
		for _, at := range []int{0, 1, 2} { // first, middle, last of 3
			for _, trailing := range []bool{false, true} {
				lp, events := make([]string, 3), make([]string, 3)
				for i := range lp {
					lp[i], events[i] = good, goodEvent
				}
				lp[at], events[at] = k.lp, k.event
				nl := ""
				if trailing {
					nl = "\n"
				}
				for _, c := range []struct {
					target, ct, body, want string
				}{
					{"/write", "", strings.Join(lp, "\n") + nl, fmt.Sprintf("line %d", at+1)},
					{"/api/v2/write", "", strings.Join(lp, "\n") + nl, fmt.Sprintf("line %d", at+1)},
					{"/v1/events", "application/x-ndjson", strings.Join(events, "\n") + nl, fmt.Sprintf("line %d:", at+1)},
					{"/v1/events", "application/json", "[" + strings.Join(events, ",\n") + "]" + nl, fmt.Sprintf("event %d:", at)},
				} {
					w := ta.do("POST", c.target, ta.token, ctype(c.ct), []byte(c.body))
					msg := w.Body.String()
					if w.Code != http.StatusBadRequest || !strings.Contains(msg, `"`+c.want) || !strings.Contains(msg, k.want) {
						t.Errorf("%s on line %d (trailing newline %v), %s %s: %d %s; want 400 naming %q and %q",
							k.name, at+1, trailing, c.target, c.ct, w.Code, msg, c.want, k.want)
					}
				}
			}
		}
	}
	if got := ta.total("lpok"); got != 0 {
		t.Errorf("lpok = %v after refused requests, want 0", got)
	}
}

// TestLineNumbersSkipBlankAndComments: blank lines, comments, CRLF and a
// string field holding a newline count as lines.
func TestLineNumbersSkipBlankAndComments(t *testing.T) {
	ta := newTestAPI(t, &Options{Rate: -1})
	body := "\n# a comment\nok value=1\r\n\nok s=\"two\nlines\",value=1\nok,merchant=other value=1\n"
	w := ta.do("POST", "/write", ta.token, nil, []byte(body))
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `"line 7: tag merchant`) {
		t.Errorf("%d %s, want 400 naming line 7", w.Code, w.Body)
	}
}
