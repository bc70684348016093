package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"time"
)

// target is what the workers send the workload to. Safe for concurrent
// use.
type target interface {
	// write sends a batch of events of merchant m, records its latency or
	// failure in l and reports success.
	write(ctx context.Context, worker int, r *rand.Rand, m int, l *latencies) bool
	// read sends a dashboard query of merchant m and records it in l.
	read(ctx context.Context, worker int, r *rand.Rand, m int, l *latencies)
	close()
}

// opTimeout bounds one request.
const opTimeout = 30 * time.Second

// httpTarget sends the workload to the server's HTTP API with one token per
// merchant.
type httpTarget struct {
	url    string
	batch  int
	client *http.Client
	toks   []string
}

// openHTTPTarget reads the admin token and issues the merchants' tokens.
func openHTTPTarget(ctx context.Context, o options) (*httpTarget, error) {
	var err error
	if o.admin, err = readAdminToken(o.admin, o.tokens); err != nil {
		return nil, err
	}
	t := &httpTarget{url: o.url, batch: o.batch,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.concurrency}, Timeout: opTimeout}}
	toks, err := issueTokens(ctx, t.client, o)
	if err != nil {
		t.close()
		return nil, err
	}
	t.toks = toks
	return t, nil
}

func (t *httpTarget) write(ctx context.Context, _ int, r *rand.Rand, m int, l *latencies) bool {
	return do(ctx, t.client, "POST", t.url+"/v1/events", t.toks[m], writeBody(r, t.batch), l)
}

func (t *httpTarget) read(ctx context.Context, _ int, r *rand.Rand, m int, l *latencies) {
	do(ctx, t.client, "GET", t.url+readPath(r), t.toks[m], nil, l)
}

func (t *httpTarget) close() { t.client.CloseIdleConnections() }

// readAdminToken returns the admin token: given (-admin-token) when it is
// not "", else the admin_token of the server's tokens file at path
// (-tokens).
func readAdminToken(given, path string) (string, error) {
	if given != "" {
		return given, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the admin token: %w (give -tokens or -admin-token)", err)
	}
	var f struct {
		Admin string `json:"admin_token"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return "", fmt.Errorf("reading the admin token: %s: %w", path, err)
	}
	if f.Admin == "" {
		return "", fmt.Errorf("reading the admin token: %s has no admin_token", path)
	}
	return f.Admin, nil
}

// issueTokens gets one token per merchant from the admin endpoint.
func issueTokens(ctx context.Context, client *http.Client, o options) ([]string, error) {
	toks := make([]string, o.merchants)
	for i := range toks {
		body := fmt.Sprintf(`{"merchant":%q}`, merchantID(i))
		req, err := http.NewRequestWithContext(ctx, "POST", o.url+"/v1/admin/merchants", strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+o.admin)
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("issuing merchant tokens: %w", err)
		}
		var r struct{ Token, Error string }
		err = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("issuing merchant tokens: %s %v %s", resp.Status, err, r.Error)
		}
		toks[i] = r.Token
	}
	return toks, nil
}

// do sends one request and records its latency or its failure; it reports
// success.
func do(ctx context.Context, client *http.Client, method, u, tok string, body []byte, l *latencies) bool {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		l.fail(err.Error())
		return false
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			l.fail("transport error")
		}
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d := time.Since(t0)
	if resp.StatusCode/100 != 2 {
		l.fail(resp.Status)
		return false
	}
	l.ok = append(l.ok, d)
	return true
}
