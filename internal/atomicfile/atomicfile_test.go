package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWrite: Write creates and replaces a file, leaves no temporary file
// behind, and on failure leaves the old content.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	for _, want := range []string{"one\n", "two\n"} {
		if err := Write(path, []byte(want)); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(path); err != nil || string(got) != want {
			t.Fatalf("content %q, %v; want %q", got, err, want)
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, %v; want 0600", fi.Mode(), err)
	}
	// A directory in the way: the rename fails, the temporary file goes.
	sub := filepath.Join(dir, "sub")
	if err := os.MkdirAll(filepath.Join(sub, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sub, "x", "f"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(filepath.Join(sub, "x"), []byte("y")); err == nil {
		t.Error("Write over a non-empty directory succeeded")
	}
	for _, d := range []string{dir, sub} {
		es, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.Name() != "state" && e.Name() != "sub" && e.Name() != "x" {
				t.Errorf("left behind %s in %s", e.Name(), d)
			}
		}
	}
	if err := Write(filepath.Join(dir, "missing", "f"), nil); err == nil {
		t.Error("Write into a missing directory succeeded")
	}
}
