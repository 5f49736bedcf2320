// Package identity gives Signalbox Microsoft Entra-style identity-based access without
// Azure: a local managed-identity token endpoint for development (Provider, the
// `signalbox identity` command), and the service side that trusts it or any other OIDC
// issuer (Verifier for bearer tokens on the REST API, Keys for the signing keys that
// GET /api/v1/auth/accessKey hands out, Gate to put them in front of the access-key
// validator).
//
// The wire shapes follow Azure: the App Service managed identity protocol
// (api-version 2019-08-01, X-IDENTITY-HEADER) for the token endpoint, RS256/ES256 JWTs
// with oid/appid claims for the identities, {"KeyId","AccessKey"} for the derived keys,
// and client tokens that carry the KeyId in their kid header.
package identity
