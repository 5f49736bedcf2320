// Package hub is the in-memory connection registry of the service: per hub it
// tracks connections, users, groups and persistent user-group memberships, and
// fans messages out to them.
//
// Hub names are case-insensitive (keyed lower-case); group names, user ids and
// connection ids are case-sensitive.
//
// Fan-out never holds a lock while calling Client.Send: recipients are copied
// into a pooled slice under a read lock, the lock is released, then each
// recipient gets the frame of its protocol. A Payload encodes its message at
// most once per protocol, however many connections receive it.
package hub
