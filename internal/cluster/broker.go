package cluster

import (
	"context"
	"sync"
)

// Handler receives the messages a Broker delivers to one node. It must not block
// for long: a broker may call it from its only receiving goroutine.
type Handler func(msg *Message)

// Broker carries Messages between the nodes of a cluster.
type Broker interface {
	// Publish hands msg to every node of the cluster, the publishing one included,
	// or only to the nodes named in to. A nil error means the broker accepted the
	// message for delivery; an error means it was not published.
	Publish(ctx context.Context, msg *Message, to ...string) error
	// Subscribe delivers to h the messages for node until unsubscribe is called.
	Subscribe(ctx context.Context, node string, h Handler) (unsubscribe func(), err error)
}

// MemoryBroker is the Broker of a single process: Publish calls the handlers of
// the subscribed nodes synchronously, so a message is delivered before Publish
// returns and nothing is copied or encoded.
type MemoryBroker struct {
	mu    sync.RWMutex
	nodes map[string]*memorySub
}

type memorySub struct{ h Handler }

// NewMemoryBroker returns a broker with no nodes.
func NewMemoryBroker() *MemoryBroker {
	return &MemoryBroker{nodes: make(map[string]*memorySub)}
}

// Publish implements Broker.
func (b *MemoryBroker) Publish(_ context.Context, msg *Message, to ...string) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if len(to) == 0 {
		for _, s := range b.nodes {
			s.h(msg)
		}
		return nil
	}
	for _, id := range to {
		if s := b.nodes[id]; s != nil {
			s.h(msg)
		}
	}
	return nil
}

// Subscribe implements Broker. A second subscription for the same node replaces
// the first.
func (b *MemoryBroker) Subscribe(_ context.Context, node string, h Handler) (func(), error) {
	s := &memorySub{h: h}
	b.mu.Lock()
	b.nodes[node] = s
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		if b.nodes[node] == s {
			delete(b.nodes, node)
		}
		b.mu.Unlock()
	}, nil
}
