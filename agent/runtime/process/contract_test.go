package process

import (
	"testing"

	"github.com/shoal-dev/shoal/agent/runtime"
	"github.com/shoal-dev/shoal/agent/runtime/runtimetest"
)

func TestContract(t *testing.T) {
	runtimetest.Run(t, runtimetest.Suite{
		New:  func(t *testing.T) runtime.Driver { return newDriver(t, t.TempDir()) },
		Long: runtime.ContainerSpec{Name: "app", Command: []string{"sleep", "1000"}},
	})
}
