package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/reprocess"
)

// TestReprocessAdmin runs the real binary: page views whose paths events/1
// keeps apart ("/Pricing/", "/pricing", "/pricing/") are reprocessed with
// events/2 (which normalises them): bad requests get 400 naming the field,
// a dry run reports the diff and cannot be switched to, a job into a side
// version shows its progress and diff, the switch changes what the
// merchant reads (and only that merchant's series), survives a restart,
// and switching to "live" rolls it back.
func TestReprocessAdmin(t *testing.T) {
	dir := t.TempDir()
	p := startServer(t, dir)
	admin := adminToken(t, dir)
	shop1, shop2 := p.merchantToken(admin, "shop1"), p.merchantToken(admin, "shop2")
	at := time.Now().Add(-10 * time.Minute).UnixMilli()
	view := func(path string) string {
		return fmt.Sprintf(`{"type":"page_view","path":%q,"time":%d}`, path, at)
	}
	p.mustDo(http.StatusOK, "POST", "/v1/events", shop1, "application/json",
		"["+strings.Join([]string{view("/Pricing/"), view("/pricing"), view("/pricing/"), view("/cart"),
			fmt.Sprintf(`{"type":"order","amount":20,"currency":"EUR","time":%d}`, at)}, ",")+"]")
	p.mustDo(http.StatusOK, "POST", "/v1/events", shop2, "application/json", "["+view("/Pricing/")+"]")
	v1 := map[string]float64{"/Pricing/": 1, "/pricing": 1, "/pricing/": 1, "/cart": 1}
	v2 := map[string]float64{"/pricing": 3, "/cart": 1}
	views := func(p *serverProc, tok string) map[string]float64 {
		return p.query(tok, "views", "from=now-1h&step=1h&group_by=path", "path")
	}
	if got := views(p, shop1); !equalFigures(got, v1) {
		t.Fatalf("views of shop1 by path before reprocessing: %v, want %v", got, v1)
	}

	// Bad requests.
	for _, c := range []struct {
		body, want string
		code       int
	}{
		{`{"processor":"events/2","from":"now-1h"}`, `field \"id\": required`, 400},
		{`{"id":"a b","processor":"events/2","from":"now-1h"}`, `field \"id\"`, 400},
		{`{"id":"live","processor":"events/2","from":"now-1h"}`, `reserved`, 400},
		{`{"id":"x","processor":"events/9","from":"now-1h"}`, `field \"processor\": \"events/9\" is not a known processor version (known: [events/1 events/2])`, 400},
		{`{"id":"x","processor":"events/2"}`, `field \"from\": required`, 400},
		{`{"id":"x","processor":"events/2","from":"yesterday"}`, `field \"from\"`, 400},
		{`{"id":"x","processor":"events/2","from":"2026-01-01T00:00:30Z","to":"2026-01-01T01:00:00Z"}`, `field \"from\": 2026-01-01T00:00:30Z is not a multiple of the cell width 1m0s`, 400},
		{`{"id":"x","processor":"events/2","from":"now-1h","to":"2999-01-01T00:00:00Z"}`, `field \"to\": 2999-01-01T00:00:00Z is in the future`, 400},
		{`{"id":"x","processor":"events/2","from":"now-1h","to":"now-2h"}`, `is not before`, 400},
		{`{"id":"x","processor":"events/2","from":"now-1h","merchant":"bad merchant"}`, `field \"merchant\"`, 400},
		{`{"id":"x","processor":"events/2","from":"now-1h","rate":-1}`, `field \"rate\"`, 400},
		{`{"id":"x","processor":"events/2","from":"now-1h","colour":"red"}`, `unknown field \"colour\"`, 400},
		{`{"id":"x",`, `truncated JSON`, 400},
	} {
		code, _, body := p.do("POST", "/v1/admin/reprocess", admin, "application/json", c.body)
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("POST /v1/admin/reprocess %s: %d %s, want %d containing %s", c.body, code, body, c.code, c.want)
		}
	}
	if code, _, _ := p.do("POST", "/v1/admin/reprocess", shop1, "application/json", `{"id":"x","processor":"events/2","from":"now-1h"}`); code != http.StatusUnauthorized {
		t.Errorf("POST /v1/admin/reprocess with a merchant token: %d, want 401", code)
	}
	if code, _, _ := p.do("GET", "/v1/admin/reprocess/nope", admin, "", ""); code != http.StatusNotFound {
		t.Errorf("GET of an unknown job: %d, want 404", code)
	}

	// A dry run over every merchant: a diff, and no switch.
	dry := startJob(p, admin, `{"id":"paths-dry","processor":"events/2","from":"now-1h","dry_run":true}`)
	if !dry.DryRun || dry.Processor != "events/2" {
		t.Errorf("dry run started as %+v", dry)
	}
	dry = waitJob(p, admin, "paths-dry")
	if dry.Points != 6 || dry.PointsTotal < 6 || dry.Fraction != 1 || dry.Current || dry.Segments != 1 {
		t.Errorf("dry run: %+v; want the 6 raw points of 1 archive segment read, not current", dry)
	}
	d := jobDiff(p, admin, "paths-dry")
	// views: shop1's /pricing changed (1 -> 3), its /Pricing/ and /pricing/
	// removed, shop2's /Pricing/ removed and /pricing added.
	if d.SeriesChanged != 1 || d.SeriesRemoved != 3 || d.SeriesAdded != 1 {
		t.Errorf("dry-run diff: %d changed, %d removed, %d added; want 1, 3, 1: %s", d.SeriesChanged, d.SeriesRemoved, d.SeriesAdded, d)
	}
	if code, _, body := p.do("POST", "/v1/admin/reprocess/paths-dry/switch", admin, "", ""); code != http.StatusConflict || !strings.Contains(body, "dry run") {
		t.Errorf("switch to a dry run: %d %s, want 409", code, body)
	}
	if got := views(p, shop1); !equalFigures(got, v1) {
		t.Fatalf("views of shop1 after a dry run: %v, want %v", got, v1)
	}

	// A job for shop1 into a side version, its diff, the switch.
	startJob(p, admin, `{"id":"paths-v2","processor":"events/2","from":"now-1h","merchant":"shop1"}`)
	if code, _, body := p.do("POST", "/v1/admin/reprocess", admin, "application/json", `{"id":"paths-v2","processor":"events/1","from":"now-1h"}`); code != http.StatusConflict {
		t.Errorf("a second job with the same id and other parameters: %d %s, want 409", code, body)
	}
	st := waitJob(p, admin, "paths-v2")
	if st.Points != 5 || st.Merchant != "shop1" || st.Current || st.Diff == "" {
		t.Errorf("job paths-v2: %+v; want 5 points of shop1, a diff, not current", st)
	}
	d = jobDiff(p, admin, "paths-v2")
	if d.SeriesChanged != 1 || d.SeriesRemoved != 2 || d.SeriesAdded != 0 {
		t.Errorf("diff of paths-v2: %s", d)
	}
	p.mustDo(http.StatusOK, "POST", "/v1/admin/reprocess/paths-v2/switch", admin, "", "")
	if got := views(p, shop1); !equalFigures(got, v2) {
		t.Errorf("views of shop1 after the switch: %v, want %v", got, v2)
	}
	if got := views(p, shop2); !equalFigures(got, map[string]float64{"/Pricing/": 1}) {
		t.Errorf("views of shop2 after shop1's switch: %v, want its live figures", got)
	}
	if got := p.query(shop1, "revenue", "from=now-1h&step=1h", "currency"); !equalFigures(got, map[string]float64{"EUR": 20}) {
		t.Errorf("revenue of shop1 after the switch: %v", got)
	}
	if code, _, body := p.do("GET", "/v1/admin/reprocess/paths-v2/diff?refresh=true", admin, "", ""); code != http.StatusConflict {
		t.Errorf("refreshing the diff of the version serving reads: %d %s, want 409", code, body)
	}

	// The switch survives a restart; "live" rolls it back.
	p.stop()
	p = startServer(t, dir)
	if got := views(p, shop1); !equalFigures(got, v2) {
		t.Errorf("views of shop1 after a restart: %v, want %v", got, v2)
	}
	var list jobList
	if err := json.Unmarshal([]byte(p.mustDo(http.StatusOK, "GET", "/v1/admin/reprocess", admin, "", "")), &list); err != nil {
		t.Fatal(err)
	}
	if list.Current != "paths-v2" || len(list.Jobs) != 2 || list.Jobs[0].State != jobCompleted || list.Jobs[1].State != jobCompleted {
		t.Errorf("list after the restart: %+v", list)
	}
	p.mustDo(http.StatusOK, "POST", "/v1/admin/reprocess/live/switch", admin, "", "")
	if got := views(p, shop1); !equalFigures(got, v1) {
		t.Errorf("views of shop1 after switching back to live: %v, want %v", got, v1)
	}
	p.stop()
}

