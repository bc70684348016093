// Package crashtest kills a working child test process with SIGKILL at a
// random moment, for tests of what survives the kill. It is for tests
// only.
package crashtest

import (
	"bufio"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Start starts cmd and returns a scanner of its stdout and the builder
// that collects its stderr (read it after cmd.Wait). It fails the test
// when cmd cannot start.
func Start(t testing.TB, cmd *exec.Cmd) (*bufio.Scanner, *strings.Builder) {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := new(strings.Builder)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return bufio.NewScanner(out), stderr
}

// KillAfterAck starts cmd, a child that prints "ack N" on stdout after
// each piece of work N it has made durable, and kills it with SIGKILL
// after a random delay in [minDelay, minDelay+spread) from its first
// acknowledgement, so that the kill hits the child's work rather than its
// start. When the child acknowledges nothing within a minute it is killed
// and the test marked failed; when it wrote to stderr before the kill the
// test fails at once. round names the kill in those messages. It returns
// the last N acknowledged, or none when there was none.
func KillAfterAck(t testing.TB, round int, cmd *exec.Cmd, none int, minDelay, spread time.Duration) int {
	t.Helper()
	sc, stderr := Start(t, cmd)
	lines := make(chan int)
	go func() {
		defer close(lines)
		for sc.Scan() {
			if n, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
				v, _ := strconv.Atoi(n)
				lines <- v
			}
		}
	}()
	acked, seen := none, false
	var kill <-chan time.Time
	giveUp := time.After(time.Minute)
read:
	for {
		select {
		case n, ok := <-lines:
			if !ok {
				break read
			}
			if !seen {
				kill = time.After(minDelay + rand.N(spread))
				seen = true
			}
			acked = n
		case <-kill:
			_ = cmd.Process.Kill()
			kill = nil
		case <-giveUp:
			_ = cmd.Process.Kill()
			t.Errorf("round %d: the child acknowledged nothing within a minute", round)
			giveUp = nil
		}
	}
	_ = cmd.Wait()
	if s := stderr.String(); s != "" {
		t.Fatalf("round %d: the child failed before it was killed: %s", round, s)
	}
	return acked
}
