package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/hourglass-io/hourglass/httpapi"
)

// curlLines are the ready-to-paste examples the server prints and the README
// shows; they read $HG_URL, $HG_TOKEN and $HG_ADMIN.
var curlLines = []string{
	`curl -sS -X POST "$HG_URL/v1/events" -H "Authorization: Bearer $HG_TOKEN" -H 'Content-Type: application/json' -d '[{"type":"order","amount":12.5,"currency":"EUR","status":"paid"},{"type":"order","amount":30,"currency":"USD"},{"type":"refund","amount":2.5,"currency":"EUR"},{"type":"page_view","path":"/pricing"}]'`,
	`curl -sS -X POST "$HG_URL/api/v2/write?precision=s" -H "Authorization: Token $HG_TOKEN" --data-binary 'cpu,host=web1 usage_idle=93.5'`,
	`curl -sS "$HG_URL/v1/metrics/revenue?group_by=currency" -H "Authorization: Bearer $HG_TOKEN"`,
	`curl -sS "$HG_URL/v1/metrics/orders?from=now-1h&step=1h&label.currency=EUR" -H "Authorization: Bearer $HG_TOKEN"`,
	`curl -sS -X POST "$HG_URL/v1/admin/flush" -H "Authorization: Bearer $HG_ADMIN"`,
}

// printBanner prints where the server listens and what it runs on, and on
// the first start (created) the tokens and the curl lines to try it.
func printBanner(w io.Writer, url string, c *config, t *httpapi.TokenFile, created bool, describe []string) {
	fmt.Fprintf(w, "hourglass example server listening on %s\n", url)
	fmt.Fprintf(w, "  dashboard: open %s/ in a browser and sign in with a token\n", url)
	for _, d := range describe {
		fmt.Fprintf(w, "  %s\n", d)
	}
	fmt.Fprintf(w, "  flush every %v (budget %v); processor %s\n", c.flushInterval, c.flushBudget, c.processor)
	if !created {
		fmt.Fprintf(w, "tokens: %s (the demo merchant's and the admin token; POST /v1/admin/merchants issues more)\n", c.tokens)
		return
	}
	fmt.Fprintf(w, "\nFirst start: created %s (mode 0600) with a demo merchant token and an admin token.\n", c.tokens)
	fmt.Fprintf(w, "Paste these lines into a shell:\n\n")
	fmt.Fprintf(w, "export HG_URL=%s\n", url)
	fmt.Fprintf(w, "export HG_TOKEN=%s\n", demoToken(t))
	fmt.Fprintf(w, "export HG_ADMIN=%s\n", t.AdminToken())
	fmt.Fprintf(w, "\n# write events (JSON batch) and a line-protocol point, read metrics, flush:\n%s\n\n", strings.Join(curlLines, "\n"))
}

// demoToken returns the token of httpapi.DemoMerchant.
func demoToken(t *httpapi.TokenFile) string {
	tok, _ := t.MerchantToken(httpapi.DemoMerchant) // a valid id: no error
	return tok
}
