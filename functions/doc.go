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
// Functions hosted by the Azure Functions host as a custom handler receive and return these
// values in the payloads of package functions/customhandler. A standalone Go program can
// instead serve NegotiateHandler and the Trigger itself and point the service's upstream at
// it (see examples/functionapp).
//
// JSON names follow the extension: camelCase for connection info and output items,
// PascalCase for InvocationContext (what non-.NET workers receive).
package functions
