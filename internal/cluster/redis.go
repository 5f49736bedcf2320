package cluster

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/redis/rueidis"

	"github.com/signalbox-io/signalbox/internal/hub"
)

// Defaults of RedisOptions.
const (
	DefaultPrefix    = "signalbox"
	DefaultDeadAfter = 15 * time.Second
	DefaultOpTimeout = 2 * time.Second
)

// ErrUnavailable is returned (wrapped) by cluster operations while the broker
// cannot guarantee them: Redis unreachable, or some node not subscribed.
var ErrUnavailable = errors.New("cluster: broker unavailable")

// RedisOptions configures a RedisBroker.
type RedisOptions struct {
	// URL is redis://, rediss:// (TLS) or unix://; add ?addr=HOST:PORT for more seed
	// addresses of a Redis Cluster (detected by itself) and ?master_set=NAME for
	// Sentinel (the URL's hosts are then the sentinels).
	URL    string
	Prefix string // of every key and channel; default DefaultPrefix
	NodeID string // required: this node's id, unique in the cluster
	// Address is the base URL (http://host:port) other nodes use to forward a
	// client's request to this node.
	Address string
	// DeadAfter is how long a node may miss heartbeats before the others forget its
	// connections; default DefaultDeadAfter.
	DeadAfter time.Duration
	// OpTimeout bounds one Redis operation; default DefaultOpTimeout.
	OpTimeout time.Duration
	// UserGroupLifetime and MaxUserGroupsNoTTL: as in hub.UserGroupOptions.
	UserGroupLifetime  time.Duration
	MaxUserGroupsNoTTL int
	Logger             *slog.Logger
	// OnOutage is called once per episode of Redis being unreachable, and
	// OnUnpublished once per message refused; nil ignores them.
	OnOutage, OnUnpublished func()
}

// RedisBroker is the Broker of a cluster: messages travel by Redis pub/sub (one
// publish per message, sharded channels under Redis Cluster) and the facts every
// node must agree on (which connections and users exist, group memberships,
// persistent user-group memberships, which nodes are alive) live in Redis keys.
//
// Each record names the instance that wrote it: the node id plus an epoch that
// changes whenever the node re-registers, so that cleaning up after a dead
// instance never deletes what a live one wrote.
type RedisBroker struct {
	opts RedisOptions
	log  *slog.Logger
	k    keys
	co   rueidis.ClientOption
	hb   time.Duration // heartbeat interval
	// Set once connected, before the first heartbeat; everything that uses them
	// runs after a heartbeat succeeded or holds mu.
	cmd    rueidis.Client // commands and publishes
	sub    rueidis.Client // subscriptions, so that a slow handler never delays a command
	shards int            // broadcast channels: 1, or 16 under Redis Cluster

	mu          sync.Mutex
	inst        string           // node id + " " + epoch
	live        map[string]int64 // instance -> last heartbeat (unix ms) as last read
	addrs       map[string]string
	graceUntil  time.Time // after an outage nobody's heartbeat is recent: nobody is swept
	settleUntil time.Time // after an outage the others resubscribe: refuse until then
	down        bool      // in an outage episode (logged once)
	closed      bool
	downSince   time.Time

	address     atomic.Pointer[string]
	subscribed  atomic.Int32 // channels confirmed subscribed
	lastBeat    atomic.Int64 // unix ms of the last successful heartbeat
	outages     atomic.Int64
	unpublished atomic.Int64

	w       *stateWriter
	stop    context.CancelFunc
	runCtx  context.Context // until Close
	work    []chan *Message // per fan-out worker; a hub's messages go to one
	done    sync.WaitGroup
	handler atomic.Pointer[Handler]
	reg     *hub.Registry // for re-registration; set by Start
}

