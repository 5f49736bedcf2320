// Package restapi serves the data-plane REST API of Azure SignalR Service
// (https://learn.microsoft.com/rest/api/signalr/dataplane-rest/):
// sends, existence checks, group and user-group membership, closes, client token
// generation and group listings, under both /api/hubs/{hub}/... (any api-version,
// optional application) and the legacy /api/v1/hubs/{hub}/... paths.
//
// Every request except health checks carries a Bearer token validated against the
// request path. Errors are typed (apiError) and mapped to an HTTP status and an
// x-ms-error-code in one table, because the SDKs decide between "false" and
// "failure" by that header on 404s.
package restapi
