package promremote

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/hourglass-io/hourglass/tsstore"
)

// probe reads what Open can find out about the engine: the read API (when
// ReadAuto), VictoriaMetrics' flags (/flags at the read URL's root),
// Prometheus' configuration (/api/v1/status/config), and the flush URL of
// a VictoriaMetrics single node. It fails when a setting breaks the
// Store's contract.
func (s *Store) probe(ctx context.Context) error {
	now := time.Now().UnixMilli()
	if s.readAPI == ReadAuto {
		u := s.readPrefix.JoinPath("api/v1/export").String()
		form := url.Values{"match[]": {`{__name__="hourglass_probe"}`}, "start": {seconds(now - 60000)}, "end": {seconds(now)}}
		_, f := s.attempt(ctx, request{method: http.MethodPost, url: u, body: []byte(form.Encode()), header: formHeader})
		switch {
		case f == nil:
			s.readAPI = ReadExport
		case f.Status == 0 || f.Status >= 500 || f.Status == http.StatusUnauthorized || f.Status == http.StatusForbidden:
			return tsstore.Errorf(tsstore.ErrUnavailable, "promremote: open: probing %s: %w", u, f)
		default:
			s.readAPI = ReadQuery
		}
	}
	if flags := s.victoriaFlags(ctx); flags != nil {
		if err := s.checkVictoria(flags); err != nil {
			return err
		}
	} else if window, ok := s.prometheusOOOWindow(ctx); ok && s.opts.LateWindow > 0 && window < s.opts.LateWindow {
		return tsstore.Errorf(tsstore.ErrInvalid, "promremote: open: the engine's out_of_order_time_window is %v, shorter than the late window %v: late cells would be refused (set storage.tsdb.out_of_order_time_window in its configuration)", window, s.opts.LateWindow)
	}
	if s.opts.FlushURLs == nil {
		w, _ := url.Parse(s.writeURL)
		if strings.HasSuffix(w.Path, "/api/v1/write") && !strings.Contains(w.Path, "/insert/") {
			f := (&url.URL{Scheme: w.Scheme, Host: w.Host, User: w.User, Path: strings.TrimSuffix(w.Path, "/api/v1/write") + "/internal/force_flush"}).String()
			if _, fail := s.attempt(ctx, request{method: http.MethodGet, url: f}); fail == nil {
				s.flushURLs = []string{f}
			}
		}
	}
	return nil
}

// victoriaFlags returns VictoriaMetrics' flags from /flags at the root of
// the read URL, or nil when that is not a VictoriaMetrics.
func (s *Store) victoriaFlags(ctx context.Context) map[string]string {
	root := &url.URL{Scheme: s.readPrefix.Scheme, Host: s.readPrefix.Host, User: s.readPrefix.User, Path: "/flags"}
	body, f := s.attempt(ctx, request{method: http.MethodGet, url: root.String()})
	if f != nil {
		return nil
	}
	flags := map[string]string{}
	for _, m := range flagLine.FindAllStringSubmatch(string(body), -1) {
		flags[m[1]] = m[2]
	}
	if len(flags) == 0 {
		return nil
	}
	return flags
}

var flagLine = regexp.MustCompile(`(?m)^-([a-zA-Z0-9_.]+)="([^"]*)"$`)

// checkVictoria checks VictoriaMetrics' flags: the retention must hold the
// late window, and reads are cut to -search.maxExportDuration.
func (s *Store) checkVictoria(flags map[string]string) error {
	if v, ok := flags["search.maxExportDuration"]; ok {
		if d, err := time.ParseDuration(v); err == nil && d > 0 && d.Milliseconds() < s.readSpan {
			s.readSpan = d.Milliseconds()
		}
	}
	if v, ok := flags["retentionPeriod"]; ok {
		d, err := victoriaRetention(v)
		if err == nil {
			s.retention = d
		}
		if err == nil && s.opts.LateWindow > 0 && d < s.opts.LateWindow {
			return tsstore.Errorf(tsstore.ErrInvalid, "promremote: open: VictoriaMetrics' -retentionPeriod=%s is shorter than the late window %v: late cells would be dropped behind a 2xx", v, s.opts.LateWindow)
		}
	}
	s.future = victoriaDefaultFuture
	if v, ok := flags["futureRetention"]; ok {
		if d, err := victoriaRetention(v); err == nil {
			s.future = d
		}
	}
	if s.opts.FlushURLs == nil && s.opts.SettleDelay == 0 {
		w, _ := url.Parse(s.writeURL)
		if strings.Contains(w.Path, "/insert/") {
			return tsstore.Errorf(tsstore.ErrInvalid, "promremote: open: VictoriaMetrics cluster: new samples are searchable only after a few seconds; set Options.FlushURLs to every vmstorage's /internal/force_flush, or Options.SettleDelay")
		}
	}
	return nil
}

// victoriaDefaultFuture is how far ahead of its clock VictoriaMetrics
// keeps rows when it has no -futureRetention flag (versions before it).
const victoriaDefaultFuture = 48 * time.Hour

// victoriaRetention parses a VictoriaMetrics -retentionPeriod: a number
// with a unit of s, h, d, w, M (months), y, or months without one.
func victoriaRetention(v string) (time.Duration, error) {
	unit := time.Duration(31 * 24 * time.Hour)
	num := v
	if n := len(v); n > 0 {
		switch v[n-1] {
		case 's':
			unit = time.Second
		case 'h':
			unit = time.Hour
		case 'd':
			unit = 24 * time.Hour
		case 'w':
			unit = 7 * 24 * time.Hour
		case 'M':
		case 'y':
			unit = 365 * 24 * time.Hour
		}
		if v[n-1] < '0' || v[n-1] > '9' {
			num = v[:n-1]
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("retention %q: %w", v, err)
	}
	return time.Duration(f * float64(unit)), nil
}

// prometheusOOOWindow returns the out-of-order window of a Prometheus
// whose configuration /api/v1/status/config shows, with ok false when
// there is no such configuration to read.
func (s *Store) prometheusOOOWindow(ctx context.Context) (time.Duration, bool) {
	u := s.readPrefix.JoinPath("api/v1/status/config").String()
	body, f := s.attempt(ctx, request{method: http.MethodGet, url: u})
	if f != nil {
		return 0, false
	}
	var a struct {
		Status string `json:"status"`
		Data   struct {
			YAML string `json:"yaml"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &a); err != nil || a.Status != "success" || a.Data.YAML == "" {
		return 0, false
	}
	m := oooLine.FindStringSubmatch(a.Data.YAML)
	if m == nil {
		return 0, true
	}
	d, err := model.ParseDuration(strings.Trim(m[1], `"'`))
	if err != nil {
		return 0, false // unreadable: as if unknown
	}
	return time.Duration(d), true
}

var oooLine = regexp.MustCompile(`(?m)^\s*out_of_order_time_window:\s*(\S+)\s*$`)
