package hubtest_test

import (
	"fmt"

	"github.com/signalbox-io/signalbox/internal/hub"
	"github.com/signalbox-io/signalbox/internal/hub/hubtest"
	"github.com/signalbox-io/signalbox/protocol"
)

// A registry sends a broadcast to two recorded clients.
func Example() {
	r := hub.New(nil)
	json := hubtest.NewProto("json")
	a, b := hubtest.NewClient("chat", "a", "ann", json), hubtest.NewClient("chat", "b", "", json)
	r.Add(a)
	r.Add(b)
	r.SendAll("chat", hub.NewPayload(&protocol.Invocation{Target: "news"}), []string{"b"})
	fmt.Println(a.Got(), b.Got(), json.Encodes.Load())
	// Output: [json:news] [] 1
}
