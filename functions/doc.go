// Package functions is the Go form of the Azure Functions SignalR Service bindings
// (Microsoft.Azure.WebJobs.Extensions.SignalRService): the same settings, values, JSON shapes,
// validation errors and trigger protocol, working against Azure SignalR Service and Signalbox
// alike.
//
// Azure binding names and their Go counterparts:
//
//	signalRConnectionInfo (input)  Service.ConnectionInfo -> ConnectionInfo {"url","accessToken"};
//	                               Service.NegotiateHandler serves it as a negotiate endpoint
//	signalRNegotiation    (input)  Service.Negotiation -> Negotiation {"endpoints":[…]}
//	signalREndpoints      (input)  Service.Endpoints -> []EndpointInfo
//	signalR               (output) Message and GroupAction items; Service.Send, Service.Apply,
//	                               Service.Output (batch), ParseOutput (JSON items)
//	signalRTrigger        (trigger) Trigger, an http.Handler for /runtime/webhooks/signalr that
//	                               receives InvocationContext values; RegisterHub for
//	                               class-based (ServerlessHub-style) hubs
//
// A Service is built from the settings of one connectionStringSetting (default
// AzureSignalRConnectionString; see package connection for every form, including
// Azure:SignalR:Endpoints and identity-based settings). Unlike the extension in its default
// transient mode, a Service handles several endpoints: messages and group actions go to every
// endpoint, negotiation picks an online primary (else secondary) endpoint.
//
// Class-based hubs (C#'s ServerlessHub): a struct that embeds *Hub, registered with
// Service.RegisterHub, reaches its clients through the hub-scoped Clients (All, Client,
// User, Users, Group, Groups, ...), Groups, UserGroups and ClientManager without naming the
// hub; Service.Hub gives the same outside a trigger. Negotiation may add claims and choose
// the endpoint (ConnectionInfoOptions.Claims, Endpoint, SelectEndpoint;
// NegotiateOptions.Configure for a negotiate function).
//
// Several endpoints and failures: an endpoint is checked every 5 s once Service.Start ran,
// and a REST call that fails on it with a transport error or a 5xx marks it offline at once.
// The worst case from an endpoint's outage to negotiations avoiding it is 9.5 s with the
// defaults (management.HealthOptions; app settings AzureSignalRHealthCheck:Interval,
// :Timeout, :MaxRetries, :RetryDelay, or Options.Client.Health in code). A message or group
// action that some of its endpoints accepted is delivered: Service.Send and Service.Apply
// return a *management.DeliveryError naming the endpoints that failed, while Output and the
// hub-scoped operations succeed (and log the failures), so that the Functions host does not
// retry an invocation whose output already reached clients.
//
// Connection events: an error from a connected handler answers the service's connected
// call with 403. Azure SignalR Service does not wait for that call (the event is not
// blocking), so the client stays connected; Signalbox closes the connection when it is
// started with --upstream-reject-connections (see docs/configuration.md). To refuse clients
// everywhere, refuse them at negotiation (NegotiateOptions.Configure).
//
// Functions hosted by the Azure Functions host as a custom handler receive and return these
// values in the payloads of package functions/customhandler. A standalone Go program can
// instead serve NegotiateHandler and the Trigger itself and point the service's upstream at
// it (see examples/functionapp).
//
// JSON names follow the extension: camelCase for connection info and output items,
// PascalCase for InvocationContext (what non-.NET workers receive).
package functions
