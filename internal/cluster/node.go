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
	"sync/atomic"
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
	// Flusher is the new registry's hub.Options.Flusher (unused with Registry).
	Flusher func() hub.Flusher
}

// sharedState is what a Broker offers when several nodes form the service: the
// facts they must agree on. RedisBroker implements it; with a MemoryBroker the
// node's own registry is the whole truth.
type sharedState interface {
	Broker
	hub.Observer
	Start(reg *hub.Registry)
	Close() error
	Ready() error
	Flush(ctx context.Context) error
	Address(ctx context.Context, node string) (string, bool)
	SetAddress(addr string)
	ConnectionOwner(ctx context.Context, hub, id string) (node string, ok bool, err error)
	UserNodes(ctx context.Context, hub, user string) ([]string, error)
	GroupExists(ctx context.Context, hub, group string) (bool, error)
	GroupMembers(ctx context.Context, hub, group string) ([]hub.ConnectionInfo, error)
	UserConnectionInGroup(ctx context.Context, hub, user, group string) (bool, error)
	// AddUserGroup refuses with a *hub.GroupLimitError, and records nothing, when
	// the user would have more than limit memberships (0 = unlimited).
	AddUserGroup(ctx context.Context, hub, user, group string, ttl *time.Duration, limit int) (UserGroupRecord, []string, error)
	UserGroups(ctx context.Context, hub, user string) (map[string]UserGroupRecord, error)
	HasUserGroup(ctx context.Context, hub, user, group string) (bool, error)
	RemoveUserGroup(ctx context.Context, hub, user, group string) error
}

// CommandTimeout bounds the wait for the node holding a connection to carry out a
// command (close, group add or remove) and acknowledge it.
const CommandTimeout = 5 * time.Second

// Node is one Signalbox process as a member of the service: the REST API talks to
// it (it implements restapi.Hubs), the server registers its connections with it.
type Node struct {
	id     string
	reg    *hub.Registry
	ug     *hub.UserGroups
	broker Broker
	shared sharedState // nil on a single node
	log    *slog.Logger
	unsub  func()

	closeOnce sync.Once
	reqSeq    atomic.Uint64
	pending   sync.Map // request id -> chan *Message, commands waiting for their ack
	// maxGroups is the limit of SetMaxGroups (0 = unlimited).
	maxGroups atomic.Int64

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
	if n.broker == nil {
		n.broker = NewMemoryBroker()
	}
	if st, ok := n.broker.(sharedState); ok {
		if n.reg != nil {
			return nil, errors.New("cluster: a node with shared state builds its own registry")
		}
		n.shared = st
		n.reg = hub.NewWithOptions(hub.Options{Logger: n.log, Observer: st, Flusher: opts.Flusher})
	}
	if n.reg == nil {
		n.reg = hub.NewWithOptions(hub.Options{Logger: n.log, Flusher: opts.Flusher})
	}
	if n.ug == nil {
		n.ug = hub.NewUserGroups(hub.UserGroupOptions{})
	}
	unsub, err := n.broker.Subscribe(ctx, n.id, n.apply)
	if err != nil {
		return nil, fmt.Errorf("cluster: subscribe node %s: %w", n.id, err)
	}
	n.unsub = unsub
	if n.shared != nil {
		n.shared.Start(n.reg)
	}
	return n, nil
}

// Ready is nil when the node can carry out cluster operations; a single node
// always can.
func (n *Node) Ready() error {
	if n.shared == nil {
		return nil
	}
	return n.shared.Ready()
}

// Clustered reports whether the node shares its state with other nodes.
func (n *Node) Clustered() bool { return n.shared != nil }

