// Package demo is the function app `signalbox demo` runs in-process: a class-based hub
// "chat" made with package functions (negotiate through the signalRConnectionInfo
// binding, a trigger for broadcast, joinGroup and sendToGroup, messages sent through the
// output binding), plus the chat page. The service calls it as its upstream over HTTP,
// exactly as it would call a function app elsewhere.
package demo

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/signalbox-io/signalbox/connection"
	"github.com/signalbox-io/signalbox/functions"
	"github.com/signalbox-io/signalbox/internal/webui"
)

// Prefix is where the demo is mounted on the service.
const Prefix = "/_/demo/"

// TriggerPath is the upstream URL path of the demo's trigger.
const TriggerPath = Prefix + "runtime/webhooks/signalr"

// Hub is the demo's hub name.
const Hub = "chat"

// Chat is the demo hub. Messages carry the sender's user id, which negotiate took
// from the x-ms-client-principal-id header.
type Chat struct {
	*functions.Hub
	log *slog.Logger
}

// OnConnected logs the connection.
func (c *Chat) OnConnected(ic *functions.InvocationContext) error {
	c.log.Info("demo: connected", "connectionId", ic.ConnectionID, "userId", ic.UserID)
	return nil
}

// OnDisconnected logs the disconnection.
func (c *Chat) OnDisconnected(ic *functions.InvocationContext) {
	c.log.Info("demo: disconnected", "connectionId", ic.ConnectionID, "userId", ic.UserID)
}

// Broadcast sends newMessage(user, text) to everyone.
func (c *Chat) Broadcast(ctx context.Context, ic *functions.InvocationContext, text string) error {
	return c.Clients.All().Send(ctx, "newMessage", ic.UserID, text)
}

// JoinGroup adds the caller's connection to group name.
func (c *Chat) JoinGroup(ctx context.Context, ic *functions.InvocationContext, name string) error {
	if strings.TrimSpace(name) == "" {
		return errors.New("a group needs a name")
	}
	return c.Groups.Add(ctx, ic.ConnectionID, name)
}

// SendToGroup sends groupMessage(group, user, text) to the group's members.
func (c *Chat) SendToGroup(ctx context.Context, ic *functions.InvocationContext, group, text string) error {
	return c.Clients.Group(group).Send(ctx, "groupMessage", group, ic.UserID, text)
}

// App is the running demo function app.
type App struct {
	svc     *functions.Service
	handler http.Handler
}

// New starts the function app against the service at endpoint with key.
func New(ctx context.Context, endpoint, key string, log *slog.Logger) (*App, error) {
	settings := connection.FromEnv([]string{"AzureSignalRConnectionString=Endpoint=" + endpoint + ";AccessKey=" + key + ";Version=1.0;"})
	svc, err := functions.New(settings, &functions.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	if err := svc.Start(ctx); err != nil {
		_ = svc.Close()
		return nil, err
	}
	trigger, err := svc.NewTrigger(&functions.TriggerOptions{Logger: log})
	if err != nil {
		_ = svc.Close()
		return nil, err
	}
	chat := &Chat{log: log}
	if err := svc.RegisterHub(trigger, chat, &functions.HubOptions{Name: Hub}); err != nil {
		_ = svc.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(Prefix+"api/negotiate", chat.NegotiateHandler(&functions.NegotiateOptions{Logger: log}))
	// The trigger serves functions.TriggerPath; the service calls it under the prefix.
	mux.Handle(TriggerPath, http.StripPrefix(strings.TrimSuffix(Prefix, "/"), trigger))
	mux.Handle(Prefix, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != Prefix {
			http.NotFound(w, r)
			return
		}
		webui.ChatPage().ServeHTTP(w, r)
	}))
	return &App{svc: svc, handler: mux}, nil
}

// Handler serves everything under Prefix: the chat page, negotiate and the trigger.
func (a *App) Handler() http.Handler { return a.handler }

// Close stops the function app's service client.
func (a *App) Close() error { return a.svc.Close() }
