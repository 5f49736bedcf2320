package connection

import (
	"errors"
	"fmt"
)

// Errors of connection strings and identity settings. Their texts are the extension's (the
// Azure SignalR SDK's connection-string parser and Microsoft.Extensions.Azure's credential
// factory), so that a message searched for on the web finds the same answers; each is a
// sentinel for errors.Is. Errors whose text holds a value (a key, a version, a property
// name) match the sentinel named beside them.
var (
	ErrMissingEndpoint      = errors.New("Connection string missing required properties endpoint.")
	ErrInvalidEndpoint      = errors.New("Invalid value for endpoint property, it must be a valid URI.")
	ErrInvalidPort          = errors.New("Invalid value for port property, it must be an positive integer between (0, 65536).")
	ErrMissingAccessKey     = errors.New("accesskey is required.")
	ErrMissingClientID      = errors.New("Connection string missing required properties clientId.")
	ErrMissingTenantID      = errors.New("Connection string missing required properties tenantId.")
	ErrMissingClientSecret  = errors.New("Connection string missing required properties clientSecret or clientCert.")
	ErrDuplicateProperty    = errors.New("Duplicate properties found in connection string.")        // "…: {key}."
	ErrUnsupportedVersion   = errors.New("Version is not supported.")                               // "Version {v} is not supported."
	ErrInvalidURI           = errors.New("Invalid value for property, it must be a valid URI.")     // clientEndpoint, serverEndpoint, serviceUri
	ErrInvalidEndpointType  = errors.New("Invalid endpoint type, it must be Primary or Secondary.") // "…type \"x\"…"
	ErrCertificateNotFound  = errors.New("Unable to find a certificate with thumbprint.")           // "…thumbprint '{t}'"
	ErrInvalidTransportType = errors.New("Invalid service transport type.")                         // "Invalid service transport type: X."

	// ErrManagedIdentityIDs: credential=managedidentity with more than one identifier. None
	// means the system-assigned identity.
	ErrManagedIdentityIDs = errors.New("Only one of ['clientId', 'managedIdentityClientId', 'managedIdentityResourceId', or 'managedIdentityObjectId'] can be specified for managed identity.")
	// ErrClientIDAndResourceID: no credential type (DefaultAzureCredential) with both a
	// client id and a resource id for its managed identity, which Azure.Identity refuses.
	ErrClientIDAndResourceID = errors.New("Cannot specify both 'clientId' and 'managedIdentityResourceId'")
	// ErrObjectIDNeedsManagedIdentity: managedIdentityObjectId with another credential type.
	ErrObjectIDNeedsManagedIdentity = errors.New("'managedIdentityObjectId' is only supported when the credential type is 'managedidentity'.")
	// ErrWorkloadIdentitySettings: credential=workloadidentity without tenantId, clientId or
	// tokenFilePath (the AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN_FILE
	// environment variables count).
	ErrWorkloadIdentitySettings = errors.New("For workload identity, 'tenantId', 'clientId', and 'tokenFilePath' must be specified via the configuration.")
	// ErrAzurePipelinesSettings: credential=azurepipelines without one of its four settings.
	ErrAzurePipelinesSettings = errors.New("For Azure Pipelines, 'tenantId', 'clientId', 'serviceConnectionId', and 'systemAccessToken' must be specified via the configuration.")
	// ErrFederatedIdentityIDs and ErrFederatedIdentitySettings: credential=
	// managedidentityasfederatedidentity with more than one, or none, of its managed
	// identity identifiers, or without tenantId, clientId or azureCloud.
	ErrFederatedIdentityIDs      = errors.New("Only one of ['managedIdentityClientId', 'managedIdentityResourceId', or 'managedIdentityObjectId'] can be specified for managed identity.")
	ErrFederatedIdentityNoID     = errors.New("A clientId and exactly one of ['managedIdentityClientId', 'managedIdentityResourceId', or 'managedIdentityObjectId'] must be specified for federated managed identity.")
	ErrFederatedIdentitySettings = errors.New("For managed identity as a federated identity credential, 'tenantId', 'clientId', 'azureCloud', and one of ['managedIdentityClientId', 'managedIdentityResourceId', 'managedIdentityObjectId'] must be specified via the configuration.")
)

// valueError is an error whose text holds a value; it matches its sentinel with errors.Is.
type valueError struct {
	text string
	is   error
}

func (e *valueError) Error() string        { return e.text }
func (e *valueError) Is(target error) bool { return target == e.is }

func errorWithValue(is error, format string, args ...any) error {
	return &valueError{text: fmt.Sprintf(format, args...), is: is}
}

// SettingError is an error of one setting, named by its key as configured ("setting
// Azure:SignalR:Endpoints:east:primary: accesskey is required."). Err is one of the
// sentinels above, or ErrNotConfigured, ErrNoPrimaryEndpoint, ErrNoCredentialFactory, or the
// error of Options.NewCredential.
type SettingError struct {
	Key string
	Err error
}

func (e *SettingError) Error() string { return "setting " + e.Key + ": " + e.Err.Error() }

// Unwrap returns Err.
func (e *SettingError) Unwrap() error { return e.Err }

func settingError(key string, err error) error {
	var se *SettingError
	if errors.As(err, &se) {
		return err
	}
	return &SettingError{Key: key, Err: err}
}
