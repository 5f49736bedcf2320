// Package logkeys is the one vocabulary of log attribute keys used across Signalbox, so
// that a log search for connectionId finds every line about a connection. A test scans
// every non-test Go file of the module and fails on a key not listed here.
package logkeys

// Keys are the attribute keys, lowerCamelCase, as the SignalR wire names them where
// there is one (connectionId, userId, invocationId).
var Keys = []string{
	// Who and where.
	"connectionId", "userId", "hub", "group", "category", "event", "target", "invocationId", "sequenceId",
	"transport", "protocol", "node", "endpoint", "listen", "address", "remote", "path", "method",
	"status", "operation", "url", "kind", "key",
	// What happened.
	"error", "reason", "lastError", "panic", "stack", "timeout", "took", "elapsed", "suppressed",
	"count", "length", "online", "load", "partialBytes", "output", "command", "accessKeys",
	"upstreamRules", "connections", "clients", "scenario", "window", "token", "for",
	"attempt", "delay", "budget", "cause", "limit", "maxInFlight", "queueSize", "failed",
	"issuer", "resource", "objectId", "clientId", "systemAssignedObjectId", "systemAssignedClientId",
	"endpointType", "endpoints", "negotiate", "trigger", "response",
	"channel", "commands", "outage", "prefix", "queuedFrames", "changed", "needsRestart", "nodes", "redis",
	"openFiles", "rate", "workers",
}
