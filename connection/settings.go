package connection

import (
	"errors"
	"os"
	"sort"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// DefaultSetting is the connection setting name used when none is given.
const DefaultSetting = "AzureSignalRConnectionString"

// endpointsSection is the shared multi-endpoint list, read for every setting name.
const endpointsSection = "azure:signalr:endpoints"

var (
	// ErrNotConfigured: neither a connection string nor endpoints were found.
	ErrNotConfigured = errors.New("The SignalR Service connection string or endpoints are not set.")
	// ErrNoPrimaryEndpoint: every configured endpoint is secondary.
	ErrNoPrimaryEndpoint = errors.New("No primary endpoint defined.")
	// ErrNoCredentialFactory: identity settings were found but Options.NewCredential is nil.
	ErrNoCredentialFactory = errors.New("identity-based settings need Options.NewCredential (see package github.com/signalbox-io/signalbox/connection/identity)")
)

// Settings is a read-only view of configuration keys, case-insensitive, with "__" and
// ":" as interchangeable separators.
type Settings struct {
	values map[string]setting // by normalised key
}

type setting struct {
	key   string // as given, with "__" turned into ":" (keeps the case of endpoint names)
	value string
}

// FromMap builds Settings from configuration keys and values. When two keys normalise to
// the same key, the one that sorts last wins.
func FromMap(m map[string]string) *Settings {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := &Settings{values: make(map[string]setting, len(m))}
	for _, k := range keys {
		key := strings.ReplaceAll(k, "__", ":")
		s.values[strings.ToLower(key)] = setting{key: key, value: m[k]}
	}
	return s
}

// FromEnviron builds Settings from the process environment.
func FromEnviron() *Settings { return FromEnv(os.Environ()) }

// connStrPrefixes are the environment variable prefixes under which App Service exposes
// the portal's "Connection strings"; .NET's environment configuration provider reads
// PREFIX{name} as ConnectionStrings:{name}.
var connStrPrefixes = []string{"CUSTOMCONNSTR_", "SQLAZURECONNSTR_", "SQLCONNSTR_", "MYSQLCONNSTR_"}

// FromEnv builds Settings from "KEY=value" entries as returned by os.Environ. As in .NET,
// CUSTOMCONNSTR_{name} (and the other App Service connection-string prefixes) is also
// ConnectionStrings:{name}.
func FromEnv(environ []string) *Settings {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue
		}
		m[k] = v
		for _, p := range connStrPrefixes {
			if len(k) > len(p) && strings.EqualFold(k[:len(p)], p) {
				m["ConnectionStrings:"+k[len(p):]] = v
				break
			}
		}
	}
	return FromMap(m)
}

func normalise(key string) string { return strings.ToLower(strings.ReplaceAll(key, "__", ":")) }

// Get returns the value of key.
func (s *Settings) Get(key string) (string, bool) {
	if s == nil {
		return "", false
	}
	v, ok := s.values[normalise(key)]
	return v.value, ok
}

// value returns a non-blank value of key, trimmed.
func (s *Settings) value(key string) string {
	v, _ := s.Get(key)
	return strings.TrimSpace(v)
}

// Options configures Resolve.
type Options struct {
	// NewCredential builds the credential of an identity-based endpoint; identity.NewCredential
	// is the azidentity implementation. Nil makes identity-based settings an error.
	NewCredential func(IdentitySettings) (azcore.TokenCredential, error)
}