// NodeAddress returns the advertised address of a live node of the cluster.
func (n *Node) NodeAddress(ctx context.Context, node string) (string, bool) {
	if n.shared == nil {
		return "", false
	}
	return n.shared.Address(ctx, node)
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

// SetMaxGroups sets the limit of groups per connection (0 = unlimited): a
// connection of this node already in that many groups is not added to another by
// connection id, and a user with that many persistent memberships gets no more.
// In a cluster the node holding a connection applies its own limit, and the node
// that receives a user add applies its own; nodes should share the setting.
func (n *Node) SetMaxGroups(limit int) {
	limit = max(limit, 0)
	n.maxGroups.Store(int64(limit))
	n.reg.SetMaxGroups(limit)
}

// SetAddress sets the address other nodes forward client requests to.
func (n *Node) SetAddress(addr string) {
	if n.shared != nil {
		n.shared.SetAddress(addr)
	}
}

// Close unsubscribes the node from its broker and, in a cluster, leaves it. Only
// the first call does anything.
func (n *Node) Close() error {
	var err error
	n.closeOnce.Do(func() {
		n.unsub()
		if n.shared != nil {
			err = n.shared.Close()
		}
	})
	return err
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
// In a cluster it returns once the connection is visible to every node; on an
// error the connection is registered locally all the same (the cluster catches
// up once Redis is back) but may have missed its user's persistent groups.
func (n *Node) Add(ctx context.Context, c hub.Client) error {
	n.expire()
	user := c.UserID()
	var err error
	if user == "" {
		n.reg.Add(c)
	} else {
		err = n.addUser(ctx, c, user)
	}
	if n.shared != nil && err == nil {
		err = n.shared.Flush(ctx)
	}
	return err
}

func (n *Node) addUser(ctx context.Context, c hub.Client, user string) error {
	mu := n.userLock(c.Hub(), user)
	mu.Lock()
	defer mu.Unlock()
	if n.shared == nil {
		n.reg.Add(c, n.ug.Groups(c.Hub(), user)...)
		return nil
	}
	recs, err := n.shared.UserGroups(ctx, c.Hub(), user)
	groups := make([]string, 0, len(recs))
	for g, rec := range recs {
		n.ug.Set(c.Hub(), user, g, rec.Expires, rec.NoTTL)
		groups = append(groups, g)
	}
	n.reg.Add(c, groups...)
	return err
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
		n.leaveUser(e.Hub, e.User, e.Group, false)
	}
}

// leaveUser takes the user's connections out of group unless a membership was
// added again meanwhile or they joined directly. A message (drop) says the shared
// store dropped the membership: the local record goes too.
func (n *Node) leaveUser(hubName, user, group string, drop bool) {
	mu := n.userLock(hubName, user)
	mu.Lock()
	defer mu.Unlock()
	if drop && n.shared != nil {
		n.ug.Remove(hubName, user, group)
	}
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
	if msg.Kind == KindAck {
		if ch, ok := n.pending.Load(msg.Request); ok {
			select {
			case ch.(chan *Message) <- msg:
			default:
			}
		}
		return
	}
	if msg.Request != 0 {
		go n.command(msg) // it waits for Redis: not on the subscription's goroutine
		return
	}
	n.applyLocal(msg)
}

// command carries out a command from another node and acknowledges it once its
// effect on the cluster's state is written.
func (n *Node) command(msg *Message) {
	ok, err := n.applyLocal(msg)
	ctx, cancel := context.WithTimeout(context.Background(), CommandTimeout)
	defer cancel()
	if n.shared != nil {
		if err := n.shared.Flush(ctx); err != nil {
			n.log.Warn("cluster: command not acknowledged", slog.String("kind", msg.Kind.String()), slog.Any("error", err))
			return
		}
	}
	ack := &Message{Kind: KindAck, Request: msg.Request, OK: ok}
	if gl := (*hub.GroupLimitError)(nil); errors.As(err, &gl) {
		ack.GroupLimit = gl.Limit
	}
	if err := n.broker.Publish(ctx, ack, msg.Origin); err != nil {
		n.log.Warn("cluster: cannot acknowledge command", slog.String("kind", msg.Kind.String()), slog.Any("error", err))
	}
}

// applyLocal carries out a message on this node's connections; the result is
// that of the connection commands (false: no such connection here), and the
// refusal of a group add (*hub.GroupLimitError).
func (n *Node) applyLocal(msg *Message) (bool, error) {
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
		return r.CloseConnection(msg.Hub, msg.Conn, msg.Reason), nil
	case KindCloseAll:
		r.CloseAll(msg.Hub, msg.Excluded, msg.Reason)
	case KindCloseGroup:
		n.expire()
		r.CloseGroup(msg.Hub, msg.Group, msg.Excluded, msg.Reason)
	case KindCloseUser:
		r.CloseUser(msg.Hub, msg.User, msg.Excluded, msg.Reason)
	case KindAddToGroup:
		return r.AddToGroup(msg.Hub, msg.Group, msg.Conn)
	case KindRemoveFromGroup:
		return r.RemoveFromGroup(msg.Hub, msg.Group, msg.Conn), nil
	case KindRemoveFromAllGroups:
		r.RemoveFromAllGroups(msg.Hub, msg.Conn)
	case KindJoinUser:
		n.joinUser(msg)
	case KindJoinUserNow:
		if skipped := r.JoinUserNow(msg.Hub, msg.User, msg.Group); skipped > 0 {
			n.log.Debug("connections at their group limit left out of a group",
				slog.String("hub", msg.Hub), slog.String("group", msg.Group), slog.Int("connections", skipped))
		}
	case KindLeaveUser:
		n.leaveUser(msg.Hub, msg.User, msg.Group, true)
	case KindRemoveUser:
		if n.shared != nil {
			n.ug.Remove(msg.Hub, msg.User, msg.Group)
		}
		r.RemoveUserFromGroup(msg.Hub, msg.User, msg.Group)
	case KindRemoveUserAll:
		if n.shared != nil {
			n.ug.RemoveAll(msg.Hub, msg.User)
		}
		r.RemoveUserFromAllGroups(msg.Hub, msg.User)
	default:
		n.log.Warn("cluster: unknown message kind", slog.Int("kind", int(msg.Kind)))
	}
	return true, nil
}

