package hub_test

import (
	"fmt"
	"time"

	"github.com/signalbox-io/signalbox/internal/hub"
	"github.com/signalbox-io/signalbox/protocol"
)

// printClient prints what it is sent; a real Client enqueues frames for a transport.
type printClient struct{ id, user string }

func (c *printClient) ID() string                  { return c.id }
func (c *printClient) Hub() string                 { return "Chat" }
func (c *printClient) UserID() string              { return c.user }
func (c *printClient) Protocol() protocol.Protocol { return protocol.JSON() }
func (c *printClient) Send(frame []byte) bool {
	fmt.Printf("%s <- %d bytes\n", c.id, len(frame))
	return true
}
func (c *printClient) Close(reason string, _ bool) { fmt.Printf("%s closed: %s\n", c.id, reason) }

func ExampleUserGroups() {
	ug := hub.NewUserGroups(hub.UserGroupOptions{})
	r := hub.New(nil)
	ug.Add("chat", "alice", "admins", nil) // persistent: applies to later connections
	r.Add(&printClient{id: "c1", user: "alice"}, ug.Groups("chat", "alice")...)
	fmt.Println(r.UserInGroup("chat", "alice", "admins"), r.GroupExists("chat", "admins"))
	ttl := 10 * time.Minute
	ug.Add("chat", "bob", "admins", &ttl)
	fmt.Println(ug.Has("chat", "bob", "admins"), r.UserInGroup("chat", "bob", "admins")) // bob is offline
	// Output:
	// true true
	// true false
}

func ExampleRegistry_SendGroup() {
	r := hub.New(nil)
	r.Add(&printClient{id: "c1", user: "alice"})
	r.Add(&printClient{id: "c2", user: "bob"})
	r.AddToGroup("CHAT", "room", "c1") // hub names are case-insensitive
	r.AddToGroup("chat", "room", "c2")
	// Pre-framed bytes, as the REST octet-stream body delivers them.
	p := hub.PayloadFromFrames(map[string][]byte{"json": []byte("{\"type\":1,\"target\":\"hi\",\"arguments\":[]}\x1e")})
	r.SendGroup("chat", "room", p, []string{"c2"})
	r.CloseGroup("chat", "room", nil, "bye")
	// Unordered output:
	// c1 <- 40 bytes
	// c1 closed: bye
	// c2 closed: bye
}