// Resolve returns the endpoints configured for the connection setting name (DefaultSetting
// when ""): the connection string ConnectionStrings:K or K, else the identity settings
// K:serviceUri, ..., followed by the shared list Azure:SignalR:Endpoints. Endpoints with the
// same Endpoint collapse into one, the primary preferred.
func (s *Settings) Resolve(name string, opts *Options) ([]Endpoint, error) {
	if name == "" {
		name = DefaultSetting
	}
	if opts == nil {
		opts = &Options{}
	}
	if err := s.checkTransportType(); err != nil {
		return nil, err
	}
	var eps []Endpoint
	key, cs := "ConnectionStrings:"+name, s.value("ConnectionStrings:"+name)
	if cs == "" {
		key, cs = name, s.value(name)
	}
	switch {
	case cs != "":
		ep, err := NewEndpoint("", Primary, cs, opts)
		if err != nil {
			return nil, settingError(key, err)
		}
		eps = append(eps, ep)
	case s.value(name+":serviceUri") != "":
		ep, err := s.identityEndpoint(name, "", opts)
		if err != nil {
			return nil, err
		}
		eps = append(eps, ep)
	}
	list, err := s.listEndpoints(opts)
	if err != nil {
		return nil, err
	}
	eps = dedupe(append(eps, list...))
	if len(eps) == 0 {
		return nil, &SettingError{Key: name, Err: ErrNotConfigured}
	}
	for _, ep := range eps {
		if ep.Type == Primary {
			return eps, nil
		}
	}
	return nil, ErrNoPrimaryEndpoint
}

// SettingTransportType selects the extension's transport: Transient (the default) or
// Persistent. This package's clients always use the REST API (and send to every endpoint, as
// Persistent does), so both are accepted; any other value fails as in the extension.
const SettingTransportType = "AzureSignalRServiceTransportType"

func (s *Settings) checkTransportType() error {
	v := s.value(SettingTransportType)
	if v == "" || strings.EqualFold(v, "Transient") || strings.EqualFold(v, "Persistent") {
		return nil
	}
	return settingError(SettingTransportType, errorWithValue(ErrInvalidTransportType, "Invalid service transport type: %s.", v))
}

// NewEndpoint builds an endpoint from a connection string.
func NewEndpoint(name string, typ EndpointType, connectionString string, opts *Options) (Endpoint, error) {
	cs, err := ParseConnectionString(connectionString)
	if err != nil {
		return Endpoint{}, err
	}
	u, err := parseHTTPURL(cs.Endpoint)
	if err != nil { // cannot happen: cs.Endpoint was produced from a valid URL
		return Endpoint{}, ErrInvalidEndpoint
	}
	ep := Endpoint{
		Name: name, Type: typ, Endpoint: cs.Endpoint, ServiceURL: cs.Endpoint + "/",
		ClientEndpoint: cs.ClientEndpoint, ServerEndpoint: cs.ServerEndpoint,
		AudienceBase: audienceBase(u), Version: cs.Version,
	}
	fill(&ep)
	if id, ok := cs.Identity(); ok {
		ep.Credential, err = newCredential(id, opts)
		if err != nil {
			return Endpoint{}, err
		}
	} else {
		ep.AccessKey = cs.AccessKey
	}
	return ep, nil
}

func fill(ep *Endpoint) {
	if ep.ClientEndpoint == "" {
		ep.ClientEndpoint = ep.ServiceURL
	}
	if ep.ServerEndpoint == "" {
		ep.ServerEndpoint = ep.ServiceURL
	}
}

func newCredential(id IdentitySettings, opts *Options) (azcore.TokenCredential, error) {
	if err := id.Validate(); err != nil {
		return nil, err
	}
	if opts == nil || opts.NewCredential == nil {
		return nil, ErrNoCredentialFactory
	}
	cred, err := opts.NewCredential(id)
	if err != nil {
		return nil, err // the factory's text says what is wrong; SettingError names the key
	}
	if cred == nil {
		return nil, errors.New("Options.NewCredential returned no credential")
	}
	return cred, nil
}

