package crashtest_test

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hourglass-io/hourglass/internal/crashtest"
)

const envChild = "HOURGLASS_CRASHTEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(envChild) != "" {
		// The child acknowledges forever, a little slower than it could.
		for n := 0; ; n++ {
			fmt.Printf("ack %d\n", n)
			time.Sleep(time.Millisecond)
		}
	}
	goleak.VerifyTestMain(m)
}

func TestKillAfterAck(t *testing.T) {
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envChild+"="+strconv.Itoa(round))
		acked := crashtest.KillAfterAck(t, round, cmd, -1, 10*time.Millisecond, 50*time.Millisecond)
		if acked < 0 {
			t.Fatalf("round %d: no acknowledgement seen", round)
		}
		if cmd.ProcessState == nil || cmd.ProcessState.Success() {
			t.Fatalf("round %d: the child was not killed: %v", round, cmd.ProcessState)
		}
	}
}
