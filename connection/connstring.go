package connection

import (
	"errors"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// AuthType values of a connection string that select Microsoft Entra authentication
// instead of the access key (compared case-insensitively).
const (
	AuthTypeAzure    = "azure"     // DefaultAzureCredential
	AuthTypeAzureMSI = "azure.msi" // managed identity, user-assigned when ClientId is set
	AuthTypeAzureApp = "azure.app" // application: ClientId, TenantId and ClientSecret or ClientCert
	AuthTypeAAD      = "aad"       // legacy: app, user-assigned or system-assigned managed identity
)

// ConnectionString is a parsed and validated SignalR Service connection string.
type ConnectionString struct {
	// Endpoint is scheme://host[:port][/path] with Port applied, no trailing slash and
	// no default port.
	Endpoint  string
	AccessKey string
	Version   string // "1.0" when absent
	Port      int    // 0 when absent
	// ClientEndpoint and ServerEndpoint are normalised with a trailing slash; "" when absent.
	ClientEndpoint string
	ServerEndpoint string
	// AuthType is lower-cased; one of the AuthType constants or "" (access key).
	AuthType     string
	ClientID     string
	TenantID     string
	ClientSecret string
	ClientCert   string // path of a PEM or PKCS#12 certificate file
}

var versionPattern = regexp.MustCompile(`^1\.\d+(?:[\w\-.]+)?$`)

// ParseConnectionString parses "Key=Value;..." as the SDK does: keys are
// case-insensitive, each value is split at its first '=', whitespace is trimmed, parts
// without '=' are ignored. Errors never contain the secret values.
func ParseConnectionString(s string) (*ConnectionString, error) {
	var parts []string
	for _, p := range strings.Split(s, ";") {
		if strings.TrimSpace(p) != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) < 2 {
		return nil, ErrMissingEndpoint
	}
	props := make(map[string]string, len(parts))
	for _, p := range parts {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if _, dup := props[k]; dup {
			return nil, errorWithValue(ErrDuplicateProperty, "Duplicate properties found in connection string: %s.", k)
		}
		props[k] = strings.TrimSpace(v)
	}

	cs := &ConnectionString{Version: "1.0"}
	raw, ok := props["endpoint"]
	if !ok || raw == "" {
		return nil, ErrMissingEndpoint
	}
	u, err := parseHTTPURL(raw)
	if err != nil {
		return nil, ErrInvalidEndpoint
	}
	if v, ok := props["port"]; ok {
		port, err := strconv.Atoi(v)
		if err != nil || port <= 0 || port >= 65536 {
			return nil, ErrInvalidPort
		}
		cs.Port = port
		u.Host = joinHostPort(u.Hostname(), strconv.Itoa(port))
	}
	cs.Endpoint = endpointID(u)

	if v, ok := props["version"]; ok {
		if !versionPattern.MatchString(v) {
			return nil, errorWithValue(ErrUnsupportedVersion, "Version %s is not supported.", v)
		}
		cs.Version = v
	}
	for _, f := range []struct {
		key, name string
		dst       *string
	}{{"clientendpoint", "clientEndpoint", &cs.ClientEndpoint}, {"serverendpoint", "serverEndpoint", &cs.ServerEndpoint}} {
		v, ok := props[f.key]
		if !ok || v == "" {
			continue
		}
		eu, err := parseHTTPURL(v)
		if err != nil {
			return nil, errorWithValue(ErrInvalidURI, "Invalid value for %s property, it must be a valid URI.", f.name)
		}
		*f.dst = baseURL(eu)
	}
	cs.AccessKey = props["accesskey"]
	cs.ClientID = props["clientid"]
	cs.TenantID = props["tenantid"]
	cs.ClientSecret = props["clientsecret"]
	cs.ClientCert = props["clientcert"]

	switch at := strings.ToLower(props["authtype"]); at {
	case AuthTypeAzure, AuthTypeAzureMSI, AuthTypeAAD:
		cs.AuthType = at
	case AuthTypeAzureApp:
		cs.AuthType = at
		if cs.ClientID == "" {
			return nil, ErrMissingClientID
		}
		if cs.TenantID == "" {
			return nil, ErrMissingTenantID
		}
		if cs.ClientSecret == "" && cs.ClientCert == "" {
			return nil, ErrMissingClientSecret
		}
	default:
		if cs.AccessKey == "" {
			return nil, ErrMissingAccessKey
		}
	}
	if cs.AuthType == AuthTypeAAD && cs.ClientID != "" && cs.TenantID != "" && cs.ClientSecret == "" && cs.ClientCert == "" {
		return nil, ErrMissingClientSecret
	}
	return cs, nil
}

// Identity returns the identity settings an Entra-authenticated connection string stands
// for; ok is false for access-key connection strings.
func (cs *ConnectionString) Identity() (s IdentitySettings, ok bool) {
	s = IdentitySettings{ServiceURI: cs.Endpoint}
	switch cs.AuthType {
	case AuthTypeAzure:
	case AuthTypeAzureMSI:
		s.Credential = CredentialManagedIdentity
		s.ClientID = cs.ClientID
	case AuthTypeAzureApp:
		s.ClientID, s.TenantID, s.ClientSecret = cs.ClientID, cs.TenantID, cs.ClientSecret
		if s.ClientSecret == "" {
			s.ClientCertificatePath = cs.ClientCert
		}
	case AuthTypeAAD:
		switch {
		case cs.ClientID == "":
			s.Credential = CredentialManagedIdentity
		case cs.TenantID == "":
			s.Credential = CredentialManagedIdentity
			s.ClientID = cs.ClientID
		default:
			s.ClientID, s.TenantID, s.ClientSecret = cs.ClientID, cs.TenantID, cs.ClientSecret
			if s.ClientSecret == "" {
				s.ClientCertificatePath = cs.ClientCert
			}
		}
	default:
		return IdentitySettings{}, false
	}
	return s, true
}

// parseHTTPURL accepts absolute http/https URLs with a host and no query or fragment.
func parseHTTPURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "http" && scheme != "https") || u.Hostname() == "" || u.Opaque != "" ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, errors.New("not an absolute http or https URI")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n >= 65536 {
			return nil, errors.New("invalid port")
		}
	}
	u.Scheme = scheme
	u.Host = strings.ToLower(u.Host)
	return u, nil
}

func joinHostPort(host, port string) string {
	if port == "" {
		if strings.Contains(host, ":") {
			return "[" + host + "]"
		}
		return host
	}
	return net.JoinHostPort(host, port)
}

// hostPort drops the scheme's default port so equal endpoints compare equal.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port != "" {
		n, _ := strconv.Atoi(port)
		port = strconv.Itoa(n) // "0080" -> "80"
	}
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	return joinHostPort(u.Hostname(), port)
}

// endpointID is scheme://host[:port][/path] without trailing slash.
func endpointID(u *url.URL) string {
	return u.Scheme + "://" + hostPort(u) + strings.TrimRight(u.EscapedPath(), "/")
}

// baseURL is scheme://host[:port][/path]/ with exactly one trailing slash.
func baseURL(u *url.URL) string { return endpointID(u) + "/" }

// audienceBase is scheme://host/ without port or path.
func audienceBase(u *url.URL) string { return u.Scheme + "://" + joinHostPort(u.Hostname(), "") + "/" }
