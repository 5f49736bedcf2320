package cluster_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/signalbox-io/signalbox/internal/cluster"
	"github.com/signalbox-io/signalbox/internal/hub"
	"github.com/signalbox-io/signalbox/internal/restapi"
	"github.com/signalbox-io/signalbox/protocol"
)

// The REST API talks to a Node through its own interface.
var _ restapi.Hubs = (*cluster.Node)(nil)

type printClient struct{ id, user string }

func (c *printClient) ID() string                  { return c.id }
func (c *printClient) Hub() string                 { return "chat" }
func (c *printClient) UserID() string              { return c.user }
func (c *printClient) Protocol() protocol.Protocol { return protocol.JSON() }
func (c *printClient) Send(frame []byte) bool {
	fmt.Printf("%s <- %s\n", c.id, strings.TrimSuffix(string(frame), "\x1e"))
	return true
}
func (c *printClient) Close(string, bool) {}

func ExampleNode() {
	ctx := context.Background()
	node, _ := cluster.NewNode(ctx, cluster.Options{}) // one process: a MemoryBroker
	defer node.Close()
	_ = node.AddUserToGroup(ctx, "chat", "alice", "admins", nil) // alice is offline: remembered
	_ = node.Add(ctx, &printClient{id: "c1", user: "alice"})     // her later connection joins
	_ = node.SendGroup(ctx, "chat", "admins", hub.NewPayload(&protocol.Invocation{Target: "hello"}), nil)
	ok, _ := node.UserExists(ctx, "chat", "alice")
	fmt.Println(ok)
	// Output:
	// c1 <- {"type":1,"target":"hello","arguments":[]}
	// true
}
