package cluster

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/signalbox-io/signalbox/internal/hub"
)

// Options configures a Node; the zero value is a single node with defaults.
type Options struct {
	Registry   *hub.Registry   // the local connection index; nil = a new one
	UserGroups *hub.UserGroups // persistent user-group memberships; nil = a new store
	Broker     Broker          // nil = a new MemoryBroker (one process)
	NodeID     string          // "" = generated
	Logger     *slog.Logger    // nil = discard
}

// Node is one Signalbox process as a member of the service: the REST API talks to
// it (it implements restapi.Hubs), the server registers its connections with it.
type Node struct {
	id     string
	reg    *hub.Registry
	ug     *hub.UserGroups
	broker Broker
	log    *slog.Logger
	unsub  func()

	// userLocks serialize, per user, the reading of the user's memberships when a
	// connection is added with their application to the user's connections, so
	// that a membership added meanwhile is never missed by the new connection.
	seed      maphash.Seed
	userLocks [64]sync.Mutex
}

// NewNode builds a node and subscribes it to its broker.
func NewNode(ctx context.Context, opts Options) (*Node, error) {
	n := &Node{id: opts.NodeID, reg: opts.Registry, ug: opts.UserGroups, broker: opts.Broker, log: opts.Logger,
		seed: maphash.MakeSeed()}
	if n.id == "" {
		n.id = NewNodeID()
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	if n.reg == nil {
		n.reg = hub.NewWithOptions(hub.Options{Logger: n.log})
	}
	if n.ug == nil {
		n.ug = hub.NewUserGroups(hub.UserGroupOptions{})
	}
	if n.broker == nil {
		n.broker = NewMemoryBroker()
	}
	unsub, err := n.broker.Subscribe(ctx, n.id, n.apply)
	if err != nil {
		return nil, fmt.Errorf("cluster: subscribe node %s: %w", n.id, err)
	}
	n.unsub = unsub
	return n, nil
}

// NewNodeID returns a random node id (12 base64url characters).
func NewNodeID() string {
	var b [9]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ID is the node's id.
func (n *Node) ID() string { return n.id }

// Registry is the node's local connection index.
func (n *Node) Registry() *hub.Registry { return n.reg }

// Close unsubscribes the node from its broker.
func (n *Node) Close() error {
	n.unsub()
	return nil
}

func (n *Node) userLock(hubName, user string) *sync.Mutex {
	var h maphash.Hash
	h.SetSeed(n.seed)
	h.WriteString(strings.ToLower(hubName))
	h.WriteByte(0)
	h.WriteString(user)
	return &n.userLocks[h.Sum64()%uint64(len(n.userLocks))]
}

// Add registers a local connection and joins it to its user's persistent groups.
func (n *Node) Add(_ context.Context, c hub.Client) error {
	n.expire()
	user := c.UserID()
	if user == "" {
		n.reg.Add(c)
		return nil
	}
	mu := n.userLock(c.Hub(), user)
	mu.Lock()
	defer mu.Unlock()
	n.reg.Add(c, n.ug.Groups(c.Hub(), user)...)
	return nil
}

// Remove unregisters a local connection; a no-op when it is not registered.
func (n *Node) Remove(c hub.Client) { n.reg.Remove(c) }

// expire ends the persistent memberships whose time is up, on this node's
// connections. Callers run it before anything that reads group membership.
func (n *Node) expire() {
	if !n.ug.Due() {
		return
	}
	for _, e := range n.ug.Expire() {
		n.leaveUser(e.Hub, e.User, e.Group)
	}
}

// leaveUser takes the user's connections out of group unless a membership was
// added again meanwhile or they joined directly.
func (n *Node) leaveUser(hubName, user, group string) {
	mu := n.userLock(hubName, user)
	mu.Lock()
	defer mu.Unlock()
	if !n.ug.Has(hubName, user, group) {
		n.reg.LeaveUser(hubName, user, group)
	}
}

func (n *Node) publish(ctx context.Context, msg *Message) error {
	if err := n.broker.Publish(ctx, msg); err != nil {
		return fmt.Errorf("cluster: publish %s: %w", msg.Kind, err)
	}
	return nil
}

// apply carries out a message on the local connections.
func (n *Node) apply(msg *Message) {
	r := n.reg
	switch msg.Kind {
	case KindSendAll:
		r.SendAll(msg.Hub, msg.Payload, msg.Excluded)
	case KindSendUser:
		r.SendUser(msg.Hub, msg.User, msg.Payload)
	case KindSendConnection:
		r.SendConnection(msg.Hub, msg.Conn, msg.Payload)
	case KindSendGroup:
		n.expire()
		r.SendGroup(msg.Hub, msg.Group, msg.Payload, msg.Excluded)
	case KindCloseConnection:
		r.CloseConnection(msg.Hub, msg.Conn, msg.Reason)
	case KindCloseAll:
		r.CloseAll(msg.Hub, msg.Excluded, msg.Reason)
	case KindCloseGroup:
		n.expire()
		r.CloseGroup(msg.Hub, msg.Group, msg.Excluded, msg.Reason)
	case KindCloseUser:
		r.CloseUser(msg.Hub, msg.User, msg.Excluded, msg.Reason)
	case KindAddToGroup:
		r.AddToGroup(msg.Hub, msg.Group, msg.Conn)
	case KindRemoveFromGroup:
		r.RemoveFromGroup(msg.Hub, msg.Group, msg.Conn)
	case KindRemoveFromAllGroups:
		r.RemoveFromAllGroups(msg.Hub, msg.Conn)
	case KindJoinUser:
		r.JoinUser(msg.Hub, msg.User, msg.Group)
	case KindJoinUserNow:
		r.JoinUserNow(msg.Hub, msg.User, msg.Group)
	case KindLeaveUser:
		n.leaveUser(msg.Hub, msg.User, msg.Group)
	case KindRemoveUser:
		r.RemoveUserFromGroup(msg.Hub, msg.User, msg.Group)
	case KindRemoveUserAll:
		r.RemoveUserFromAllGroups(msg.Hub, msg.User)
	default:
		n.log.Warn("cluster: unknown message kind", slog.Int("kind", int(msg.Kind)))
	}
}

// errNoPayload guards the sends: a nil payload would panic on every node.
var errNoPayload = errors.New("cluster: send without payload")

func (n *Node) send(ctx context.Context, msg *Message) error {
	if msg.Payload == nil {
		return errNoPayload
	}
	return n.publish(ctx, msg)
}

// SendAll sends p to every connection of hub except the excluded ones.
func (n *Node) SendAll(ctx context.Context, hubName string, p *hub.Payload, excluded []string) error {
	return n.send(ctx, &Message{Kind: KindSendAll, Hub: hubName, Payload: p, Excluded: excluded})
}

// SendUser sends p to every connection of user.
func (n *Node) SendUser(ctx context.Context, hubName, user string, p *hub.Payload) error {
	return n.send(ctx, &Message{Kind: KindSendUser, Hub: hubName, User: user, Payload: p})
}

// SendConnection sends p to one connection; an absent connection is no error.
func (n *Node) SendConnection(ctx context.Context, hubName, connID string, p *hub.Payload) error {
	return n.send(ctx, &Message{Kind: KindSendConnection, Hub: hubName, Conn: connID, Payload: p})
}

// SendGroup sends p to every connection of group except the excluded ones.
func (n *Node) SendGroup(ctx context.Context, hubName, group string, p *hub.Payload, excluded []string) error {
	return n.send(ctx, &Message{Kind: KindSendGroup, Hub: hubName, Group: group, Payload: p, Excluded: excluded})
}

// ConnectionExists reports whether the connection is live.
func (n *Node) ConnectionExists(_ context.Context, hubName, connID string) (bool, error) {
	_, ok := n.reg.Connection(hubName, connID)
	return ok, nil
}

// UserExists reports whether user has a live connection.
func (n *Node) UserExists(_ context.Context, hubName, user string) (bool, error) {
	return n.reg.UserExists(hubName, user), nil
}

// GroupExists reports whether group has a connection.
func (n *Node) GroupExists(_ context.Context, hubName, group string) (bool, error) {
	n.expire()
	return n.reg.GroupExists(hubName, group), nil
}

// UserInGroup reports whether user has a live persistent membership of group or
// a connection in it.
func (n *Node) UserInGroup(_ context.Context, hubName, user, group string) (bool, error) {
	n.expire()
	return n.ug.Has(hubName, user, group) || n.reg.UserInGroup(hubName, user, group), nil
}

// GroupConnections lists the connections of group sorted by id.
func (n *Node) GroupConnections(_ context.Context, hubName, group string) ([]hub.ConnectionInfo, error) {
	n.expire()
	return n.reg.GroupConnections(hubName, group), nil
}

// CloseConnection closes one connection; false when there is no such connection.
func (n *Node) CloseConnection(ctx context.Context, hubName, connID, reason string) (bool, error) {
	if _, ok := n.reg.Connection(hubName, connID); !ok {
		return false, nil
	}
	return true, n.publish(ctx, &Message{Kind: KindCloseConnection, Hub: hubName, Conn: connID, Reason: reason})
}

// CloseAll closes every connection of hub except the excluded ones.
func (n *Node) CloseAll(ctx context.Context, hubName string, excluded []string, reason string) error {
	return n.publish(ctx, &Message{Kind: KindCloseAll, Hub: hubName, Excluded: excluded, Reason: reason})
}

// CloseGroup closes every connection of group except the excluded ones.
func (n *Node) CloseGroup(ctx context.Context, hubName, group string, excluded []string, reason string) error {
	return n.publish(ctx, &Message{Kind: KindCloseGroup, Hub: hubName, Group: group, Excluded: excluded, Reason: reason})
}

// CloseUser closes every connection of user except the excluded ones.
func (n *Node) CloseUser(ctx context.Context, hubName, user string, excluded []string, reason string) error {
	return n.publish(ctx, &Message{Kind: KindCloseUser, Hub: hubName, User: user, Excluded: excluded, Reason: reason})
}

// AddToGroup adds a connection to group; false when there is no such connection.
func (n *Node) AddToGroup(ctx context.Context, hubName, group, connID string) (bool, error) {
	if _, ok := n.reg.Connection(hubName, connID); !ok {
		return false, nil
	}
	return true, n.publish(ctx, &Message{Kind: KindAddToGroup, Hub: hubName, Group: group, Conn: connID})
}

// RemoveFromGroup takes a connection out of group.
func (n *Node) RemoveFromGroup(ctx context.Context, hubName, group, connID string) error {
	return n.publish(ctx, &Message{Kind: KindRemoveFromGroup, Hub: hubName, Group: group, Conn: connID})
}

// RemoveFromAllGroups takes a connection out of every group.
func (n *Node) RemoveFromAllGroups(ctx context.Context, hubName, connID string) error {
	return n.publish(ctx, &Message{Kind: KindRemoveFromAllGroups, Hub: hubName, Conn: connID})
}

// AddUserToGroup adds user to group: persistently (ttl nil or > 0, applying to
// later connections too) or only for its current connections (ttl <= 0).
func (n *Node) AddUserToGroup(ctx context.Context, hubName, user, group string, ttl *time.Duration) error {
	n.expire()
	if ttl != nil && *ttl <= 0 {
		return n.publish(ctx, &Message{Kind: KindJoinUserNow, Hub: hubName, User: user, Group: group})
	}
	mu := n.userLock(hubName, user)
	mu.Lock()
	dropped := n.ug.Add(hubName, user, group, ttl)
	mu.Unlock()
	err := n.publish(ctx, &Message{Kind: KindJoinUser, Hub: hubName, User: user, Group: group})
	for _, g := range dropped {
		err = errors.Join(err, n.publish(ctx, &Message{Kind: KindLeaveUser, Hub: hubName, User: user, Group: g}))
	}
	return err
}

// RemoveUserFromGroup ends the user's persistent membership of group and takes
// its connections out of the group.
func (n *Node) RemoveUserFromGroup(ctx context.Context, hubName, user, group string) error {
	n.ug.Remove(hubName, user, group)
	return n.publish(ctx, &Message{Kind: KindRemoveUser, Hub: hubName, User: user, Group: group})
}

// RemoveUserFromAllGroups ends every membership of user.
func (n *Node) RemoveUserFromAllGroups(ctx context.Context, hubName, user string) error {
	n.ug.RemoveAll(hubName, user)
	return n.publish(ctx, &Message{Kind: KindRemoveUserAll, Hub: hubName, User: user})
}
