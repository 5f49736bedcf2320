package transport

import (
	"testing"

	"go.uber.org/goleak"
)

// The event loop and its reader goroutines must end with the last socket.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
