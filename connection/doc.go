// Package connection reads the settings that tell a function app where its SignalR
// Service endpoints are and how to authenticate to them, with the same names and rules as
// the Azure Functions SignalR extension:
//
//   - a connection string in ConnectionStrings:K or K (K defaults to
//     AzureSignalRConnectionString), parsed by ParseConnectionString;
//   - identity-based settings K:serviceUri, K:credential, K:clientId, ...;
//   - the shared endpoint list Azure:SignalR:Endpoints:{name}[:primary|:secondary] and its
//     identity form Azure:SignalR:Endpoints:{name}:serviceUri, ...
//
// Keys are case-insensitive and "__" (app settings, environment) and ":" (local
// configuration) are interchangeable separators. From the environment, App Service's
// CUSTOMCONNSTR_K (a portal "Connection string") is ConnectionStrings:K, as in .NET.
//
// Identity-based endpoints need an azcore.TokenCredential. This package does not depend on
// azidentity; pass Options.NewCredential (for example identity.NewCredential from the
// connection/identity subpackage) to build one.
package connection
