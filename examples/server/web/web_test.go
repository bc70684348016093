package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// maxGzipBytes bounds the page and its assets, gzipped (issue 22).
const maxGzipBytes = 300 << 10

// eachAsset calls f with every embedded file's path and content.
func eachAsset(t *testing.T, f func(path string, b []byte)) {
	t.Helper()
	err := fs.WalkDir(assets, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(assets, path)
		if err == nil {
			f(path, b)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSize: the page and every asset, gzipped one by one as a server would
// send them, stay under 300 KB.
func TestSize(t *testing.T) {
	var raw, gz int
	eachAsset(t, func(path string, b []byte) {
		var buf bytes.Buffer
		w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = w.Write(b)
		_ = w.Close()
		raw += len(b)
		gz += buf.Len()
		t.Logf("%-12s %6d bytes, %6d gzipped", path, len(b), buf.Len())
	})
	t.Logf("total: %d bytes, %d gzipped (bound %d)", raw, gz, maxGzipBytes)
	if gz >= maxGzipBytes {
		t.Fatalf("page and assets are %d bytes gzipped, want < %d", gz, maxGzipBytes)
	}
}

// TestNothingFetchedFromElsewhere: no asset names another origin (the only
// absolute URL allowed is the SVG namespace, which is never fetched).
func TestNothingFetchedFromElsewhere(t *testing.T) {
	url := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	eachAsset(t, func(path string, b []byte) {
		for _, m := range url.FindAllString(string(b), -1) {
			if m != "http://www.w3.org" {
				t.Errorf("%s names another origin: %s", path, m)
			}
		}
	})
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	get := func(method, path string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, c := range []struct {
		method, path string
		code         int
		ctype, has   string
	}{
		{"GET", "/", 200, "text/html", `<script src="/ui/app.js" defer>`},
		{"HEAD", "/", 200, "text/html", ""},
		{"GET", "/ui/app.js", 200, "text/javascript", "sessionStorage"},
		{"GET", "/ui/chart.js", 200, "text/javascript", "HGChart"},
		{"GET", "/ui/app.css", 200, "text/css", ":root"},
		{"GET", "/ui/", 404, "", ""},
		{"GET", "/ui/index.html", 404, "", ""},
		{"GET", "/ui/missing.js", 404, "", ""},
		{"GET", "/ui/../web.go", 404, "", ""},
		{"GET", "/index.html", 404, "", ""},
		{"POST", "/", 405, "", ""},
	} {
		resp, body := get(c.method, c.path)
		if resp.StatusCode != c.code {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, resp.StatusCode, c.code)
			continue
		}
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), c.ctype) {
			t.Errorf("%s %s: Content-Type %q, want %s", c.method, c.path, resp.Header.Get("Content-Type"), c.ctype)
		}
		if !strings.Contains(body, c.has) {
			t.Errorf("%s %s: body lacks %q", c.method, c.path, c.has)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || resp.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s %s: CSP %q, Referrer-Policy %q", c.method, c.path, csp, resp.Header.Get("Referrer-Policy"))
		}
	}
}

// TestTokenStaysOutOfURLs: the sign-in form posts (a GET would put the
// token in the URL if the script failed) and the script never builds a URL
// or a log line from the token.
func TestTokenStaysOutOfURLs(t *testing.T) {
	page, _ := fs.ReadFile(assets, "index.html")
	if !regexp.MustCompile(`<form id="signin-form" method="post"`).Match(page) {
		t.Error("the sign-in form is not method=post")
	}
	js, _ := fs.ReadFile(assets, "app.js")
	for _, bad := range []string{"console.", "localStorage", "location.search", "token=", "?token"} {
		if bytes.Contains(js, []byte(bad)) {
			t.Errorf("app.js contains %q", bad)
		}
	}
}