// NewRedisBroker connects to Redis. It does not wait for Redis to answer: a node
// may start while Redis is down and joins once it is back.
func NewRedisBroker(opts RedisOptions) (*RedisBroker, error) {
	if opts.NodeID == "" || strings.ContainsAny(opts.NodeID, " \n") {
		return nil, fmt.Errorf("cluster: invalid node id %q", opts.NodeID)
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.DeadAfter <= 0 {
		opts.DeadAfter = DefaultDeadAfter
	}
	if opts.OpTimeout <= 0 {
		opts.OpTimeout = DefaultOpTimeout
	}
	if opts.UserGroupLifetime <= 0 {
		opts.UserGroupLifetime = hub.DefaultUserGroupLifetime
	}
	if opts.OnOutage == nil {
		opts.OnOutage = func() {}
	}
	if opts.OnUnpublished == nil {
		opts.OnUnpublished = func() {}
	}
	if opts.MaxUserGroupsNoTTL <= 0 {
		opts.MaxUserGroupsNoTTL = hub.DefaultMaxUserGroupsNoTTL
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	co, err := rueidis.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("cluster: redis url: %w", err)
	}
	co.DisableCache = true // no client-side caching: every read must see the others' writes
	co.Dialer.Timeout = opts.OpTimeout
	co.ConnWriteTimeout = opts.OpTimeout
	b := &RedisBroker{opts: opts, log: log, k: keys{opts.Prefix}, co: co, shards: 1,
		live: make(map[string]int64), addrs: make(map[string]string)}
	// A node may start before Redis does: when it cannot connect now, Start keeps
	// trying (the node is not ready meanwhile).
	_ = b.dial()
	b.hb = min(time.Second, opts.DeadAfter/4)
	b.SetAddress(opts.Address)
	b.inst = opts.NodeID + " " + newEpoch()
	b.w = newStateWriter(b)
	return b, nil
}

// dial connects both clients; false when Redis cannot be reached (yet).
func (b *RedisBroker) dial() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		return nil
	}
	if b.closed {
		return errors.New("cluster: broker closed")
	}
	cmd, err := rueidis.NewClient(b.co)
	if err != nil {
		return err
	}
	sub, err := rueidis.NewClient(b.co)
	if err != nil {
		cmd.Close()
		return err
	}
	b.cmd, b.sub = cmd, sub
	if cmd.Mode() == rueidis.ClientModeCluster {
		b.shards = 16 // sharded pub/sub: more shards, more fan-out capacity
	}
	return nil
}

// connect dials until it succeeds or ctx ends.
func (b *RedisBroker) connect(ctx context.Context) bool {
	for {
		err := b.dial()
		if err == nil {
			return true
		}
		_ = b.failed(err)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// SetAddress changes the address advertised with the next heartbeat (a node
// learns its port once it listens).
func (b *RedisBroker) SetAddress(addr string) { b.address.Store(&addr) }

func newEpoch() string {
	var e [6]byte
	_, _ = rand.Read(e[:])
	return base64.RawURLEncoding.EncodeToString(e[:])
}

func nodeOf(inst string) string {
	if i := strings.IndexByte(inst, ' '); i >= 0 {
		return inst[:i]
	}
	return inst
}

func (b *RedisBroker) instance() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.inst
}

// opCtx bounds one Redis operation.
func (b *RedisBroker) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.opts.OpTimeout)
}

// Subscribe implements Broker: node must be this broker's node. Messages arrive
// on the subscription's goroutine, in order per channel.
func (b *RedisBroker) Subscribe(_ context.Context, node string, h Handler) (func(), error) {
	if node != b.opts.NodeID {
		return nil, fmt.Errorf("cluster: redis broker of node %s cannot subscribe node %s", b.opts.NodeID, node)
	}
	b.handler.Store(&h)
	return func() { b.handler.Store(nil) }, nil
}

func (b *RedisBroker) channels() []string {
	chs := make([]string, 0, b.shards+1)
	for i := range b.shards {
		chs = append(chs, b.k.broadcast(i, b.shards))
	}
	return append(chs, b.k.node(b.opts.NodeID))
}

func (b *RedisBroker) subscribeCmd(c rueidis.Client, chs ...string) rueidis.Completed {
	if b.shards > 1 {
		return c.B().Ssubscribe().Channel(chs...).Build()
	}
	return c.B().Subscribe().Channel(chs...).Build()
}

// receive keeps one subscription alive: Receive returns when the connection
// breaks, and is called again at once, then every 250 ms.
func (b *RedisBroker) receive(ctx context.Context, ch string) {
	defer b.done.Done()
	var on atomic.Bool
	hooked := rueidis.WithOnSubscriptionHook(ctx, func(s rueidis.PubSubSubscription) {
		switch s.Kind {
		case "subscribe", "ssubscribe":
			if on.CompareAndSwap(false, true) {
				b.subscribed.Add(1)
			}
		case "unsubscribe", "sunsubscribe":
			if on.CompareAndSwap(true, false) {
				b.subscribed.Add(-1)
			}
		}
	})
	for ctx.Err() == nil {
		err := b.sub.Receive(hooked, b.subscribeCmd(b.sub, ch), b.onMessage)
		if on.CompareAndSwap(true, false) {
			b.subscribed.Add(-1)
		}
		if ctx.Err() != nil {
			return
		}
		b.failed(fmt.Errorf("subscription %s: %w", ch, err))
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// onMessage hands a received message to the worker of its hub: the fan-out to
// this node's connections runs on several cores (the subscription delivers every
// message on one goroutine), and the messages of one hub stay in order.
func (b *RedisBroker) onMessage(m rueidis.PubSubMessage) {
	// The frames of the message are shared read-only by every recipient, so they
	// may alias the received string instead of being copied.
	msg, err := decodeMessage(unsafe.Slice(unsafe.StringData(m.Message), len(m.Message)))
	if err != nil {
		b.log.Warn("cluster: dropping malformed message", slog.String("channel", m.Channel), slog.Any("error", err))
		return
	}
	select {
	case b.work[hubHash(msg.Hub)%uint32(len(b.work))] <- msg:
	case <-b.runCtx.Done():
	}
}

// deliver is one fan-out worker.
func (b *RedisBroker) deliver(ctx context.Context, work <-chan *Message) {
	defer b.done.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case msg := <-work:
			if hp := b.handler.Load(); hp != nil {
				(*hp)(msg)
			}
		}
	}
}