// identityEndpoint reads the identity settings of section prefix.
func (s *Settings) identityEndpoint(prefix, name string, opts *Options) (Endpoint, error) {
	get := func(k string) string { return s.value(prefix + ":" + k) }
	u, err := parseHTTPURL(get("serviceUri"))
	if err != nil {
		return Endpoint{}, settingError(prefix+":serviceUri", errorWithValue(ErrInvalidURI, "Invalid value for serviceUri property, it must be a valid URI."))
	}
	typ, err := ParseEndpointType(get("type"))
	if err != nil {
		return Endpoint{}, settingError(prefix+":type", err)
	}
	ep := Endpoint{
		Name: name, Type: typ, Endpoint: endpointID(u), AudienceBase: audienceBase(u), Version: "1.0",
	}
	ep.ServiceURL = ep.Endpoint + "/"
	for _, f := range []struct {
		key string
		dst *string
	}{{"clientEndpoint", &ep.ClientEndpoint}, {"serverEndpoint", &ep.ServerEndpoint}} {
		if v := get(f.key); v != "" {
			eu, err := parseHTTPURL(v)
			if err != nil {
				return Endpoint{}, settingError(prefix+":"+f.key, errorWithValue(ErrInvalidURI, "Invalid value for %s property, it must be a valid URI.", f.key))
			}
			*f.dst = baseURL(eu)
		}
	}
	fill(&ep)
	id := IdentitySettings{
		ServiceURI:                 ep.Endpoint,
		Credential:                 strings.ToLower(get("credential")),
		ClientID:                   get("clientId"),
		TenantID:                   get("tenantId"),
		ClientSecret:               get("clientSecret"),
		ClientCertificate:          get("clientCertificate"),
		ManagedIdentityResourceID:  get("managedIdentityResourceId"),
		ManagedIdentityObjectID:    get("managedIdentityObjectId"),
		ManagedIdentityClientID:    get("managedIdentityClientId"),
		AdditionallyAllowedTenants: splitTenants(get("additionallyAllowedTenants")),
		TokenFilePath:              get("tokenFilePath"),
		AzureCloud:                 get("azureCloud"),
		ServiceConnectionID:        get("serviceConnectionId"),
		SystemAccessToken:          get("systemAccessToken"),
	}
	ep.Credential, err = newCredential(id, opts)
	if err != nil {
		return Endpoint{}, settingError(prefix, err)
	}
	return ep, nil
}

// listEndpoints reads Azure:SignalR:Endpoints, ordered by name then type.
func (s *Settings) listEndpoints(opts *Options) ([]Endpoint, error) {
	names := map[string]string{} // lower name -> name as first written
	if s != nil {
		for k, v := range s.values {
			rest, ok := strings.CutPrefix(k, endpointsSection+":")
			if !ok || rest == "" {
				continue
			}
			lname, _, _ := strings.Cut(rest, ":")
			orig := v.key[len(endpointsSection)+1:]
			orig, _, _ = strings.Cut(orig, ":")
			if prev, ok := names[lname]; !ok || orig < prev {
				names[lname] = orig
			}
		}
	}
	lnames := make([]string, 0, len(names))
	for l := range names {
		lnames = append(lnames, l)
	}
	sort.Strings(lnames)
	var eps []Endpoint
	for _, l := range lnames {
		name := names[l]
		prefix := "Azure:SignalR:Endpoints:" + name
		if s.value(prefix+":serviceUri") != "" {
			ep, err := s.identityEndpoint(prefix, name, opts)
			if err != nil {
				return nil, err
			}
			eps = append(eps, ep)
			continue
		}
		for _, f := range []struct {
			key string
			typ EndpointType
		}{{prefix, Primary}, {prefix + ":primary", Primary}, {prefix + ":secondary", Secondary}} {
			cs := s.value(f.key)
			if cs == "" {
				continue
			}
			ep, err := NewEndpoint(name, f.typ, cs, opts)
			if err != nil {
				return nil, settingError(f.key, err)
			}
			eps = append(eps, ep)
		}
	}
	return eps, nil
}

// dedupe keeps one endpoint per Endpoint at the position of its first occurrence,
// preferring a primary one.
func dedupe(eps []Endpoint) []Endpoint {
	idx := map[string]int{}
	out := eps[:0:0]
	for _, ep := range eps {
		i, seen := idx[ep.Endpoint]
		if !seen {
			idx[ep.Endpoint] = len(out)
			out = append(out, ep)
			continue
		}
		if out[i].Type == Secondary && ep.Type == Primary {
			out[i] = ep
		}
	}
	return out
}
