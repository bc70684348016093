package dirarchive_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive"
	"github.com/hourglass-io/hourglass/tsstore/archive/dirarchive"
)

// The test binary re-executed as a child process runs helperMain's loop
// instead of the tests when envChild is set to "<mode> <dir> <arg>".
const envChild = "HOURGLASS_DIRARCHIVE_CHILD"

const crashPoints = 5000

// crashSegment is segment i of the crash test: the same i gives the same
// id and points in every process.
func crashSegment(w *workload, i int) (archive.SegmentID, []tsstore.Point) {
	ps := w.points(uint64(i), crashPoints, base+int64(i)*600_000, 900_000)
	return idOf("crash", uint64(i), i%4, ps), ps
}

// raceSegment is segment i of the multi-process test, shared by both
// processes for i < raceShared, else of process who alone.
const raceShared = 12

func raceSegment(w *workload, i int, who string) (archive.SegmentID, []tsstore.Point) {
	src := "shared"
	if i >= raceShared {
		src = "proc-" + who
	}
	ps := w.points(uint64(i), 500, base+int64(i)*60_000, 60_000)
	return idOf(src, uint64(i), 0, ps), ps
}

func helperMain() bool {
	v := os.Getenv(envChild)
	if v == "" {
		return false
	}
	f := strings.Fields(v)
	if err := child(f[0], f[1], f[2]); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	os.Exit(0)
	return true
}

func child(mode, dir, arg string) error {
	a, err := dirarchive.Open(dir, nil)
	if err != nil {
		return err
	}
	defer a.Close()
	w := newWorkload()
	ctx := context.Background()
	switch mode {
	case "crash": // append from segment arg on until killed
		start, _ := strconv.Atoi(arg)
		for i := start; ; i++ {
			id, ps := crashSegment(w, i)
			if _, err := a.Append(ctx, id, ps); err != nil {
				return err
			}
			fmt.Printf("ack %d\n", i)
		}
	case "race": // append the shared and own segments, in an order of its own
		r := rand.New(rand.NewPCG(uint64(len(arg)), uint64(arg[0])))
		for _, i := range r.Perm(2 * raceShared) {
			id, ps := raceSegment(w, i, arg)
			if _, err := a.Append(ctx, id, ps); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown mode %q", mode)
}

func startChild(t *testing.T, mode, dir, arg string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"="+mode+" "+dir+" "+arg)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, bufio.NewScanner(out)
}

// TestCrashDuringAppends kills (SIGKILL) a child process that appends
// segments, at a random moment, several times; after every crash the
// archive reopens with every acknowledged segment intact, every listed
// segment complete and verified, and nothing else visible.
func TestCrashDuringAppends(t *testing.T) {
	dir := t.TempDir()
	w := newWorkload()
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	acked := map[int]bool{}
	next := 0
	for round := 0; round < 5; round++ {
		cmd, out := startChild(t, "crash", dir, strconv.Itoa(next))
		want := 1 + r.IntN(3)
		got := 0
		for got < want && out.Scan() {
			var i int
			if _, err := fmt.Sscanf(out.Text(), "ack %d", &i); err != nil {
				t.Fatalf("child said %q", out.Text())
			}
			acked[i] = true
			next = i + 1
			got++
		}
		if got < want {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("child stopped after %d acks", got)
		}
		// Let it get somewhere into the next append, then kill it.
		time.Sleep(time.Duration(r.IntN(30_000)) * time.Microsecond)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		for out.Scan() { // acks written before the kill
			var i int
			if _, err := fmt.Sscanf(out.Text(), "ack %d", &i); err == nil {
				acked[i] = true
				next = i + 1
			}
		}
		checkAfterCrash(t, dir, w, acked)
	}
}

func checkAfterCrash(t *testing.T, dir string, w *workload, acked map[int]bool) {
	t.Helper()
	// What the crash left behind, before Open tidies up (for the log).
	var files, tmps int
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		switch {
		case err != nil:
		case strings.HasSuffix(path, ".parquet"):
			files++
		case !d.IsDir() && strings.HasSuffix(path, ".tmp"):
			tmps++
		}
		return nil
	})
	a := open(t, dir, nil)
	defer a.Close()
	ctx := context.Background()
	segs, err := a.Segments(ctx, 0, tsstore.MaxTimestamp)
	if err != nil {
		t.Fatalf("Segments after a crash: %v", err)
	}
	lines := scanLines(t, filepath.Join(dir, dirarchive.ManifestFile))
	if len(lines) != len(segs) {
		t.Errorf("manifest has %d lines for %d segments", len(lines), len(segs))
	}
	t.Logf("after the crash: %d segments listed, %d segment files, %d temporary files; %d acknowledged", len(segs), files, tmps, len(acked))
	listed := map[string]bool{}
	var total int64
	for _, s := range segs {
		listed[s.Name] = true
		total += s.Points
		n := 0
		if err := a.Read(ctx, s.Name, func(tsstore.Point) error { n++; return nil }); err != nil || int64(n) != s.Points || n != crashPoints {
			t.Errorf("listed segment %s: %d points, %v; want %d complete and verified", s.Name, n, err, crashPoints)
		}
	}
	for i := range acked {
		id, ps := crashSegment(w, i)
		if !listed[id.Name()] {
			t.Errorf("acknowledged segment %d (%s) lost in a crash", i, id.Name())
			continue
		}
		if d := cmp.Diff(sortedPoints(ps), readAll(t, a, id.Name())); d != "" {
			t.Errorf("acknowledged segment %d changed (-want +got):\n%s", i, d)
		}
	}
	if n, err := count(ctx, a, allRequest()); err != nil || int64(n) != total {
		t.Errorf("Scan after a crash: %d points, %v; want %d", n, err, total)
	}
	// The dead child's temporary directory is gone; only ours is left.
	if ents, err := os.ReadDir(filepath.Join(dir, ".tmp")); err != nil || len(ents) != 1 {
		t.Errorf(".tmp after reopening: %d entries, %v; want only this process's", len(ents), err)
	}
}

// TestProcessesShareArchive runs two processes appending to one directory
// at once, half of their segments the same: each name is listed once and
// every segment is complete.
func TestProcessesShareArchive(t *testing.T) {
	dir := t.TempDir()
	// Create the archive first, so that both children open an existing one.
	if err := open(t, dir, nil).Close(); err != nil {
		t.Fatal(err)
	}
	var cmds []*exec.Cmd
	for _, who := range []string{"a", "bb"} {
		cmd, _ := startChild(t, "race", dir, who)
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child: %v", err)
		}
	}
	a := open(t, dir, nil)
	segs, err := a.Segments(context.Background(), 0, tsstore.MaxTimestamp)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3 * raceShared; len(segs) != want {
		t.Errorf("%d segments, want %d", len(segs), want)
	}
	if lines := scanLines(t, filepath.Join(dir, dirarchive.ManifestFile)); len(lines) != len(segs) {
		t.Errorf("manifest has %d lines for %d segments: a name listed twice", len(lines), len(segs))
	}
	w := newWorkload()
	for _, who := range []string{"a", "bb"} {
		for i := 0; i < 2*raceShared; i++ {
			id, ps := raceSegment(w, i, who)
			if d := cmp.Diff(sortedPoints(ps), readAll(t, a, id.Name())); d != "" {
				t.Errorf("segment %s (-want +got):\n%s", id.Name(), d)
			}
		}
	}
}