// Publish implements Broker. It fails, and the message must be taken as not sent,
// when Redis does not take it or when fewer nodes than are alive received it
// (some node is not subscribed: its clients would miss it).
func (b *RedisBroker) Publish(ctx context.Context, msg *Message, to ...string) error {
	if err := b.Ready(); err != nil {
		return err
	}
	data, err := encodeMessage(msg)
	if err != nil {
		return err
	}
	ctx, cancel := b.opCtx(ctx)
	defer cancel()
	if len(to) == 0 {
		ch := b.k.broadcast(b.shardOf(msg.Hub), b.shards)
		n, err := b.publish(ctx, ch, data).AsInt64()
		if err != nil {
			b.refused()
			return b.failed(err)
		}
		if want := b.freshNodes(); int(n) < want {
			b.refused()
			return fmt.Errorf("%w: %d of %d live nodes subscribed", ErrUnavailable, n, want)
		}
		return nil
	}
	cmds := make(rueidis.Commands, 0, len(to))
	for _, node := range to {
		cmds = append(cmds, b.publishCmd(b.k.node(node), data))
	}
	for i, r := range b.cmd.DoMulti(ctx, cmds...) {
		n, err := r.AsInt64()
		if err != nil {
			b.refused()
			return b.failed(err)
		}
		if n == 0 && b.isFresh(to[i]) {
			b.refused()
			return fmt.Errorf("%w: node %s is not subscribed", ErrUnavailable, to[i])
		}
	}
	return nil
}

func (b *RedisBroker) publishCmd(ch string, data []byte) rueidis.Completed {
	if b.shards > 1 {
		return b.cmd.B().Spublish().Channel(ch).Message(rueidis.BinaryString(data)).Build()
	}
	return b.cmd.B().Publish().Channel(ch).Message(rueidis.BinaryString(data)).Build()
}

func (b *RedisBroker) publish(ctx context.Context, ch string, data []byte) rueidis.RedisResult {
	return b.cmd.Do(ctx, b.publishCmd(ch, data))
}

// shardOf keeps the messages of one hub on one channel, in order.
func (b *RedisBroker) shardOf(hubName string) int {
	if b.shards <= 1 {
		return 0
	}
	return int(hubHash(hubName) % uint32(b.shards))
}

func hubHash(hubName string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(hubName))
	return h.Sum32()
}

// freshNodes counts the nodes that heartbeat recently: each is subscribed (a node
// heartbeats only while subscribed), so each must receive a broadcast.
func (b *RedisBroker) freshNodes() int {
	cut := time.Now().Add(-3 * b.hb).UnixMilli()
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, at := range b.live {
		if at >= cut {
			n++
		}
	}
	return n
}

func (b *RedisBroker) isFresh(node string) bool {
	cut := time.Now().Add(-3 * b.hb).UnixMilli()
	b.mu.Lock()
	defer b.mu.Unlock()
	for inst, at := range b.live {
		if nodeOf(inst) == node && at >= cut {
			return true
		}
	}
	return false
}

// liveOf tells which of insts are alive. The view of the last heartbeat answers for
// the instances it knows; the others (a node that joined since) are looked up.
func (b *RedisBroker) liveOf(ctx context.Context, insts ...string) (map[string]bool, error) {
	out := make(map[string]bool, len(insts))
	var unknown []string
	b.mu.Lock()
	grace := time.Now().Before(b.graceUntil)
	for _, in := range insts {
		if _, seen := out[in]; seen {
			continue
		}
		_, ok := b.live[in]
		out[in] = ok
		if !ok {
			unknown = append(unknown, in)
		}
	}
	b.mu.Unlock()
	if len(unknown) == 0 {
		return out, nil
	}
	vals, err := b.cmd.Do(ctx, b.cmd.B().Zmscore().Key(b.k.nodes()).Member(unknown...).Build()).ToArray()
	if err != nil {
		return nil, b.failed(err)
	}
	cut := time.Now().Add(-b.opts.DeadAfter).UnixMilli()
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, v := range vals {
		at, err := v.AsFloat64()
		if err != nil || (int64(at) < cut && !grace) {
			continue // not registered, or dead
		}
		b.live[unknown[i]] = int64(at)
		out[unknown[i]] = true
	}
	return out, nil
}

