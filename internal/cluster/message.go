package cluster

import (
	"github.com/signalbox-io/signalbox/internal/hub"
)

// Kind says what a Message asks the receiving nodes to do.
type Kind uint8

// The kinds of messages. Values are part of the wire format between nodes of
// one version: append, never renumber.
const (
	KindSendAll Kind = iota + 1
	KindSendUser
	KindSendConnection
	KindSendGroup
	KindCloseConnection
	KindCloseAll
	KindCloseGroup
	KindCloseUser
	KindAddToGroup
	KindRemoveFromGroup
	KindRemoveFromAllGroups
	KindJoinUser      // a persistent user-group membership was added
	KindJoinUserNow   // the user's current connections join (ttl <= 0)
	KindLeaveUser     // a persistent membership ended (expired or capped)
	KindRemoveUser    // the user left the group however its connections joined
	KindRemoveUserAll // the user left every group
	KindAck           // the answer to a command sent to the node holding a connection
	kindEnd           // first unused value
)

var kindNames = [...]string{"", "sendAll", "sendUser", "sendConnection", "sendGroup", "closeConnection",
	"closeAll", "closeGroup", "closeUser", "addToGroup", "removeFromGroup", "removeFromAllGroups",
	"joinUser", "joinUserNow", "leaveUser", "removeUser", "removeUserAll", "ack"}

func (k Kind) String() string {
	if k > 0 && k < kindEnd {
		return kindNames[k]
	}
	return "unknown"
}

// Message is one operation for the nodes that hold the connections it concerns.
// Fields a kind does not use are empty.
type Message struct {
	Kind     Kind
	Hub      string // effective hub name
	User     string
	Group    string
	Conn     string
	Reason   string
	Excluded []string
	Payload  *hub.Payload // sends only
	Expires  int64        // joinUser: end of the membership, unix ms
	NoTTL    bool         // joinUser: the membership was added without ttl
	// Origin and Request identify a command that wants an Ack: the ack goes to
	// node Origin with the same Request; OK carries the command's boolean result.
	Origin  string
	Request uint64
	OK      bool
	// GroupLimit, on the Ack of an addToGroup, says the owning node refused the add
	// because the connection is already in this many groups, its limit (0: not
	// refused). The refusal travels back so that the REST caller gets it, not a 200
	// or a "no such connection".
	GroupLimit int
}
