package web

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// AssetPrefix is the path under which Handler serves the page's assets; the
// page itself is served at "/".
const AssetPrefix = "/ui/"

// static holds the page (index.html) and its assets.
//
//go:embed static
var static embed.FS

// assets is static without its directory name.
var assets = func() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // "static" is a valid path: cannot happen
	}
	return sub
}()

// contentSecurityPolicy lets the page load only its own scripts, styles and
// API: no inline script, nothing from another origin, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"

// Handler returns the dashboard's handler: GET or HEAD "/" answers the page,
// AssetPrefix+name its assets, anything else 404. Mount it on "/{$}" and
// AssetPrefix of the server's mux. Responses carry a strict
// Content-Security-Policy and no-referrer, so a token never leaves the page
// in a Referer header.
func Handler() http.Handler {
	files := http.FileServerFS(assets)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name, isAsset := strings.CutPrefix(r.URL.Path, AssetPrefix)
		switch {
		case r.URL.Path == "/":
			http.ServeFileFS(w, r, assets, "index.html")
		case isAsset && name != "" && name != "index.html" && !strings.HasSuffix(name, "/"):
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/" + name
			r2.URL.RawPath = ""
			files.ServeHTTP(w, r2)
		default:
			http.NotFound(w, r)
		}
	})
}