// alive tells whether one instance is alive.
func (b *RedisBroker) alive(ctx context.Context, inst string) (bool, error) {
	m, err := b.liveOf(ctx, inst)
	return m[inst], err
}

// keepLive drops the entries of m (connection id -> owner value) whose owner is dead.
func (b *RedisBroker) keepLive(ctx context.Context, m map[string]string) error {
	insts := make([]string, 0, len(m))
	for _, v := range m {
		inst, _ := parseOwner(v)
		insts = append(insts, inst)
	}
	live, err := b.liveOf(ctx, insts...)
	if err != nil {
		return err
	}
	for id, v := range m {
		if inst, _ := parseOwner(v); !live[inst] {
			delete(m, id)
		}
	}
	return nil
}

// Address is the advertised address of a live node.
// A node that joined, or learnt its address, since the last heartbeat is looked up.
func (b *RedisBroker) Address(ctx context.Context, node string) (string, bool) {
	b.mu.Lock()
	a := b.addrs[node]
	b.mu.Unlock()
	if a != "" || b.Ready() != nil {
		return a, a != ""
	}
	scores, addrs, err := b.nodesAndAddrs(ctx)
	if err != nil {
		return "", false
	}
	cut := time.Now().Add(-b.opts.DeadAfter).UnixMilli()
	best := int64(-1)
	for _, z := range scores {
		if at := int64(z.Score); nodeOf(z.Member) == node && at >= cut && at > best && addrs[z.Member] != "" {
			best, a = at, addrs[z.Member]
		}
	}
	return a, a != ""
}

