package main

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEShowsBannerLines: the README's quick start shows the curl lines
// the server prints (which TestEndToEnd runs as printed).
func TestREADMEShowsBannerLines(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range curlLines {
		if !strings.Contains(string(b), "\n"+l+"\n") {
			t.Errorf("README.md lacks the banner line\n%s", l)
		}
	}
	if !strings.Contains(string(b), "go run ./examples/server ") {
		t.Error("README.md lacks go run ./examples/server")
	}
}
