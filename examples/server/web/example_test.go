package web_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/hourglass-io/hourglass/examples/server/web"
)

// The server mounts the dashboard next to its API: the page at "/" and its
// assets under web.AssetPrefix; other paths stay the API's.
func ExampleHandler() {
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", web.Handler())
	mux.Handle("GET "+web.AssetPrefix, web.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })

	for _, path := range []string{"/", "/ui/app.js", "/healthz", "/nope"} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		fmt.Println(path, w.Code, w.Header().Get("Content-Type"))
	}
	// Output:
	// / 200 text/html; charset=utf-8
	// /ui/app.js 200 text/javascript; charset=utf-8
	// /healthz 200 text/plain; charset=utf-8
	// /nope 404 text/plain; charset=utf-8
}
