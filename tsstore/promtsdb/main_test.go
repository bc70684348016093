package promtsdb_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		// Re-executed by TestCrashRecovery as the writer to be killed.
		crashChild(os.Getenv(crashChildEnv))
		return
	}
	goleak.VerifyTestMain(m)
}
