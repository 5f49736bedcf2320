package connection

import (
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
// not depend on the environment, in its order, so configuration mistakes fail at start with
// its texts (the sentinels ErrManagedIdentityIDs, ErrFederatedIdentityIDs,
// ErrFederatedIdentityNoID, ErrFederatedIdentitySettings, ErrAzurePipelinesSettings,
// ErrObjectIDNeedsManagedIdentity, ErrClientIDAndResourceID). Workload identity is checked
// by the credential factory, since its settings may come from the environment.
func (s IdentitySettings) Validate() error {
	count := func(ids ...string) int {
		n := 0
		for _, v := range ids {
			if v != "" {
				n++
			}
		}
		return n
	}
	switch s.Credential {
	case CredentialManagedIdentity:
		// None means the system-assigned identity (the released behaviour; the newest factory
		// asks for exactly one).
		if count(s.ClientID, s.ManagedIdentityClientID, s.ManagedIdentityResourceID, s.ManagedIdentityObjectID) > 1 {
			return ErrManagedIdentityIDs
		}
		return nil
	case CredentialWorkloadIdentity:
		return nil
	case CredentialManagedIdentityAsFederatedIdentity:
		switch n := count(s.ManagedIdentityClientID, s.ManagedIdentityResourceID, s.ManagedIdentityObjectID); {
		case n > 1:
			return ErrFederatedIdentityIDs
		case n == 0:
			return ErrFederatedIdentityNoID
		}
		if s.TenantID == "" || s.ClientID == "" || s.AzureCloud == "" {
			return ErrFederatedIdentitySettings
		}
		return nil
	case CredentialAzurePipelines:
		if s.TenantID == "" || s.ClientID == "" || s.ServiceConnectionID == "" || s.SystemAccessToken == "" {
			return ErrAzurePipelinesSettings
		}
		return nil
	}
	// Application credentials come next and use neither managed identity setting.
	if s.TenantID != "" && s.ClientID != "" && (s.ClientSecret != "" || s.ClientCertificate != "" || s.ClientCertificatePath != "") {
		return nil
	}
	if s.ManagedIdentityObjectID != "" {
		return ErrObjectIDNeedsManagedIdentity
	}
	// DefaultAzureCredential: clientId (or managedIdentityClientId) and
	// managedIdentityResourceId both select its managed identity, which Azure.Identity
	// refuses to guess between.
	if (s.ClientID != "" || s.ManagedIdentityClientID != "") && s.ManagedIdentityResourceID != "" {
		return ErrClientIDAndResourceID
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
