package proxy_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"

	"github.com/hourglass-io/hourglass/balancer"
	"github.com/hourglass-io/hourglass/balancer/proxy"
)

func Example() {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s from the app", r.Header.Get("X-Merchant"))
	}))
	defer app.Close()

	b := balancer.New(balancer.ConsistentHash(nil), &balancer.Options[*url.URL]{Name: "app"})
	defer b.Close()
	backends, _ := proxy.Backends(app.URL)
	b.Add(backends...)
	front := httptest.NewServer(proxy.New(b, &proxy.Options{Key: proxy.HeaderKey("X-Merchant")}))
	defer front.Close()

	req, _ := http.NewRequest("GET", front.URL+"/", nil)
	req.Header.Set("X-Merchant", "m42")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, string(body))

	b.Remove(app.URL)
	resp, _ = http.Get(front.URL + "/")
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(resp.StatusCode, " ", string(body))
	// Output:
	// 200 hello m42 from the app
	// 503 no healthy upstream: app: no backends registered (unavailable)
}
