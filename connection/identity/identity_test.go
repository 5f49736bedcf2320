package identity

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/signalbox-io/signalbox/connection"
)

func TestNewCredential(t *testing.T) {
	tests := []struct {
		name  string
		s     connection.IdentitySettings
		check func(any) bool
	}{
		{"system-assigned", connection.IdentitySettings{Credential: "managedidentity"},
			func(c any) bool { _, ok := c.(*azidentity.ManagedIdentityCredential); return ok }},
		{"user-assigned by client id", connection.IdentitySettings{Credential: "managedidentity", ClientID: "c"},
			func(c any) bool { _, ok := c.(*azidentity.ManagedIdentityCredential); return ok }},
		{"user-assigned by resource id", connection.IdentitySettings{Credential: "managedidentity", ManagedIdentityResourceID: "/r"},
			func(c any) bool { _, ok := c.(*azidentity.ManagedIdentityCredential); return ok }},
		{"client secret", connection.IdentitySettings{TenantID: "t", ClientID: "c", ClientSecret: "s"},
			func(c any) bool { _, ok := c.(*azidentity.ClientSecretCredential); return ok }},
		{"default", connection.IdentitySettings{},
			func(c any) bool { _, ok := c.(*azidentity.DefaultAzureCredential); return ok }},
		{"default after user-assigned", connection.IdentitySettings{ClientID: "c"},
			func(c any) bool { _, ok := c.(*azidentity.ChainedTokenCredential); return ok }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewCredential(tt.s)
			if err != nil {
				t.Fatalf("NewCredential: %v", err)
			}
			if !tt.check(c) {
				t.Errorf("credential is %T", c)
			}
		})
	}
}

func TestNewCredentialErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		s    connection.IdentitySettings
		want string
	}{
		{"both ids", connection.IdentitySettings{Credential: "managedidentity", ClientID: "c", ManagedIdentityResourceID: "r"},
			connection.ErrManagedIdentityIDs.Error()},
		{"federated", connection.IdentitySettings{Credential: "managedidentityasfederatedidentity", TenantID: "t", ClientID: "c", AzureCloud: "public", ManagedIdentityClientID: "m"}, "not supported"},
		{"thumbprint", connection.IdentitySettings{TenantID: "t", ClientID: "c", ClientCertificate: "ABC"}, "Unable to find a certificate with thumbprint 'ABC'"},
		{"missing cert file", connection.IdentitySettings{TenantID: "t", ClientID: "c", ClientCertificatePath: filepath.Join(dir, "none.pem")}, "reading client certificate"},
		{"bad cert file", connection.IdentitySettings{TenantID: "t", ClientID: "c", ClientCertificatePath: bad}, "parsing client certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewCredential(tt.s)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestResolveWithIdentity(t *testing.T) {
	eps, err := connection.FromMap(map[string]string{
		"AzureSignalRConnectionString__serviceUri": "https://x.service.signalr.net",
		"AzureSignalRConnectionString__credential": "managedidentity",
	}).Resolve("", &connection.Options{NewCredential: NewCredential})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := eps[0].Credential.(*azidentity.ManagedIdentityCredential); !ok {
		t.Errorf("credential is %T", eps[0].Credential)
	}
}

func ExampleNewCredential() {
	// App settings as in the Azure portal: AzureSignalRConnectionString__serviceUri etc.
	settings := connection.FromMap(map[string]string{
		"AzureSignalRConnectionString__serviceUri": "https://example.service.signalr.net",
		"AzureSignalRConnectionString__credential": "managedidentity",
		"AzureSignalRConnectionString__clientId":   "00000000-0000-0000-0000-000000000000",
	})
	endpoints, err := settings.Resolve("", &connection.Options{NewCredential: NewCredential})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(endpoints[0], endpoints[0].UsesIdentity())
	// Output: [](Primary)https://example.service.signalr.net true
}
