package customhandler

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test of the package must stop what it starts (servers, health loops, handlers).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
