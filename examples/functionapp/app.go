package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/signalbox-io/signalbox/functions"
	"github.com/signalbox-io/signalbox/protocol"
)

// hubName is the hub this app serves.
const hubName = "chat"

// Chat is a class-based hub: each exported method is a hub method clients can invoke. It
// embeds *functions.Hub (set by Service.RegisterHub), whose Clients and Groups are bound to
// the hub, so no method names it.
type Chat struct {
	*functions.Hub
	log *slog.Logger
}

// OnConnected logs the connection. Returning an error answers the service with 403, which
// Azure SignalR Service ignores (connected is not blocking there) and Signalbox started with
// --upstream-reject-connections answers by closing the connection.
func (c *Chat) OnConnected(ic *functions.InvocationContext) error {
	c.log.Info("connected", "hub", ic.Hub, "connectionId", ic.ConnectionID, "userId", ic.UserID)
	return nil
}

// OnDisconnected logs the disconnection and its reason.
func (c *Chat) OnDisconnected(ic *functions.InvocationContext) {
	c.log.Info("disconnected", "hub", ic.Hub, "connectionId", ic.ConnectionID, "userId", ic.UserID, "error", ic.Error)
}

// Broadcast sends newMessage(text) to every client of the hub.
func (c *Chat) Broadcast(ctx context.Context, text string) error {
	return c.Clients.All().Send(ctx, "newMessage", text)
}

// Echo returns its argument unchanged (any JSON or MessagePack value).
func (c *Chat) Echo(x protocol.Value) protocol.Value { return x }

// JoinGroup adds the calling connection to a group.
func (c *Chat) JoinGroup(ctx context.Context, ic *functions.InvocationContext, name string) error {
	return c.Groups.Add(ctx, ic.ConnectionID, name)
}

// appOptions are the knobs of newApp that come from the environment.
type appOptions struct {
	allowedOrigins []string
	triggerCode    string
}

// newApp wires the negotiate function and the trigger for svc.
func newApp(svc *functions.Service, log *slog.Logger, o appOptions) (http.Handler, error) {
	trigger, err := svc.NewTrigger(&functions.TriggerOptions{Code: o.triggerCode, Logger: log})
	if err != nil {
		return nil, err
	}
	chat := &Chat{log: log}
	if err := svc.RegisterHub(trigger, chat, &functions.HubOptions{Name: hubName}); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/api/negotiate", chat.NegotiateHandler(&functions.NegotiateOptions{
		AllowedOrigins: o.allowedOrigins, Logger: log,
	}))
	mux.Handle(functions.TriggerPath, trigger)
	return mux, nil
}
