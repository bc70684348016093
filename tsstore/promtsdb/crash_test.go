package promtsdb_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/hourglass-io/hourglass/tsstore"
	"github.com/hourglass-io/hourglass/tsstore/promtsdb"
)

// crashChildEnv, when set to a directory, makes the test binary run
// crashChild instead of the tests.
const crashChildEnv = "PROMTSDB_CRASH_CHILD_DIR"

const crashSeries = 20

// crashBatch is the batch number i the child writes: one cell per series
// at minute i, and a late partial of minute i/2.
func crashBatch(i int) []tsstore.Cell {
	cells := make([]tsstore.Cell, 0, crashSeries+1)
	for m := 0; m < crashSeries; m++ {
		ls := tsstore.Labels{{Name: "merchant", Value: "m" + strconv.Itoa(m)}}
		cells = append(cells, mkCell("orders", ls, base+int64(i)*minute, 0, float64(i), float64(m)))
	}
	ls := tsstore.Labels{{Name: "merchant", Value: "m0"}}
	cells = append(cells, mkCell("orders", ls, base+int64(i/2)*minute, uint32(1+i%2), float64(-i)))
	return cells
}

// crashChild writes batches to the store in dir until it is killed,
// printing "ack i" after Write(batch i) returned.
func crashChild(dir string) {
	s, err := promtsdb.Open(dir, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for i := 0; i < 1_000_000; i++ {
		if err := s.Write(context.Background(), crashBatch(i)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Fprintf(os.Stdout, "ack %d\n", i) // os.Stdout is unbuffered
	}
	os.Exit(3) // never killed
}

// TestCrashRecovery kills (SIGKILL) a child process that is writing and
// checks that every write it acknowledged is there after the WAL replay.
func TestCrashRecovery(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := -1
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		line := sc.Text()
		n, err := strconv.Atoi(strings.TrimPrefix(line, "ack "))
		if err != nil || n != acked+1 {
			t.Errorf("child printed %q after ack %d", line, acked)
			continue
		}
		acked = n
		if acked == 300 && !killed {
			// Kill it mid-stream; acks it printed before dying are still
			// read below.
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child exited before it was killed (%v) after ack %d", err, acked)
	}
	t.Logf("child killed after acknowledging batches 0..%d (%v)", acked, err)

	s := open(t, dir)
	got := map[tsstore.CellID]tsstore.Agg{}
	for _, c := range allCells(t, s, "orders") {
		got[c.ID()] = c.Agg
	}
	missing := 0
	for i := 0; i <= acked; i++ {
		for _, c := range crashBatch(i) {
			if a, ok := got[c.ID()]; !ok || a != c.Agg {
				missing++
				if missing < 5 {
					t.Errorf("acknowledged cell %s%s@%d seq %d (batch %d): stored %+v (present %v), want %+v", c.Metric, c.Labels, c.Start, c.Seq, i, a, ok, c.Agg)
				}
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d acknowledged cells missing or wrong after the crash", missing)
	}
	// The store is usable: the next batch is accepted, an acknowledged one
	// rewritten is a no-op.
	write(t, s, crashBatch(acked)...)
	write(t, s, crashBatch(acked+1)...)
}
