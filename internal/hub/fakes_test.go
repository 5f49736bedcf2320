package hub

import (
	"time"

	"github.com/signalbox-io/signalbox/internal/hub/hubtest"
	"github.com/signalbox-io/signalbox/protocol"
)

// The test doubles are in package hubtest; these are the hub's own shorthands.

func msg(target string) *Payload { return NewPayload(&protocol.Invocation{Target: target}) }

func dur(d time.Duration) *time.Duration { return &d }

// failingProto is a protocol whose every encoding fails.
func failingProto(name string) *hubtest.Proto {
	p := hubtest.NewProto(name)
	p.Fail = true
	return p
}
