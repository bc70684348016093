package httpapi_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/hourglass-io/hourglass/httpapi"
	"github.com/hourglass-io/hourglass/tsstore/memstore"
	"github.com/hourglass-io/hourglass/writeback"
	"github.com/hourglass-io/hourglass/writeback/localcache"
)

// The API mounted on a program's own mux, next to its own endpoint: a
// line-protocol write and a query of it, with a merchant's token.
func Example() {
	dir, err := os.MkdirTemp("", "httpapi-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cache, err := localcache.Open(filepath.Join(dir, "cache"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()
	eng, err := writeback.New(cache, memstore.New(nil), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	tokens, _, err := httpapi.OpenTokenFile(filepath.Join(dir, "tokens.json"))
	if err != nil {
		log.Fatal(err)
	}
	api, err := httpapi.New(eng, tokens, nil)
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	api.Register(mux)
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	token, err := tokens.MerchantToken("shop-1")
	if err != nil {
		log.Fatal(err)
	}
	do := func(method, path, token, body string) []byte {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fmt.Println(method, path, resp.StatusCode)
		return b
	}
	do("GET", "/hello", "", "")
	do("POST", "/write", token, "cpu,host=web1 usage=10\ncpu,host=web1 usage=30")
	fmt.Printf("%s", do("POST", "/write", token, "cpu,merchant=shop-2 usage=1"))
	do("GET", "/v1/metrics/cpu_usage", "", "")
	var res struct {
		Series []struct {
			Labels map[string]string
			Total  float64
		}
	}
	if err := json.Unmarshal(do("GET", "/v1/metrics/cpu_usage?agg=mean&group_by=host", token, ""), &res); err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Series[0].Labels, res.Series[0].Total)
	// Output:
	// GET /hello 200
	// POST /write 204
	// POST /write 400
	// {"error":"line 1: tag merchant=\"shop-2\": the token is bound to merchant \"shop-1\" (invalid input)","code":"invalid","message":"line 1: tag merchant=\"shop-2\": the token is bound to merchant \"shop-1\" (invalid input)"}
	// GET /v1/metrics/cpu_usage 401
	// GET /v1/metrics/cpu_usage?agg=mean&group_by=host 200
	// map[host:web1] 20
}
