package servertest

import (
	"os"
	"os/exec"
	"testing"
)

// EnvChromium names the Chromium binary that browser tests drive.
const EnvChromium = "HOURGLASS_CHROMIUM"

// Chromium returns the path of a Chromium binary for tests that drive a real
// browser: $HOURGLASS_CHROMIUM, or chromium on the PATH. Without one the
// test is skipped (failed under CI=true).
func Chromium(t testing.TB) string {
	t.Helper()
	p := os.Getenv(EnvChromium)
	if p == "" {
		p, _ = exec.LookPath("chromium")
	}
	if p == "" {
		Missing(t, "Chromium", "set "+EnvChromium+" or install Debian's chromium package")
		return ""
	}
	if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		Missing(t, "Chromium at "+p, "it is not an executable file")
	}
	return p
}
