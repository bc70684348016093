package promremote_test

import (
	"flag"
	"testing"

	"go.uber.org/goleak"
)

// TestMain runs 20 rapid checks per property unless -rapid.checks says
// otherwise: every check writes to a real engine, and the default of 100
// would take most of a minute per property.
func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "rapid.checks" })
	if !explicit {
		_ = flag.Set("rapid.checks", "20")
	}
	goleak.VerifyTestMain(m)
}