// Ready is nil when the node can carry out cluster operations: Redis answers, its
// subscriptions are up and it is not settling after an outage.
func (b *RedisBroker) Ready() error {
	if b.lastBeat.Load() == 0 {
		return fmt.Errorf("%w: not connected", ErrUnavailable)
	}
	if int(b.subscribed.Load()) < b.shards+1 {
		return fmt.Errorf("%w: not subscribed", ErrUnavailable)
	}
	if time.Since(time.UnixMilli(b.lastBeat.Load())) > 3*b.hb {
		return fmt.Errorf("%w: no heartbeat", ErrUnavailable)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down {
		return fmt.Errorf("%w: redis unreachable", ErrUnavailable)
	}
	if time.Now().Before(b.settleUntil) {
		return fmt.Errorf("%w: settling after an outage", ErrUnavailable)
	}
	return nil
}

// RedisStats are counters of a RedisBroker.
type RedisStats struct {
	Outages     int64 // episodes of Redis being unreachable
	Unpublished int64 // publishes refused (answered 503)
	Resyncs     int64 // re-registrations of this node's records
	LiveNodes   int
}

// Stats returns the broker's counters.
func (b *RedisBroker) Stats() RedisStats {
	b.mu.Lock()
	n := len(b.live)
	b.mu.Unlock()
	return RedisStats{Outages: b.outages.Load(), Unpublished: b.unpublished.Load(), Resyncs: b.w.resyncs.Load(), LiveNodes: n}
}

func (b *RedisBroker) refused() {
	b.unpublished.Add(1)
	b.opts.OnUnpublished()
}

// failed records a Redis failure: the first of an episode is logged and counted.
// It returns err wrapped as ErrUnavailable.
func (b *RedisBroker) failed(err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	b.mu.Lock()
	first := !b.down
	if first {
		b.down, b.downSince = true, time.Now()
	}
	b.mu.Unlock()
	if first {
		b.outages.Add(1)
		b.opts.OnOutage()
		b.log.Warn("cluster: redis unreachable; cluster operations answer 503 until it is back", slog.Any("error", err))
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// recovered ends an outage episode.
func (b *RedisBroker) recovered() {
	b.mu.Lock()
	was, since := b.down, b.downSince
	if was {
		b.down = false
		now := time.Now()
		b.settleUntil = now.Add(max(2*b.hb, 1500*time.Millisecond))
		b.graceUntil = now.Add(b.opts.DeadAfter)
	}
	b.mu.Unlock()
	if was {
		b.log.Info("cluster: redis is back", slog.Duration("outage", time.Since(since).Round(time.Millisecond)))
		b.w.markDirty() // whatever was not written meanwhile is written again
	}
}

// Start begins the subscriptions, heartbeats and state writes; reg is the node's
// registry, re-registered whenever Redis lost its records. It returns at once.
func (b *RedisBroker) Start(reg *hub.Registry) {
	ctx, cancel := context.WithCancel(context.Background())
	b.stop, b.runCtx = cancel, ctx
	b.reg = reg
	b.work = make([]chan *Message, min(runtime.GOMAXPROCS(0), 8))
	for i := range b.work {
		b.work[i] = make(chan *Message, 256)
		b.done.Add(1)
		go b.deliver(ctx, b.work[i])
	}
	b.done.Add(1)
	go func() {
		defer b.done.Done()
		if !b.connect(ctx) {
			return
		}
		for _, ch := range b.channels() {
			b.done.Add(1)
			go b.receive(ctx, ch)
		}
		b.done.Add(2)
		go b.heartbeats(ctx)
		go b.w.run(ctx)
	}()
}

// Close stops the broker and removes this node from the cluster's live nodes so
// that the others forget its connections at once.
func (b *RedisBroker) Close() error {
	if b.stop != nil {
		b.stop()
		b.done.Wait()
	}
	b.mu.Lock()
	cmd, sub, closed := b.cmd, b.sub, b.closed
	b.closed = true
	b.mu.Unlock()
	b.lastBeat.Store(0) // not ready any more
	if cmd == nil || closed {
		return nil
	}
	ctx, cancel := b.opCtx(context.Background())
	defer cancel()
	inst := b.instance()
	err := cmd.Do(ctx, cmd.B().Zrem().Key(b.k.nodes()).Member(inst).Build()).Error()
	if err == nil {
		b.cleanupWith(ctx, cmd, inst)
	}
	sub.Close()
	cmd.Close()
	return err
}

func (b *RedisBroker) heartbeats(ctx context.Context) {
	defer b.done.Done()
	t := time.NewTicker(b.hb)
	defer t.Stop()
	for {
		b.beat(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// beat registers this instance as alive (only while subscribed: a node that
// cannot receive must not be counted on), reads the live nodes, and forgets the
// dead ones.
func (b *RedisBroker) beat(ctx context.Context) {
	ctx, cancel := b.opCtx(ctx)
	defer cancel()
	if int(b.subscribed.Load()) < b.shards+1 {
		// Still probe Redis, so that an outage ends (and is logged) on time.
		if err := b.cmd.Do(ctx, b.cmd.B().Ping().Build()).Error(); err != nil {
			_ = b.failed(err)
		}
		return
	}
	inst := b.instance()
	now := time.Now()
	ms := now.UnixMilli()
	c := b.cmd
	res := c.DoMulti(ctx,
		c.B().Zadd().Key(b.k.nodes()).ScoreMember().ScoreMember(float64(ms), inst).Build(),
		c.B().Hset().Key(b.k.addrs()).FieldValue().FieldValue(inst, *b.address.Load()).Build(),
		c.B().Zrange().Key(b.k.nodes()).Min("-inf").Max("+inf").Byscore().Withscores().Build(),
		c.B().Hgetall().Key(b.k.addrs()).Build(),
	)
	for _, r := range res {
		if err := r.Error(); err != nil {
			_ = b.failed(err)
			return
		}
	}
	b.recovered()
	added, _ := res[0].AsInt64()
	if added == 1 && b.lastBeat.Load() != 0 {
		// Our entry was gone: Redis lost its data, or others took us for dead and
		// are deleting our records. Re-register everything under a new epoch.
		b.log.Warn("cluster: this node's records were lost; registering them again")
		b.w.markDirty()
	}
	b.lastBeat.Store(ms)
	scores, _ := res[2].AsZScores()
	addrs, _ := res[3].AsStrMap()
	cut := now.Add(-b.opts.DeadAfter).UnixMilli()
	var dead []string
	b.mu.Lock()
	grace := now.Before(b.graceUntil)
	clear(b.live)
	clear(b.addrs)
	best := make(map[string]int64)
	for _, z := range scores {
		at := int64(z.Score)
		if at < cut && !grace {
			dead = append(dead, z.Member)
			continue
		}
		b.live[z.Member] = at
		node := nodeOf(z.Member)
		if at >= best[node] {
			best[node] = at
			b.addrs[node] = addrs[z.Member]
		}
	}
	b.mu.Unlock()
	for _, inst := range dead {
		// ZREM claims the cleanup: only the node whose ZREM removed the entry does it.
		n, err := c.Do(ctx, c.B().Zrem().Key(b.k.nodes()).Member(inst).Build()).AsInt64()
		if err != nil || n != 1 {
			continue
		}
		b.log.Info("cluster: node is dead; forgetting its connections", slog.String("node", nodeOf(inst)))
		b.cleanup(ctx, inst)
	}
}

// Scripts that delete a record only if the given instance still owns it: the value
// is the instance, or the instance followed by "\n".
var (
	delIfOwner = rueidis.NewLuaScript(`
local v = redis.call('GET', KEYS[1])
if v and (v == ARGV[1] or string.sub(v, 1, #ARGV[1] + 1) == ARGV[1] .. '\n') then return redis.call('DEL', KEYS[1]) end
return 0`)
	hdelIfOwner = rueidis.NewLuaScript(`
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v and (v == ARGV[2] or string.sub(v, 1, #ARGV[2] + 1) == ARGV[2] .. '\n') then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0`)
)

// cleanup deletes the records of a dead instance. They are already invisible
// (readers skip dead instances); this only frees the memory.
func (b *RedisBroker) cleanup(ctx context.Context, inst string) { b.cleanupWith(ctx, b.cmd, inst) }

func (b *RedisBroker) cleanupWith(ctx context.Context, c rueidis.Client, inst string) {
	refs := b.k.refs(inst)
	_ = c.Do(ctx, c.B().Hdel().Key(b.k.addrs()).Field(inst).Build()).Error()
	var cursor uint64
	for {
		e, err := c.Do(ctx, c.B().Sscan().Key(refs).Cursor(cursor).Count(500).Build()).AsScanEntry()
		if err != nil {
			return
		}
		for _, ref := range e.Elements {
			if len(ref) < 2 {
				continue
			}
			if ref[0] == 's' {
				delIfOwner.Exec(ctx, c, []string{ref[1:]}, []string{inst})
			} else if k, f, ok := strings.Cut(ref[1:], "\x00"); ok {
				hdelIfOwner.Exec(ctx, c, []string{k}, []string{f, inst})
			}
		}
		if cursor = e.Cursor; cursor == 0 {
			break
		}
	}
	_ = c.Do(ctx, c.B().Del().Key(refs).Build()).Error()
}

// parseOwner splits a record value "inst\nuser" (or "inst").
func parseOwner(v string) (inst, user string) {
	inst, user, _ = strings.Cut(v, "\n")
	return inst, user
}

// ConnectionOwner returns the node holding a live connection.
func (b *RedisBroker) ConnectionOwner(ctx context.Context, hubName, id string) (node string, ok bool, err error) {
	ctx, cancel := b.opCtx(ctx)
	defer cancel()
	v, err := b.cmd.Do(ctx, b.cmd.B().Get().Key(b.k.conn(hubName, id)).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, b.failed(err)
	}
	inst, _ := parseOwner(v)
	if ok, err := b.alive(ctx, inst); !ok || err != nil {
		return "", false, err
	}
	return nodeOf(inst), true, nil
}

// liveConns reads a hash of connection id -> owner value and keeps the live ones.
func (b *RedisBroker) liveConns(ctx context.Context, key string) (map[string]string, error) {
	m, err := b.cmd.Do(ctx, b.cmd.B().Hgetall().Key(key).Build()).AsStrMap()
	if err != nil {
		return nil, b.failed(err)
	}
	if err := b.keepLive(ctx, m); err != nil {
		return nil, err
	}
	return m, nil
}

// UserNodes returns the nodes holding a live connection of user.
func (b *RedisBroker) UserNodes(ctx context.Context, hubName, user string) ([]string, error) {
	ctx, cancel := b.opCtx(ctx)
	defer cancel()
	m, err := b.liveConns(ctx, b.k.user(hubName, user))
	if err != nil {
		return nil, err
	}
	var nodes []string
	for _, v := range m {
		inst, _ := parseOwner(v)
		if n := nodeOf(inst); !contains(nodes, n) {
			nodes = append(nodes, n)
		}
	}
	return nodes, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// GroupExists reports whether a live connection is in group; it scans the group
// only until it finds one.
func (b *RedisBroker) GroupExists(ctx context.Context, hubName, group string) (bool, error) {
	ctx, cancel := b.opCtx(ctx)
	defer cancel()
	key := b.k.group(hubName, group)
	var cursor uint64
	for {
		e, err := b.cmd.Do(ctx, b.cmd.B().Hscan().Key(key).Cursor(cursor).Count(200).Build()).AsScanEntry()
		if err != nil {
			return false, b.failed(err)
		}
		page := make(map[string]string, len(e.Elements)/2)
		for i := 1; i < len(e.Elements); i += 2 {
			page[e.Elements[i-1]] = e.Elements[i]
		}
		if err := b.keepLive(ctx, page); err != nil {
			return false, err
		}
		if len(page) > 0 {
			return true, nil
		}
		if cursor = e.Cursor; cursor == 0 {
			return false, nil
		}
	}
}

// GroupMembers lists the live connections of group, sorted by id.
func (b *RedisBroker) GroupMembers(ctx context.Context, hubName, group string) ([]hub.ConnectionInfo, error) {
	ctx, cancel := b.opCtx(ctx)
	defer cancel()
	m, err := b.liveConns(ctx, b.k.group(hubName, group))
	if err != nil {
		return nil, err
	}
	out := make([]hub.ConnectionInfo, 0, len(m))
	for id, v := range m {
		_, user := parseOwner(v)
		out = append(out, hub.ConnectionInfo{ConnectionID: id, UserID: user})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ConnectionID < out[j].ConnectionID })
	return out, nil
}

// UserConnectionInGroup reports whether a live connection of user is in group.
func (b *RedisBroker) UserConnectionInGroup(ctx context.Context, hubName, user, group string) (bool, error) {
	ctx, cancel := b.opCtx(ctx)
	defer cancel()
	conns, err := b.liveConns(ctx, b.k.user(hubName, user))
	if err != nil || len(conns) == 0 {
		return false, err
	}
	ids := make([]string, 0, len(conns))
	for id := range conns {
		ids = append(ids, id)
	}
	vals, err := b.cmd.Do(ctx, b.cmd.B().Hmget().Key(b.k.group(hubName, group)).Field(ids...).Build()).ToArray()
	if err != nil {
		return false, b.failed(err)
	}
	members := make(map[string]string, len(vals))
	for i, v := range vals {
		if s, err := v.ToString(); err == nil {
			members[ids[i]] = s
		}
	}
	if err := b.keepLive(ctx, members); err != nil {
		return false, err
	}
	return len(members) > 0, nil
}

// userGroupAdd writes one persistent membership, drops expired ones and those
// beyond the cap of memberships without ttl (least recently updated first), and
// returns "0" followed by the dropped groups. Values are "<expires ms> <no-ttl
// 0|1> <updated ns>"; the key expires with its last membership. When ARGV[7] > 0
// and the user would then have more live memberships than it, nothing is written
// and the answer is "1" (UserGroups.AddWithin counts the same way, on one node).
var userGroupAdd = rueidis.NewLuaScript(`
local now, cap, limit = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
if limit > 0 then
  local cur = redis.call('HGETALL', KEYS[1])
  local live, livenottl = 0, 0
  for i = 1, #cur, 2 do
    local e, n = string.match(cur[i + 1], '^(%d+) (%d) %d+$')
    e = tonumber(e)
    if cur[i] ~= ARGV[1] and e ~= nil and e > now then
      live = live + 1
      if n == '1' then livenottl = livenottl + 1 end
    end
  end
  local after = live + 1
  if ARGV[3] == '1' and livenottl + 1 > cap then after = after - (livenottl + 1 - cap) end
  if after > limit then return {'1'} end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[4])
local all = redis.call('HGETALL', KEYS[1])
local nottl, maxexp, dropped = {}, 0, {'0'}
for i = 1, #all, 2 do
  local g, v = all[i], all[i + 1]
  local e, n, u = string.match(v, '^(%d+) (%d) (%d+)$')
  e = tonumber(e)
  if e == nil or e <= now then
    redis.call('HDEL', KEYS[1], g)
  else
    if e > maxexp then maxexp = e end
    if n == '1' then table.insert(nottl, {g, u}) end
  end
end
if #nottl > cap then
  table.sort(nottl, function(a, b)
    if #a[2] ~= #b[2] then return #a[2] < #b[2] end
    return a[2] < b[2]
  end)
  for i = 1, #nottl - cap do
    redis.call('HDEL', KEYS[1], nottl[i][1])
    table.insert(dropped, nottl[i][1])
  end
end
if maxexp > 0 then redis.call('PEXPIREAT', KEYS[1], maxexp) end
return dropped`)

// RedisBroker is the shared state of a cluster node: a node type-asserts it, so a
// method set drifting from sharedState would silently make a single node.
var _ sharedState = (*RedisBroker)(nil)

// UserGroupRecord is one persistent membership as stored in Redis.
type UserGroupRecord struct {
	Expires time.Time
	NoTTL   bool
}

// AddUserGroup records that user is in group until now+ttl (ttl nil: for the
// configured lifetime, under the cap) and returns the record and the groups that
// fell off the cap.
func (b *RedisBroker) AddUserGroup(ctx context.Context, hubName, user, group string, ttl *time.Duration, limit int) (UserGroupRecord, []string, error) {
	ctx, cancel := b.opCtx(ctx)
	defer cancel()
	now := time.Now()
	rec := UserGroupRecord{NoTTL: ttl == nil}
	if ttl == nil {
		rec.Expires = now.Add(b.opts.UserGroupLifetime)
	} else {
		rec.Expires = now.Add(*ttl)
	}
	noTTL := "0"
	if rec.NoTTL {
		noTTL = "1"
	}
	dropped, err := userGroupAdd.Exec(ctx, b.cmd, []string{b.k.userGroups(hubName, user)}, []string{
		group, strconv.FormatInt(rec.Expires.UnixMilli(), 10), noTTL, strconv.FormatInt(now.UnixNano(), 10),
		strconv.FormatInt(now.UnixMilli(), 10), strconv.Itoa(b.opts.MaxUserGroupsNoTTL), strconv.Itoa(max(limit, 0)),
	}).AsStrSlice()
	if err != nil {
		return rec, nil, b.failed(err)
	}
	if len(dropped) == 0 {
		return rec, nil, fmt.Errorf("cluster: add user group: empty script answer")
	}
	if dropped[0] == "1" {
		return rec, nil, &hub.GroupLimitError{Limit: limit, User: true}
	}
	return rec, dropped[1:], nil
}

// UserGroups returns the live persistent memberships of user.
func (b *RedisBroker) UserGroups(ctx context.Context, hubName, user string) (map[string]UserGroupRecord, error) {
	if err := b.Ready(); err != nil {
		return nil, err
	}
	ctx, cancel := b.opCtx(ctx)
	defer cancel()
	m, err := b.cmd.Do(ctx, b.cmd.B().Hgetall().Key(b.k.userGroups(hubName, user)).Build()).AsStrMap()
	if err != nil {
		return nil, b.failed(err)
	}
	now := time.Now()
	out := make(map[string]UserGroupRecord, len(m))
	for g, v := range m {
		if rec, ok := parseUserGroup(v); ok && now.Before(rec.Expires) {
			out[g] = rec
		}
	}
	return out, nil
}

func parseUserGroup(v string) (UserGroupRecord, bool) {
	f := strings.Fields(v)
	if len(f) != 3 {
		return UserGroupRecord{}, false
	}
	ms, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return UserGroupRecord{}, false
	}
	return UserGroupRecord{Expires: time.UnixMilli(ms), NoTTL: f[1] == "1"}, true
}

// HasUserGroup reports whether user has a live persistent membership of group.
func (b *RedisBroker) HasUserGroup(ctx context.Context, hubName, user, group string) (bool, error) {
	ctx, cancel := b.opCtx(ctx)
	defer cancel()
	v, err := b.cmd.Do(ctx, b.cmd.B().Hget().Key(b.k.userGroups(hubName, user)).Field(group).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return false, nil
	}
	if err != nil {
		return false, b.failed(err)
	}
	rec, ok := parseUserGroup(v)
	return ok && time.Now().Before(rec.Expires), nil
}

// RemoveUserGroup forgets one persistent membership; group "" forgets them all.
func (b *RedisBroker) RemoveUserGroup(ctx context.Context, hubName, user, group string) error {
	ctx, cancel := b.opCtx(ctx)
	defer cancel()
	key := b.k.userGroups(hubName, user)
	cmd := b.cmd.B().Del().Key(key).Build()
	if group != "" {
		cmd = b.cmd.B().Hdel().Key(key).Field(group).Build()
	}
	if err := b.cmd.Do(ctx, cmd).Error(); err != nil {
		return b.failed(err)
	}
	return nil
}

// The registry's changes (hub.Observer), mirrored into Redis by the state writer.

// ConnectionAdded implements hub.Observer.
func (b *RedisBroker) ConnectionAdded(hubName, id, user string) {
	b.w.enqueue(change{op: opConnAdded, hub: hubName, id: id, user: user})
}

// ConnectionRemoved implements hub.Observer.
func (b *RedisBroker) ConnectionRemoved(hubName, id, user string) {
	b.w.enqueue(change{op: opConnRemoved, hub: hubName, id: id, user: user})
}

// GroupJoined implements hub.Observer.
func (b *RedisBroker) GroupJoined(hubName, group, id, user string) {
	b.w.enqueue(change{op: opJoined, hub: hubName, id: id, user: user, group: group})
}

// GroupLeft implements hub.Observer.
func (b *RedisBroker) GroupLeft(hubName, group, id, user string) {
	b.w.enqueue(change{op: opLeft, hub: hubName, id: id, user: user, group: group})
}

// Flush waits until the changes observed so far are in Redis.
func (b *RedisBroker) Flush(ctx context.Context) error { return b.w.flush(ctx) }
