// Package client is a small SignalR client for Go programs, tests and load
// generators. It speaks the ASP.NET Core SignalR client protocol as the official
// JavaScript client does: POST <url>/negotiate (following {url, accessToken}
// redirects such as an Azure Functions negotiate endpoint returns, at most 100),
// connect the transport (WebSockets, Server-Sent Events or long polling), send the
// handshake, then exchange hub messages in JSON or MessagePack.
//
// A Conn delivers server invocations to handlers registered with On, or through the
// channel returned by Messages, sends fire-and-forget invocations with Send and
// calls hub methods with Invoke, which returns the Completion's result or an
// *InvocationError. It pings the server when it has sent nothing for the keep-alive
// interval (15 s) and closes itself when it has heard nothing for the server timeout
// (30 s). It does not reconnect: Done is closed when the connection ends and Err
// says why.
//
// All blocking calls take a context.Context; Close ends the connection and waits for
// its goroutines.
package client
