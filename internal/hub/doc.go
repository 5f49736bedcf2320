// Package hub is the in-memory connection index of one node: per hub it tracks
// connections, users and groups, and fans messages out to them. Persistent
// user-group memberships (a user in a group for a while, connected or not) are
// kept apart in UserGroups: they are cluster state, the index is what this process
// holds. An Observer hears every change of the index, so that a cluster node can
// mirror it.
//
// Hub names are case-insensitive (keyed lower-case); group names, user ids and
// connection ids are case-sensitive.
//
// Fan-out never holds a lock while calling Client.Send: recipients are copied
// into a pooled slice under a read lock, the lock is released, then each
// recipient gets the frame of its protocol. A Payload encodes its message at
// most once per protocol, however many connections receive it. A payload with a
// Background (REST broadcasts) is queued to every recipient before the fan-out
// returns and written afterwards by one sweep at a time, so that the frames of
// broadcasts that follow one another under load leave in one write per connection.
package hub