// TestReprocessResume: a job stopped by a shutdown (slowed down by its rate
// limit so that it is still running) shows "interrupted" after the restart
// and completes, with every point, when posted again.
func TestReprocessResume(t *testing.T) {
	dir := t.TempDir()
	p := startServer(t, dir)
	admin := adminToken(t, dir)
	tok := p.merchantToken(admin, "shop1")
	now := time.Now()
	at := now.Add(-10 * time.Minute).UnixMilli()
	p.mustDo(http.StatusOK, "POST", "/v1/events", tok, "application/json", fmt.Sprintf(
		`[{"type":"page_view","path":"/a","time":%d},{"type":"page_view","path":"/b","time":%d},{"type":"page_view","path":"/c","time":%d}]`, at, at, at))
	from := now.Add(-time.Hour).Truncate(time.Minute).UTC().Format(time.RFC3339)
	to := now.Truncate(time.Minute).UTC().Format(time.RFC3339)
	job := fmt.Sprintf(`{"id":"slow","processor":"events/2","from":%q,"to":%q`, from, to)
	startJob(p, admin, job+`,"rate":0.5}`) // 3 points at 0.5/s: about 6 s
	deadline := time.Now().Add(time.Minute)
	for {
		var st jobStatus
		if err := json.Unmarshal([]byte(p.mustDo(http.StatusOK, "GET", "/v1/admin/reprocess/slow", admin, "", "")), &st); err != nil {
			t.Fatal(err)
		}
		if st.State == jobRunning {
			break
		}
		if st.State != jobFlushing || time.Now().After(deadline) {
			t.Fatalf("job before the shutdown: %+v, want running", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.stop()

	p = startServer(t, dir)
	var st jobStatus
	if err := json.Unmarshal([]byte(p.mustDo(http.StatusOK, "GET", "/v1/admin/reprocess/slow", admin, "", "")), &st); err != nil {
		t.Fatal(err)
	}
	if st.State != jobInterrupted || !strings.Contains(st.Error, "POST the same job again") {
		t.Fatalf("job after the restart: %+v, want interrupted", st)
	}
	if code, _, body := p.do("POST", "/v1/admin/reprocess/slow/switch", admin, "", ""); code != http.StatusConflict {
		t.Errorf("switch to an interrupted job: %d %s, want 409", code, body)
	}
	startJob(p, admin, job+"}")
	if st = waitJob(p, admin, "slow"); st.Points != 3 || st.PointsTotal != 3 {
		t.Errorf("resumed job: %+v, want 3 points", st)
	}
	if d := jobDiff(p, admin, "slow"); d.SeriesChanged != 0 || d.SeriesAdded != 0 || d.SeriesRemoved != 0 {
		t.Errorf("diff of a version equal to the live data: %s", d)
	}
	p.stop()
}

// startJob posts a job and returns its first status.
func startJob(p *serverProc, admin, body string) jobStatus {
	p.t.Helper()
	b := p.mustDo(http.StatusAccepted, "POST", "/v1/admin/reprocess", admin, "application/json", body)
	var st jobStatus
	if err := json.Unmarshal([]byte(b), &st); err != nil {
		p.t.Fatalf("%s: %v", b, err)
	}
	return st
}

// waitJob polls a job until it has completed (failing the test when it
// fails or takes more than a minute).
func waitJob(p *serverProc, admin, id string) jobStatus {
	p.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var st jobStatus
		b := p.mustDo(http.StatusOK, "GET", "/v1/admin/reprocess/"+id, admin, "", "")
		if err := json.Unmarshal([]byte(b), &st); err != nil {
			p.t.Fatalf("%s: %v", b, err)
		}
		switch {
		case st.State == jobCompleted:
			return st
		case st.State == jobFailed || st.State == jobInterrupted:
			p.t.Fatalf("job %s: %s", id, b)
		case time.Now().After(deadline):
			p.t.Fatalf("job %s still %s after a minute: %s", id, st.State, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// jobDiff returns a job's diff.
func jobDiff(p *serverProc, admin, id string) *reprocess.Diff {
	p.t.Helper()
	b := p.mustDo(http.StatusOK, "GET", "/v1/admin/reprocess/"+id+"/diff", admin, "", "")
	var d reprocess.Diff
	if err := json.Unmarshal([]byte(b), &d); err != nil {
		p.t.Fatalf("%s: %v", b, err)
	}
	return &d
}