// joinUser applies a persistent membership to the user's connections here; in a
// cluster the node also keeps the record to expire it on time.
func (n *Node) joinUser(msg *Message) {
	mu := n.userLock(msg.Hub, msg.User)
	mu.Lock()
	defer mu.Unlock()
	if n.shared != nil {
		n.ug.Set(msg.Hub, msg.User, msg.Group, time.UnixMilli(msg.Expires), msg.NoTTL)
	}
	n.reg.JoinUser(msg.Hub, msg.User, msg.Group)
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

// SendUser sends p to every connection of user: in a cluster, only to the nodes
// that hold one.
func (n *Node) SendUser(ctx context.Context, hubName, user string, p *hub.Payload) error {
	msg := &Message{Kind: KindSendUser, Hub: hubName, User: user, Payload: p}
	if n.shared == nil {
		return n.send(ctx, msg)
	}
	if err := n.shared.Ready(); err != nil {
		return err
	}
	nodes, err := n.shared.UserNodes(ctx, hubName, user)
	if err != nil || len(nodes) == 0 {
		return err
	}
	return n.sendTo(ctx, msg, nodes...)
}

// SendConnection sends p to one connection; an absent connection is no error. In
// a cluster only the node holding it gets the message.
func (n *Node) SendConnection(ctx context.Context, hubName, connID string, p *hub.Payload) error {
	msg := &Message{Kind: KindSendConnection, Hub: hubName, Conn: connID, Payload: p}
	if n.shared == nil {
		return n.send(ctx, msg)
	}
	owner, ok, err := n.owner(ctx, hubName, connID)
	if err != nil || !ok {
		return err
	}
	return n.sendTo(ctx, msg, owner)
}

func (n *Node) sendTo(ctx context.Context, msg *Message, nodes ...string) error {
	if msg.Payload == nil {
		return errNoPayload
	}
	if err := n.broker.Publish(ctx, msg, nodes...); err != nil {
		return fmt.Errorf("cluster: publish %s: %w", msg.Kind, err)
	}
	return nil
}

// owner finds the node holding a connection.
func (n *Node) owner(ctx context.Context, hubName, connID string) (string, bool, error) {
	if err := n.shared.Ready(); err != nil {
		return "", false, err
	}
	return n.shared.ConnectionOwner(ctx, hubName, connID)
}

// SendGroup sends p to every connection of group except the excluded ones.
func (n *Node) SendGroup(ctx context.Context, hubName, group string, p *hub.Payload, excluded []string) error {
	return n.send(ctx, &Message{Kind: KindSendGroup, Hub: hubName, Group: group, Payload: p, Excluded: excluded})
}

// ready is the gate of cluster reads: an unreachable Redis is an error, never a
// "does not exist".
func (n *Node) ready() error {
	if n.shared == nil {
		return nil
	}
	return n.shared.Ready()
}

// ConnectionExists reports whether the connection is live.
func (n *Node) ConnectionExists(ctx context.Context, hubName, connID string) (bool, error) {
	if n.shared != nil {
		_, ok, err := n.owner(ctx, hubName, connID)
		return ok, err
	}
	_, ok := n.reg.Connection(hubName, connID)
	return ok, nil
}

// UserExists reports whether user has a live connection.
func (n *Node) UserExists(ctx context.Context, hubName, user string) (bool, error) {
	if n.shared != nil {
		if err := n.ready(); err != nil {
			return false, err
		}
		nodes, err := n.shared.UserNodes(ctx, hubName, user)
		return len(nodes) > 0, err
	}
	return n.reg.UserExists(hubName, user), nil
}

// GroupExists reports whether group has a connection.
func (n *Node) GroupExists(ctx context.Context, hubName, group string) (bool, error) {
	n.expire()
	if n.shared != nil {
		if err := n.ready(); err != nil {
			return false, err
		}
		return n.shared.GroupExists(ctx, hubName, group)
	}
	return n.reg.GroupExists(hubName, group), nil
}

// UserInGroup reports whether user has a live persistent membership of group or
// a connection in it.
func (n *Node) UserInGroup(ctx context.Context, hubName, user, group string) (bool, error) {
	n.expire()
	if n.shared != nil {
		if err := n.ready(); err != nil {
			return false, err
		}
		if ok, err := n.shared.HasUserGroup(ctx, hubName, user, group); ok || err != nil {
			return ok, err
		}
		return n.shared.UserConnectionInGroup(ctx, hubName, user, group)
	}
	return n.ug.Has(hubName, user, group) || n.reg.UserInGroup(hubName, user, group), nil
}

// GroupConnections lists the connections of group sorted by id.
func (n *Node) GroupConnections(ctx context.Context, hubName, group string) ([]hub.ConnectionInfo, error) {
	n.expire()
	if n.shared != nil {
		if err := n.ready(); err != nil {
			return nil, err
		}
		return n.shared.GroupMembers(ctx, hubName, group)
	}
	return n.reg.GroupConnections(hubName, group), nil
}

// connCommand carries out a command on the node holding a connection and reports
// its result; false when there is no such connection. The holder's refusal of a
// group add is a *hub.GroupLimitError, wherever the holder is.
func (n *Node) connCommand(ctx context.Context, msg *Message) (bool, error) {
	if n.shared == nil {
		// A single node holds every connection it knows: carry the command out
		// here, where its result (a refused group add) is seen.
		return n.applyLocal(msg)
	}
	owner, ok, err := n.owner(ctx, msg.Hub, msg.Conn)
	if err != nil || !ok {
		return false, err
	}
	if owner == n.id {
		ok, err := n.applyLocal(msg)
		if err != nil {
			return ok, err // refused: nothing changed, nothing to flush
		}
		return ok, n.shared.Flush(ctx)
	}
	msg.Origin, msg.Request = n.id, n.reqSeq.Add(1)
	ch := make(chan *Message, 1)
	n.pending.Store(msg.Request, ch)
	defer n.pending.Delete(msg.Request)
	if err := n.broker.Publish(ctx, msg, owner); err != nil {
		return false, fmt.Errorf("cluster: %s: %w", msg.Kind, err)
	}
	t := time.NewTimer(CommandTimeout)
	defer t.Stop()
	select {
	case ack := <-ch:
		if ack.GroupLimit > 0 {
			return ack.OK, &hub.GroupLimitError{Limit: ack.GroupLimit}
		}
		return ack.OK, nil
	case <-t.C:
		return false, fmt.Errorf("%w: node %s did not acknowledge %s", ErrUnavailable, owner, msg.Kind)
	case <-ctx.Done():
		return false, fmt.Errorf("%w: %s: %w", ErrUnavailable, msg.Kind, ctx.Err())
	}
}

// CloseConnection closes one connection; false when there is no such connection.
func (n *Node) CloseConnection(ctx context.Context, hubName, connID, reason string) (bool, error) {
	return n.connCommand(ctx, &Message{Kind: KindCloseConnection, Hub: hubName, Conn: connID, Reason: reason})
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

// AddToGroup adds a connection to group; false when there is no such connection,
// a *hub.GroupLimitError when the connection is in as many groups as its node allows.
func (n *Node) AddToGroup(ctx context.Context, hubName, group, connID string) (bool, error) {
	return n.connCommand(ctx, &Message{Kind: KindAddToGroup, Hub: hubName, Group: group, Conn: connID})
}

// RemoveFromGroup takes a connection out of group.
func (n *Node) RemoveFromGroup(ctx context.Context, hubName, group, connID string) error {
	_, err := n.connCommand(ctx, &Message{Kind: KindRemoveFromGroup, Hub: hubName, Group: group, Conn: connID})
	return err
}

// RemoveFromAllGroups takes a connection out of every group.
func (n *Node) RemoveFromAllGroups(ctx context.Context, hubName, connID string) error {
	_, err := n.connCommand(ctx, &Message{Kind: KindRemoveFromAllGroups, Hub: hubName, Conn: connID})
	return err
}

// AddUserToGroup adds user to group: persistently (ttl nil or > 0, applying to
// later connections too) or only for its current connections (ttl <= 0). A user
// whose persistent memberships would pass SetMaxGroups is refused with a
// *hub.GroupLimitError and nothing changes; the ttl <= 0 form leaves out the
// connections at their own limit.
func (n *Node) AddUserToGroup(ctx context.Context, hubName, user, group string, ttl *time.Duration) error {
	n.expire()
	if ttl != nil && *ttl <= 0 {
		return n.publish(ctx, &Message{Kind: KindJoinUserNow, Hub: hubName, User: user, Group: group})
	}
	msg := &Message{Kind: KindJoinUser, Hub: hubName, User: user, Group: group}
	var dropped []string
	if n.shared != nil {
		if err := n.ready(); err != nil {
			return err
		}
		rec, d, err := n.shared.AddUserGroup(ctx, hubName, user, group, ttl, int(n.maxGroups.Load()))
		if err != nil {
			return err
		}
		msg.Expires, msg.NoTTL, dropped = rec.Expires.UnixMilli(), rec.NoTTL, d
	} else {
		mu := n.userLock(hubName, user)
		mu.Lock()
		var err error
		dropped, err = n.ug.AddWithin(hubName, user, group, ttl, int(n.maxGroups.Load()))
		mu.Unlock()
		if err != nil {
			return err
		}
	}
	err := n.publish(ctx, msg)
	for _, g := range dropped {
		err = errors.Join(err, n.publish(ctx, &Message{Kind: KindLeaveUser, Hub: hubName, User: user, Group: g}))
	}
	return err
}

// RemoveUserFromGroup ends the user's persistent membership of group and takes
// its connections out of the group.
func (n *Node) RemoveUserFromGroup(ctx context.Context, hubName, user, group string) error {
	if err := n.forgetUserGroup(ctx, hubName, user, group); err != nil {
		return err
	}
	return n.publish(ctx, &Message{Kind: KindRemoveUser, Hub: hubName, User: user, Group: group})
}

// RemoveUserFromAllGroups ends every membership of user.
func (n *Node) RemoveUserFromAllGroups(ctx context.Context, hubName, user string) error {
	if err := n.forgetUserGroup(ctx, hubName, user, ""); err != nil {
		return err
	}
	return n.publish(ctx, &Message{Kind: KindRemoveUserAll, Hub: hubName, User: user})
}

// forgetUserGroup drops one persistent membership of user, or all with group "".
func (n *Node) forgetUserGroup(ctx context.Context, hubName, user, group string) error {
	if n.shared != nil {
		if err := n.ready(); err != nil {
			return err
		}
		return n.shared.RemoveUserGroup(ctx, hubName, user, group)
	}
	if group == "" {
		n.ug.RemoveAll(hubName, user)
	} else {
		n.ug.Remove(hubName, user, group)
	}
	return nil
}
