// Package cluster makes one or several Signalbox processes behave as one service.
//
// The layers, top to bottom (the split of centrifugal/centrifuge's Node, Hub and
// Broker):
//
//   - Node is what the REST API talks to (it implements restapi.Hubs). It turns
//     each operation into a Message, hands it to the Broker, and applies the
//     messages the Broker delivers to the local hub.
//   - hub.Registry (package internal/hub) is the local hub: the connections this
//     process holds, and nothing else. hub.UserGroups holds the persistent
//     user-group memberships, which are cluster state, apart from it.
//   - Broker carries messages between nodes. MemoryBroker serves one process;
//     the Redis broker serves several.
//
// A node delivers only to its own connections; a message crosses the broker once,
// whatever the number of recipients.
package cluster
