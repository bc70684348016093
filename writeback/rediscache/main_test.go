package rediscache_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(leaseChildEnv); spec != "" {
		leaseChild(spec)
	}
	goleak.VerifyTestMain(m)
}
