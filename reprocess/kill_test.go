package reprocess_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hourglass-io/hourglass/reprocess"
	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/archive/dirarchive"
)

// The test binary re-executed as a child runs a job instead of the tests
// when envChild is set to "<archive dir> <versions root> <from> <cutover>".
const envChild = "HOURGLASS_REPROCESS_CHILD"

func childMain() bool {
	v := os.Getenv(envChild)
	if v == "" {
		return false
	}
	if err := child(strings.Fields(v)); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	os.Exit(0)
	return true
}

// killJob is the job of the kill test; the child runs it slowly.
func killJob(a *dirarchive.Archive, from, cutover int64) reprocess.Job {
	return reprocess.Job{ID: "resumed", Archive: a, Processor: fixed, From: from, Cutover: cutover, ChunkPoints: 700, BatchPoints: 100}
}

func child(args []string) error {
	a, err := dirarchive.Open(args[0], nil)
	if err != nil {
		return err
	}
	defer a.Close()
	v, err := reprocess.OpenVersions(args[1], nil)
	if err != nil {
		return err
	}
	from, _ := strconv.ParseInt(args[2], 10, 64)
	cutover, _ := strconv.ParseInt(args[3], 10, 64)
	job := killJob(a, from, cutover)
	job.Rate = 4000 // about 5 s for the whole job: the parent kills it before
	_, err = v.Run(context.Background(), job)
	return err
}

// TestResumeAfterKill runs a job in a child process, kills it with SIGKILL
// after a few checkpoints, resumes it here, and checks that the version is
// the same, cell for cell, as that of an uninterrupted run, and answers as
// memstore built from the raw points does.
func TestResumeAfterKill(t *testing.T) {
	ctx := context.Background()
	h := newHistory()
	dir := t.TempDir()
	e := newEnv(t, dir)
	past := orders(4, 20_000, h.t0, h.cutover)
	e.write(t, past, 9)
	if _, err := e.eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "killed")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d %d", envChild, filepath.Join(dir, "archive"), root, h.t0, h.cutover))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cpPath := filepath.Join(root, "versions", "resumed", "checkpoint.json")
	var next int64
	for deadline := time.Now().Add(time.Minute); next < h.t0+60*60_000; {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatal("the child wrote no checkpoint past the first hour within a minute")
		}
		time.Sleep(20 * time.Millisecond)
		var cp struct{ Next int64 }
		if b, err := os.ReadFile(cpPath); err == nil && json.Unmarshal(b, &cp) == nil {
			next = cp.Next
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Fatal("the child finished before it was killed")
	}
	if next >= h.cutover {
		t.Fatal("the child finished before it was killed")
	}

	killed, err := reprocess.OpenVersions(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	lin, err := killed.Run(ctx, killJob(e.arch, h.t0, h.cutover))
	if err != nil {
		t.Fatal(err)
	}
	if lin.Resumes != 1 || lin.Points != int64(len(past)) {
		t.Errorf("resumed lineage: %d resumes, %d points", lin.Resumes, lin.Points)
	}
	clean, err := reprocess.OpenVersions(filepath.Join(dir, "clean"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := clean.Run(ctx, killJob(e.arch, h.t0, h.cutover)); err != nil {
		t.Fatal(err)
	}
	cells := func(v *reprocess.Versions) []tsstore.Cell {
		st, err := v.OpenStore("resumed")
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		return allCells(t, st, h.t0, h.cutover)
	}
	got, want := cells(killed), cells(clean)
	if len(want) == 0 {
		t.Fatal("no cells")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("resumed version differs from an uninterrupted run (-want +got):\n%s", diff)
	}
	o := oracle(t, past, func(tsstore.Point) tsstore.Processor { return fixed })
	for i := range want {
		want[i].Seq = 0
	}
	if diff := cmp.Diff(allCells(t, o, h.t0, h.cutover), want); diff != "" {
		t.Fatalf("version differs from the oracle (-want +got):\n%s", diff)
	}
	t.Logf("killed at checkpoint %s (%.0f%% of the range), %d cells", tsstore.TimeOf(next).Format(time.TimeOnly), 100*float64(next-h.t0)/float64(h.cutover-h.t0), len(got))
}
