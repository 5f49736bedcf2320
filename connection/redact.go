package connection

import (
	"fmt"
	"log/slog"
	"strings"
)

// The settings types hold secrets (access keys, client secrets, tokens). Their String,
// GoString and LogValue show which settings are present but never the secret values, so
// that printing or logging them while debugging a configuration cannot leak a key.

// redacted stands for a secret that is set.
const redacted = "<redacted>"

func secret(v string) string {
	if v == "" {
		return ""
	}
	return redacted
}

// fields formats name=value pairs, skipping empty values.
func fields(kv ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%s", kv[i], kv[i+1])
	}
	return b.String()
}

// String describes the connection string with its secrets redacted.
func (cs ConnectionString) String() string {
	port := ""
	if cs.Port != 0 {
		port = fmt.Sprint(cs.Port)
	}
	return "{" + fields("Endpoint", cs.Endpoint, "AccessKey", secret(cs.AccessKey), "Version", cs.Version, "Port", port,
		"ClientEndpoint", cs.ClientEndpoint, "ServerEndpoint", cs.ServerEndpoint, "AuthType", cs.AuthType,
		"ClientId", cs.ClientID, "TenantId", cs.TenantID, "ClientSecret", secret(cs.ClientSecret), "ClientCert", cs.ClientCert) + "}"
}

// GoString keeps %#v from printing secrets.
func (cs ConnectionString) GoString() string { return "connection.ConnectionString" + cs.String() }

// LogValue logs the connection string with its secrets redacted.
func (cs ConnectionString) LogValue() slog.Value { return slog.StringValue(cs.String()) }

// String describes the identity settings with their secrets redacted.
func (s IdentitySettings) String() string {
	return "{" + fields("serviceUri", s.ServiceURI, "credential", s.Credential, "clientId", s.ClientID, "tenantId", s.TenantID,
		"clientSecret", secret(s.ClientSecret), "clientCertificate", s.ClientCertificate, "clientCertificatePath", s.ClientCertificatePath,
		"managedIdentityResourceId", s.ManagedIdentityResourceID, "managedIdentityObjectId", s.ManagedIdentityObjectID,
		"managedIdentityClientId", s.ManagedIdentityClientID, "additionallyAllowedTenants", strings.Join(s.AdditionallyAllowedTenants, ";"),
		"tokenFilePath", s.TokenFilePath, "azureCloud", s.AzureCloud, "serviceConnectionId", s.ServiceConnectionID,
		"systemAccessToken", secret(s.SystemAccessToken)) + "}"
}

// GoString keeps %#v from printing secrets.
func (s IdentitySettings) GoString() string { return "connection.IdentitySettings" + s.String() }

// LogValue logs the identity settings with their secrets redacted.
func (s IdentitySettings) LogValue() slog.Value { return slog.StringValue(s.String()) }
