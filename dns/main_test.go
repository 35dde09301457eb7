package dns

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a listener or handler
// goroutine running.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
