package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadAdminToken: -admin-token wins, else the tokens file's
// admin_token; a missing file or one without it is an error saying so.
func TestReadAdminToken(t *testing.T) {
	dir := t.TempDir()
	good, empty := filepath.Join(dir, "tokens.json"), filepath.Join(dir, "empty.json")
	if err := os.WriteFile(good, []byte(`{"secret":"00","admin_token":"hga_file"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(empty, []byte(`{"secret":"00"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ given, path, want, err string }{
		{"hga_flag", good, "hga_flag", ""},
		{"", good, "hga_file", ""},
		{"", empty, "", "has no admin_token"},
		{"", filepath.Join(dir, "missing.json"), "", "-admin-token"},
	} {
		got, err := readAdminToken(c.given, c.path)
		if got != c.want || (c.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("readAdminToken(%q, %s) = %q, %v; want %q, error containing %q", c.given, filepath.Base(c.path), got, err, c.want, c.err)
		}
	}
}
