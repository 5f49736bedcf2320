package connection

import (
	"errors"
	"strings"
)

// Values of the credential identity setting (lower case; the setting is compared
// case-insensitively).
const (
	CredentialManagedIdentity                    = "managedidentity"
	CredentialWorkloadIdentity                   = "workloadidentity"
	CredentialAzurePipelines                     = "azurepipelines"
	CredentialManagedIdentityAsFederatedIdentity = "managedidentityasfederatedidentity"
)

// IdentitySettings are the identity-based settings of one endpoint (K:serviceUri, ... or
// Azure:SignalR:Endpoints:{name}:serviceUri, ...), or the Entra part of a connection
// string with an AuthType. They are what Options.NewCredential turns into a credential.
type IdentitySettings struct {
	ServiceURI string // normalised service endpoint, no trailing slash
	Credential string // lower-cased value of credential; "" when absent

	ClientID     string
	TenantID     string
	ClientSecret string
	// ClientCertificate is a certificate thumbprint (identity settings);
	// ClientCertificatePath a certificate file (connection string ClientCert).
	ClientCertificate     string
	ClientCertificatePath string

	ManagedIdentityResourceID string
	ManagedIdentityObjectID   string
	ManagedIdentityClientID   string

	AdditionallyAllowedTenants []string // from the ';'-separated setting
	TokenFilePath              string
	AzureCloud                 string
	ServiceConnectionID        string
	SystemAccessToken          string
}

// Validate applies the rules of Microsoft.Extensions.Azure's credential factory that do
// not depend on the environment, so configuration mistakes fail at start.
func (s IdentitySettings) Validate() error {
	if s.Credential == CredentialManagedIdentity {
		if s.ClientID != "" && s.ManagedIdentityResourceID != "" {
			return errors.New("Cannot specify both 'clientId' and 'managedIdentityResourceId'")
		}
		n := 0
		for _, v := range []string{s.ClientID, s.ManagedIdentityClientID, s.ManagedIdentityResourceID, s.ManagedIdentityObjectID} {
			if v != "" {
				n++
			}
		}
		if n > 1 {
			return errors.New("Only one of [clientId, managedIdentityClientId, managedIdentityResourceId, managedIdentityObjectId] can be specified for managed identity.")
		}
		return nil
	}
	if s.ManagedIdentityObjectID != "" {
		return errors.New("'managedIdentityObjectId' is only supported when the credential type is 'managedidentity'.")
	}
	// Without a credential type and without application credentials, clientId and
	// managedIdentityResourceId both select the managed identity of DefaultAzureCredential,
	// which Azure.Identity refuses to guess between.
	appCredential := s.TenantID != "" && s.ClientID != "" &&
		(s.ClientSecret != "" || s.ClientCertificate != "" || s.ClientCertificatePath != "")
	if s.Credential == "" && !appCredential && s.ClientID != "" && s.ManagedIdentityResourceID != "" {
		return errors.New("Cannot specify both 'clientId' and 'managedIdentityResourceId'")
	}
	return nil
}

func splitTenants(v string) []string {
	var out []string
	for _, t := range strings.Split(v, ";") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}
