// Package identity builds azcore.TokenCredential values from connection.IdentitySettings
// with azidentity, following the rules of Microsoft.Extensions.Azure that the Azure
// Functions SignalR extension uses. It lives apart from package connection so that
// programs using access keys only do not link azidentity.
//
// Use it as connection.Options{NewCredential: identity.NewCredential}.
package identity

import (
	"errors"
	"fmt"
	"os"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/signalbox-io/signalbox/connection"
)

// NewCredential returns the credential the settings describe:
//
//   - credential=managedidentity: ManagedIdentityCredential with managedIdentityResourceId,
//     managedIdentityObjectId, clientId or managedIdentityClientId; none means system-assigned;
//   - credential=workloadidentity: WorkloadIdentityCredential;
//   - credential=azurepipelines: AzurePipelinesCredential;
//   - tenantId + clientId + clientSecret: ClientSecretCredential;
//   - tenantId + clientId + a certificate file (connection string ClientCert): ClientCertificateCredential;
//   - otherwise DefaultAzureCredential (tried after a user-assigned managed identity when
//     clientId or managedIdentityResourceId is set).
func NewCredential(s connection.IdentitySettings) (azcore.TokenCredential, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	switch s.Credential {
	case connection.CredentialManagedIdentity:
		return azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ID: managedID(s)})
	case connection.CredentialWorkloadIdentity:
		// As the extension: the settings, else the environment variables that workload
		// identity webhooks set; all three are needed.
		o := &azidentity.WorkloadIdentityCredentialOptions{
			ClientID: orEnv(s.ClientID, "AZURE_CLIENT_ID"), TenantID: orEnv(s.TenantID, "AZURE_TENANT_ID"),
			TokenFilePath:              orEnv(s.TokenFilePath, "AZURE_FEDERATED_TOKEN_FILE"),
			AdditionallyAllowedTenants: s.AdditionallyAllowedTenants,
		}
		if o.ClientID == "" || o.TenantID == "" || o.TokenFilePath == "" {
			return nil, connection.ErrWorkloadIdentitySettings
		}
		return azidentity.NewWorkloadIdentityCredential(o)
	case connection.CredentialAzurePipelines:
		return azidentity.NewAzurePipelinesCredential(s.TenantID, s.ClientID, s.ServiceConnectionID, s.SystemAccessToken,
			&azidentity.AzurePipelinesCredentialOptions{AdditionallyAllowedTenants: s.AdditionallyAllowedTenants})
	case connection.CredentialManagedIdentityAsFederatedIdentity:
		return nil, errors.New("credential 'managedidentityasfederatedidentity' is not supported")
	}
	if s.TenantID != "" && s.ClientID != "" {
		if s.ClientSecret != "" {
			return azidentity.NewClientSecretCredential(s.TenantID, s.ClientID, s.ClientSecret,
				&azidentity.ClientSecretCredentialOptions{AdditionallyAllowedTenants: s.AdditionallyAllowedTenants})
		}
		if s.ClientCertificatePath != "" {
			data, err := os.ReadFile(s.ClientCertificatePath)
			if err != nil {
				return nil, fmt.Errorf("reading client certificate: %w", err)
			}
			certs, key, err := azidentity.ParseCertificates(data, nil)
			if err != nil {
				return nil, fmt.Errorf("parsing client certificate: %w", err)
			}
			return azidentity.NewClientCertificateCredential(s.TenantID, s.ClientID, certs, key,
				&azidentity.ClientCertificateCredentialOptions{AdditionallyAllowedTenants: s.AdditionallyAllowedTenants})
		}
		if s.ClientCertificate != "" {
			// Go has no portable certificate store to look a thumbprint up in.
			return nil, &thumbprintError{s.ClientCertificate}
		}
	}
	def, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{
		TenantID: s.TenantID, AdditionallyAllowedTenants: s.AdditionallyAllowedTenants,
	})
	if err != nil {
		return nil, err
	}
	if id := managedID(s); id != nil {
		mi, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ID: id})
		if err != nil {
			return nil, err
		}
		return azidentity.NewChainedTokenCredential([]azcore.TokenCredential{mi, def}, nil)
	}
	return def, nil
}

func orEnv(v, env string) string {
	if v != "" {
		return v
	}
	return os.Getenv(env)
}

func managedID(s connection.IdentitySettings) azidentity.ManagedIDKind {
	switch {
	case s.ManagedIdentityResourceID != "":
		return azidentity.ResourceID(s.ManagedIdentityResourceID)
	case s.ManagedIdentityObjectID != "":
		return azidentity.ObjectID(s.ManagedIdentityObjectID)
	case s.ClientID != "":
		return azidentity.ClientID(s.ClientID)
	case s.ManagedIdentityClientID != "":
		return azidentity.ClientID(s.ManagedIdentityClientID)
	}
	return nil
}

// thumbprintError is the extension's text for a certificate it cannot find; Go has no
// portable certificate store to look a thumbprint up in, so the text says what to do.
type thumbprintError struct{ thumbprint string }

func (e *thumbprintError) Error() string {
	return fmt.Sprintf("Unable to find a certificate with thumbprint '%s' (certificate stores are not supported: use a certificate file)", e.thumbprint)
}

func (e *thumbprintError) Is(target error) bool { return target == connection.ErrCertificateNotFound }
