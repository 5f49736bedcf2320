package connection

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// EndpointType says whether an endpoint takes negotiations normally (Primary) or only
// when no primary endpoint is online (Secondary).
type EndpointType int

// Endpoint types; the zero value is Primary.
const (
	Primary   EndpointType = iota // used for negotiation whenever it is online
	Secondary                     // used for negotiation only when no primary is online
)

// String returns "Primary" or "Secondary", the names the extension uses in JSON.
func (t EndpointType) String() string {
	if t == Secondary {
		return "Secondary"
	}
	return "Primary"
}

// MarshalText encodes the type as "Primary" or "Secondary".
func (t EndpointType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText accepts "primary" or "secondary" in any case.
func (t *EndpointType) UnmarshalText(b []byte) error {
	typ, err := ParseEndpointType(string(b))
	if err != nil {
		return err
	}
	*t = typ
	return nil
}

// ParseEndpointType parses "primary" or "secondary" case-insensitively; "" is Primary.
func ParseEndpointType(s string) (EndpointType, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "primary":
		return Primary, nil
	case "secondary":
		return Secondary, nil
	}
	return Primary, errorWithValue(ErrInvalidEndpointType, "Invalid endpoint type %q, it must be Primary or Secondary.", s)
}

// Endpoint is one SignalR Service endpoint, resolved and ready to use. Exactly one of
// AccessKey and Credential is set.
type Endpoint struct {
	// Name is the {name} of Azure:SignalR:Endpoints:{name}; "" for the endpoint of the
	// connection string setting itself.
	Name string
	Type EndpointType
	// Endpoint identifies the service: scheme://host[:port][/path], no trailing slash,
	// the port only when it is not the scheme's default.
	Endpoint string
	// ServiceURL is Endpoint with a trailing slash.
	ServiceURL string
	// ClientEndpoint is the base URL clients connect to (negotiate url), with a trailing
	// slash; ServiceURL unless overridden.
	ClientEndpoint string
	// ServerEndpoint is the base URL for REST calls and key fetching, with a trailing
	// slash; ServiceURL unless overridden.
	ServerEndpoint string
	// AudienceBase is scheme://host/ of the service endpoint (no port, no path): token
	// audiences are built from it.
	AudienceBase string
	// AccessKey signs tokens (key authentication).
	AccessKey string
	// Credential obtains Microsoft Entra tokens (identity authentication).
	Credential azcore.TokenCredential
	// Version is the connection string's Version, "1.0" by default.
	Version string
}

// String describes the endpoint without secrets, e.g. "[east](Primary)https://x.service.signalr.net".
func (e Endpoint) String() string {
	return fmt.Sprintf("[%s](%s)%s", e.Name, e.Type, e.Endpoint)
}

// endpointJSON is the JSON form of an Endpoint: the signalREndpoints shape, without the
// access key or credential.
type endpointJSON struct {
	EndpointType EndpointType `json:"endpointType"`
	Name         string       `json:"name"`
	Endpoint     string       `json:"endpoint"`
}

// MarshalJSON writes {"endpointType","name","endpoint"}: an Endpoint holds its access key,
// which must not reach JSON logs or API answers by accident.
func (e Endpoint) MarshalJSON() ([]byte, error) {
	return json.Marshal(endpointJSON{EndpointType: e.Type, Name: e.Name, Endpoint: e.Endpoint})
}

// LogValue logs the endpoint as String does, without secrets, in every slog handler.
func (e Endpoint) LogValue() slog.Value { return slog.StringValue(e.String()) }

// GoString keeps %#v from printing the access key.
func (e Endpoint) GoString() string {
	return fmt.Sprintf("connection.Endpoint{Name:%q, Type:%v, Endpoint:%q}", e.Name, e.Type, e.Endpoint)
}

// UsesIdentity reports whether the endpoint authenticates with a TokenCredential.
func (e Endpoint) UsesIdentity() bool { return e.Credential != nil }
