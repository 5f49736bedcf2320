package identity

import (
	"errors"
	"strings"
	"testing"

	"github.com/signalbox-io/signalbox/connection"
)

// Every error text of the Functions SignalR extension's connection configuration
// (https://github.com/Azure/azure-functions-signalrservice-extension), produced from
// app settings as a user writes them, with its exact text after the "setting K: " that names
// the key, and its sentinel. Issue 11 item 6: the port text lacked its final ".", the
// managed-identity rules had two wordings each, incomplete azurepipelines and
// workloadidentity settings gave azidentity's text, and Validate skipped the azurepipelines
// fields.
func TestSettingsErrorTexts(t *testing.T) {
	const cs = "AzureSignalRConnectionString"
	id := func(kv ...string) map[string]string {
		m := map[string]string{cs + "__serviceUri": "https://x.service.signalr.net"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[cs+"__"+kv[i]] = kv[i+1]
		}
		return m
	}
	conn := func(v string) map[string]string { return map[string]string{cs: v} }
	tests := []struct {
		name     string
		settings map[string]string
		key      string // the key the error names; "" = none
		text     string
		is       error
	}{
		// 4.2 connection strings
		{"one part", conn("Endpoint=https://x"), cs, "Connection string missing required properties endpoint.", connection.ErrMissingEndpoint},
		{"no endpoint", conn("AccessKey=k;Version=1.0"), cs, "Connection string missing required properties endpoint.", connection.ErrMissingEndpoint},
		{"duplicate", conn("Endpoint=https://x;AccessKey=k;accesskey=k2"), cs, "Duplicate properties found in connection string: accesskey.", connection.ErrDuplicateProperty},
		{"bad endpoint", conn("Endpoint=ftp://x;AccessKey=k"), cs, "Invalid value for endpoint property, it must be a valid URI.", connection.ErrInvalidEndpoint},
		{"bad port", conn("Endpoint=https://x;AccessKey=k;Port=70000"), cs, "Invalid value for port property, it must be an positive integer between (0, 65536).", connection.ErrInvalidPort},
		{"bad version", conn("Endpoint=https://x;AccessKey=k;Version=2.0"), cs, "Version 2.0 is not supported.", connection.ErrUnsupportedVersion},
		{"no access key", conn("Endpoint=https://x;Version=1.0"), cs, "accesskey is required.", connection.ErrMissingAccessKey},
		{"bad client endpoint", conn("Endpoint=https://x;AccessKey=k;ClientEndpoint=nope"), cs, "Invalid value for clientEndpoint property, it must be a valid URI.", connection.ErrInvalidURI},
		{"azure.app no client", conn("Endpoint=https://x;AuthType=azure.app;TenantId=t"), cs, "Connection string missing required properties clientId.", connection.ErrMissingClientID},
		{"azure.app no tenant", conn("Endpoint=https://x;AuthType=azure.app;ClientId=c"), cs, "Connection string missing required properties tenantId.", connection.ErrMissingTenantID},
		{"azure.app no secret", conn("Endpoint=https://x;AuthType=azure.app;ClientId=c;TenantId=t"), cs, "Connection string missing required properties clientSecret or clientCert.", connection.ErrMissingClientSecret},
		// 4.3 identity-based settings
		{"bad serviceUri", map[string]string{cs + "__serviceUri": "x.service.signalr.net"}, cs + ":serviceUri", "Invalid value for serviceUri property, it must be a valid URI.", connection.ErrInvalidURI},
		{"thumbprint", id("tenantId", "t", "clientId", "c", "clientCertificate", "AB12"), cs, "Unable to find a certificate with thumbprint 'AB12'", connection.ErrCertificateNotFound},
		{"mi two ids", id("credential", "managedidentity", "clientId", "c", "managedIdentityObjectId", "o"), cs,
			"Only one of ['clientId', 'managedIdentityClientId', 'managedIdentityResourceId', or 'managedIdentityObjectId'] can be specified for managed identity.", connection.ErrManagedIdentityIDs},
		{"mi client and resource id", id("credential", "ManagedIdentity", "clientId", "c", "managedIdentityResourceId", "r"), cs,
			"Only one of ['clientId', 'managedIdentityClientId', 'managedIdentityResourceId', or 'managedIdentityObjectId'] can be specified for managed identity.", connection.ErrManagedIdentityIDs},
		{"default credential client and resource id", id("clientId", "c", "managedIdentityResourceId", "r"), cs,
			"Cannot specify both 'clientId' and 'managedIdentityResourceId'", connection.ErrClientIDAndResourceID},
		{"object id without managed identity", id("clientId", "c", "managedIdentityObjectId", "o"), cs,
			"'managedIdentityObjectId' is only supported when the credential type is 'managedidentity'.", connection.ErrObjectIDNeedsManagedIdentity},
		{"workload identity incomplete", id("credential", "workloadidentity", "clientId", "c"), cs,
			"For workload identity, 'tenantId', 'clientId', and 'tokenFilePath' must be specified via the configuration.", connection.ErrWorkloadIdentitySettings},
		{"azure pipelines incomplete", id("credential", "azurepipelines", "tenantId", "t", "clientId", "c", "serviceConnectionId", "s"), cs,
			"For Azure Pipelines, 'tenantId', 'clientId', 'serviceConnectionId', and 'systemAccessToken' must be specified via the configuration.", connection.ErrAzurePipelinesSettings},
		{"federated two ids", id("credential", "managedidentityasfederatedidentity", "managedIdentityClientId", "m", "managedIdentityObjectId", "o"), cs,
			"Only one of ['managedIdentityClientId', 'managedIdentityResourceId', or 'managedIdentityObjectId'] can be specified for managed identity.", connection.ErrFederatedIdentityIDs},
		{"federated no id", id("credential", "managedidentityasfederatedidentity", "clientId", "c"), cs,
			"A clientId and exactly one of ['managedIdentityClientId', 'managedIdentityResourceId', or 'managedIdentityObjectId'] must be specified for federated managed identity.", connection.ErrFederatedIdentityNoID},
		{"federated incomplete", id("credential", "managedidentityasfederatedidentity", "clientId", "c", "managedIdentityClientId", "m"), cs,
			"For managed identity as a federated identity credential, 'tenantId', 'clientId', 'azureCloud', and one of ['managedIdentityClientId', 'managedIdentityResourceId', 'managedIdentityObjectId'] must be specified via the configuration.", connection.ErrFederatedIdentitySettings},
		// 4.4 endpoint list, 4.1 transport type, 4.5/4.8 nothing configured
		{"bad endpoint type", map[string]string{"Azure__SignalR__Endpoints__e__serviceUri": "https://x", "Azure__SignalR__Endpoints__e__type": "third"},
			"Azure:SignalR:Endpoints:e:type", `Invalid endpoint type "third", it must be Primary or Secondary.`, connection.ErrInvalidEndpointType},
		{"no primary", map[string]string{"Azure__SignalR__Endpoints__e__secondary": "Endpoint=https://x;AccessKey=k"}, "", "No primary endpoint defined.", connection.ErrNoPrimaryEndpoint},
		{"transport type", map[string]string{cs: "Endpoint=https://x;AccessKey=k", "AzureSignalRServiceTransportType": "Websockets"},
			"AzureSignalRServiceTransportType", "Invalid service transport type: Websockets.", connection.ErrInvalidTransportType},
		{"nothing", map[string]string{}, cs, "The SignalR Service connection string or endpoints are not set.", connection.ErrNotConfigured},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, env := range []string{"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE"} {
				t.Setenv(env, "")
			}
			eps, err := connection.FromMap(tt.settings).Resolve("", &connection.Options{NewCredential: NewCredential})
			if err == nil {
				t.Fatalf("no error; endpoints %v", eps)
			}
			want := tt.text
			if tt.key != "" {
				want = "setting " + tt.key + ": " + tt.text
			}
			got := err.Error()
			if tt.is == connection.ErrCertificateNotFound {
				got = got[:min(len(got), len(want))] // the text goes on to say what to do instead
			}
			if got != want {
				t.Errorf("error %q\nwant  %q", err, want)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) is false", err, tt.is)
			}
			var se *connection.SettingError
			if tt.key != "" && (!errors.As(err, &se) || se.Key != tt.key) {
				t.Errorf("no SettingError for key %s: %#v", tt.key, err)
			}
			if strings.Count(err.Error(), "setting ") > 1 {
				t.Errorf("repeated prefix: %v", err)
			}
		})
	}
}

// The workload identity settings may come from the environment, as in the extension.
func TestWorkloadIdentityFromEnvironment(t *testing.T) {
	t.Setenv("AZURE_CLIENT_ID", "c")
	t.Setenv("AZURE_TENANT_ID", "t")
	t.Setenv("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token")
	if _, err := NewCredential(connection.IdentitySettings{Credential: connection.CredentialWorkloadIdentity}); err != nil {
		t.Fatal(err)
	}
}
