package connection

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// fakeCredential records the settings it was made from.
type fakeCredential struct{ s IdentitySettings }

func (f *fakeCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "fake"}, nil
}

func fakeFactory() (*Options, *[]IdentitySettings) {
	var seen []IdentitySettings
	return &Options{NewCredential: func(s IdentitySettings) (azcore.TokenCredential, error) {
		seen = append(seen, s)
		return &fakeCredential{s: s}, nil
	}}, &seen
}

const cs1 = "Endpoint=https://one.service.signalr.net;AccessKey=key1;Version=1.0;"

func TestResolveConnectionString(t *testing.T) {
	tests := []struct {
		name     string
		settings map[string]string
		setting  string
		wantEP   string
		wantKey  string
	}{
		{"default setting", map[string]string{"AzureSignalRConnectionString": cs1}, "", "https://one.service.signalr.net", "key1"},
		{"key case-insensitive", map[string]string{"azuresignalrconnectionstring": cs1}, "", "https://one.service.signalr.net", "key1"},
		{"ConnectionStrings section wins", map[string]string{
			"AzureSignalRConnectionString":                   "Endpoint=https://two;AccessKey=key2",
			"ConnectionStrings:AzureSignalRConnectionString": cs1,
		}, "", "https://one.service.signalr.net", "key1"},
		{"ConnectionStrings with __", map[string]string{"CONNECTIONSTRINGS__AzureSignalRConnectionString": cs1}, "", "https://one.service.signalr.net", "key1"},
		{"blank ConnectionStrings falls back", map[string]string{
			"ConnectionStrings:AzureSignalRConnectionString": "  ",
			"AzureSignalRConnectionString":                   cs1,
		}, "", "https://one.service.signalr.net", "key1"},
		{"custom setting", map[string]string{"MySignalR": cs1, "AzureSignalRConnectionString": "Endpoint=https://other;AccessKey=k"}, "MySignalR", "https://one.service.signalr.net", "key1"},
		{"custom setting case-insensitive", map[string]string{"mysignalr": cs1}, "MySignalR", "https://one.service.signalr.net", "key1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eps, err := FromMap(tt.settings).Resolve(tt.setting, nil)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if len(eps) != 1 {
				t.Fatalf("got %d endpoints, want 1: %v", len(eps), eps)
			}
			ep := eps[0]
			if ep.Endpoint != tt.wantEP || ep.AccessKey != tt.wantKey || ep.Name != "" || ep.Type != Primary || ep.Credential != nil {
				t.Errorf("endpoint %+v", ep)
			}
		})
	}
}

func TestEndpointURLs(t *testing.T) {
	eps, err := FromMap(map[string]string{
		"AzureSignalRConnectionString": "Endpoint=http://LocalHost;Port=8080;AccessKey=k;Version=1.1;ClientEndpoint=https://public.example.com/sig;ServerEndpoint=http://internal:9000",
	}).Resolve("", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Endpoint{
		Endpoint: "http://localhost:8080", ServiceURL: "http://localhost:8080/",
		ClientEndpoint: "https://public.example.com/sig/", ServerEndpoint: "http://internal:9000/",
		AudienceBase: "http://localhost/", AccessKey: "k", Version: "1.1",
	}
	if eps[0] != want {
		t.Errorf("got  %+v\nwant %+v", eps[0], want)
	}
	eps, err = FromMap(map[string]string{"AzureSignalRConnectionString": cs1}).Resolve("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if ep := eps[0]; ep.ClientEndpoint != "https://one.service.signalr.net/" || ep.ServerEndpoint != ep.ClientEndpoint || ep.AudienceBase != "https://one.service.signalr.net/" {
		t.Errorf("defaults not derived from the endpoint: %+v", ep)
	}
}

func TestResolveIdentity(t *testing.T) {
	opts, seen := fakeFactory()
	eps, err := FromMap(map[string]string{
		"AzureSignalRConnectionString__serviceUri":                "https://id.service.signalr.net/",
		"AzureSignalRConnectionString__credential":                "ManagedIdentity",
		"AzureSignalRConnectionString__clientId":                  "cid",
		"azuresignalrconnectionstring:clientEndpoint":             "https://public.example.com",
		"AzureSignalRConnectionString:SERVERENDPOINT":             "http://private:8080",
		"AzureSignalRConnectionString:additionallyAllowedTenants": "a; b;",
	}).Resolve("", opts)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if len(eps) != 1 || len(*seen) != 1 {
		t.Fatalf("eps %v, credentials %v", eps, *seen)
	}
	ep := eps[0]
	if ep.Endpoint != "https://id.service.signalr.net" || ep.AccessKey != "" || ep.ClientEndpoint != "https://public.example.com/" ||
		ep.ServerEndpoint != "http://private:8080/" || !ep.UsesIdentity() || ep.Version != "1.0" {
		t.Errorf("endpoint %+v", ep)
	}
	s := (*seen)[0]
	if s.Credential != CredentialManagedIdentity || s.ClientID != "cid" || s.ServiceURI != "https://id.service.signalr.net" ||
		len(s.AdditionallyAllowedTenants) != 2 || s.AdditionallyAllowedTenants[1] != "b" {
		t.Errorf("identity settings %+v", s)
	}
	if fc, ok := ep.Credential.(*fakeCredential); !ok || fc.s.ClientID != "cid" {
		t.Errorf("credential %#v is not the injected one", ep.Credential)
	}
}

func TestResolveConnectionStringBeatsIdentity(t *testing.T) {
	opts, seen := fakeFactory()
	eps, err := FromMap(map[string]string{
		"AzureSignalRConnectionString":            cs1,
		"AzureSignalRConnectionString:serviceUri": "https://id.service.signalr.net",
	}).Resolve("", opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 1 || eps[0].AccessKey != "key1" || len(*seen) != 0 {
		t.Errorf("eps %v, credentials made %d", eps, len(*seen))
	}
}

func TestResolveEntraConnectionString(t *testing.T) {
	opts, seen := fakeFactory()
	eps, err := FromMap(map[string]string{
		"AzureSignalRConnectionString": "Endpoint=https://x;AuthType=azure.msi;ClientId=cid;Version=1.0;",
	}).Resolve("", opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 1 || eps[0].Credential == nil || eps[0].AccessKey != "" {
		t.Fatalf("eps %+v", eps)
	}
	if s := (*seen)[0]; s.Credential != CredentialManagedIdentity || s.ClientID != "cid" || s.ServiceURI != "https://x" {
		t.Errorf("identity settings %+v", s)
	}
}

func TestResolveEndpointList(t *testing.T) {
	opts, seen := fakeFactory()
	eps, err := FromMap(map[string]string{
		"AzureSignalRConnectionString":                            "Endpoint=https://main;AccessKey=k0",
		"Azure:SignalR:Endpoints:East":                            "Endpoint=https://east;AccessKey=k1",
		"Azure__SignalR__Endpoints__West__secondary":              "Endpoint=https://west;AccessKey=k2",
		"azure:signalr:endpoints:North:Primary":                   "Endpoint=https://north;AccessKey=k3",
		"Azure:SignalR:Endpoints:Ident:serviceUri":                "https://ident",
		"Azure:SignalR:Endpoints:Ident:type":                      "secondary",
		"Azure:SignalR:Endpoints:Ident:managedIdentityResourceId": "/sub/x",
		"Azure:SignalR:Endpoints:Ident:credential":                "managedidentity",
		"Azure:SignalR:Endpoints:Ident:secondary":                 "Endpoint=https://ignored;AccessKey=k4",
		"Azure:SignalR:Endpoints:Ident:foo":                       "ignored",
	}).Resolve("", opts)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	var got []string
	for _, ep := range eps {
		got = append(got, ep.String())
	}
	want := []string{
		"[](Primary)https://main",
		"[East](Primary)https://east",
		"[Ident](Secondary)https://ident",
		"[North](Primary)https://north",
		"[West](Secondary)https://west",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	if len(*seen) != 1 || (*seen)[0].ManagedIdentityResourceID != "/sub/x" {
		t.Errorf("credentials %+v", *seen)
	}
}

func TestResolveDedupe(t *testing.T) {
	eps, err := FromMap(map[string]string{
		"Azure:SignalR:Endpoints:a:secondary": "Endpoint=https://same;AccessKey=k1",
		"Azure:SignalR:Endpoints:b":           "Endpoint=https://SAME:443/;AccessKey=k2",
		"Azure:SignalR:Endpoints:c":           "Endpoint=https://other;AccessKey=k3",
		"Azure:SignalR:Endpoints:d:primary":   "Endpoint=https://other;AccessKey=k4",
	}).Resolve("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 2 {
		t.Fatalf("got %v", eps)
	}
	if eps[0].Name != "b" || eps[0].Type != Primary || eps[0].AccessKey != "k2" {
		t.Errorf("primary not preferred: %+v", eps[0])
	}
	if eps[1].Name != "c" {
		t.Errorf("first of equal primaries not kept: %+v", eps[1])
	}
}

func TestResolveErrors(t *testing.T) {
	opts, _ := fakeFactory()
	tests := []struct {
		name     string
		settings map[string]string
		opts     *Options
		want     string
		is       error
	}{
		{"nothing", map[string]string{"Other": "x"}, nil, "setting AzureSignalRConnectionString: The SignalR Service connection string or endpoints are not set.", ErrNotConfigured},
		{"blank", map[string]string{"AzureSignalRConnectionString": " "}, nil, "setting AzureSignalRConnectionString: The SignalR Service connection string or endpoints are not set.", ErrNotConfigured},
		{"only secondary", map[string]string{"Azure:SignalR:Endpoints:a:secondary": cs1}, nil, "No primary endpoint defined.", ErrNoPrimaryEndpoint},
		{"only secondary identity", map[string]string{"Azure:SignalR:Endpoints:a:serviceUri": "https://x", "Azure:SignalR:Endpoints:a:type": "Secondary"}, opts, "No primary endpoint defined.", ErrNoPrimaryEndpoint},
		{"bad connection string", map[string]string{"AzureSignalRConnectionString": "Endpoint=https://x;AccessKey=SECRET;Port=0"},
			nil, "setting AzureSignalRConnectionString: Invalid value for port property, it must be an positive integer between (0, 65536).", ErrInvalidPort},
		{"bad list entry", map[string]string{"Azure:SignalR:Endpoints:e:primary": "Endpoint=https://x;Version=1.0"},
			nil, "setting Azure:SignalR:Endpoints:e:primary: accesskey is required.", nil},
		{"no credential factory", map[string]string{"AzureSignalRConnectionString:serviceUri": "https://x"}, nil, "", ErrNoCredentialFactory},
		{"no credential factory for AuthType", map[string]string{"AzureSignalRConnectionString": "Endpoint=https://x;AuthType=azure"}, nil, "", ErrNoCredentialFactory},
		{"bad serviceUri", map[string]string{"AzureSignalRConnectionString:serviceUri": "not a uri"}, opts,
			"setting AzureSignalRConnectionString:serviceUri: Invalid value for serviceUri property, it must be a valid URI.", ErrInvalidURI},
		{"bad type", map[string]string{"Azure:SignalR:Endpoints:a:serviceUri": "https://x", "Azure:SignalR:Endpoints:a:type": "tertiary"}, opts,
			`setting Azure:SignalR:Endpoints:a:type: Invalid endpoint type "tertiary", it must be Primary or Secondary.`, ErrInvalidEndpointType},
		{"bad identity clientEndpoint", map[string]string{"K:serviceUri": "https://x", "K:clientEndpoint": "x"}, opts,
			"", nil},
		{"client id and resource id", map[string]string{
			"AzureSignalRConnectionString:serviceUri":                "https://x",
			"AzureSignalRConnectionString:credential":                "managedidentity",
			"AzureSignalRConnectionString:clientId":                  "c",
			"AzureSignalRConnectionString:managedIdentityResourceId": "r",
		}, opts, "setting AzureSignalRConnectionString: " + ErrManagedIdentityIDs.Error(), ErrManagedIdentityIDs},
		{"client id and resource id without credential", map[string]string{
			"AzureSignalRConnectionString:serviceUri":                "https://x",
			"AzureSignalRConnectionString:clientId":                  "c",
			"AzureSignalRConnectionString:managedIdentityResourceId": "r",
		}, opts, "setting AzureSignalRConnectionString: Cannot specify both 'clientId' and 'managedIdentityResourceId'", nil},
		{"two managed identity ids", map[string]string{
			"AzureSignalRConnectionString:serviceUri":              "https://x",
			"AzureSignalRConnectionString:credential":              "managedidentity",
			"AzureSignalRConnectionString:managedIdentityObjectId": "o",
			"AzureSignalRConnectionString:managedIdentityClientId": "c",
		}, opts, "setting AzureSignalRConnectionString: Only one of ['clientId', 'managedIdentityClientId', 'managedIdentityResourceId', or 'managedIdentityObjectId'] can be specified for managed identity.", ErrManagedIdentityIDs},
		{"object id without managed identity", map[string]string{
			"AzureSignalRConnectionString:serviceUri":              "https://x",
			"AzureSignalRConnectionString:managedIdentityObjectId": "o",
		}, opts, "setting AzureSignalRConnectionString: 'managedIdentityObjectId' is only supported when the credential type is 'managedidentity'.", nil},
		{"factory error", map[string]string{"AzureSignalRConnectionString:serviceUri": "https://x"},
			&Options{NewCredential: func(IdentitySettings) (azcore.TokenCredential, error) { return nil, errors.New("boom") }},
			"setting AzureSignalRConnectionString: boom", nil},
		{"factory returns nil", map[string]string{"AzureSignalRConnectionString:serviceUri": "https://x"},
			&Options{NewCredential: func(IdentitySettings) (azcore.TokenCredential, error) { return nil, nil }},
			"setting AzureSignalRConnectionString: Options.NewCredential returned no credential", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setting := ""
			if tt.name == "bad identity clientEndpoint" {
				setting = "K"
			}
			eps, err := FromMap(tt.settings).Resolve(setting, tt.opts)
			if err == nil {
				t.Fatalf("no error, got %v", eps)
			}
			if tt.want != "" && err.Error() != tt.want {
				t.Errorf("error %q\nwant  %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error leaks a secret: %v", err)
			}
		})
	}
}

func TestSettingsSources(t *testing.T) {
	s := FromEnv([]string{"A__B=1", "noequals", "=C=hidden", "X:Y=2=3"})
	if v, ok := s.Get("a:b"); !ok || v != "1" {
		t.Errorf("a:b = %q, %v", v, ok)
	}
	if v, _ := s.Get("x__y"); v != "2=3" {
		t.Errorf("x__y = %q", v)
	}
	if _, ok := s.Get("noequals"); ok {
		t.Error("entry without = was read")
	}
	var nilSettings *Settings
	if _, ok := nilSettings.Get("a"); ok {
		t.Error("nil Settings has a value")
	}

	t.Setenv("AzureSignalRConnectionString", cs1)
	eps, err := FromEnviron().Resolve("", nil)
	if err != nil || len(eps) != 1 || eps[0].AccessKey != "key1" {
		t.Errorf("FromEnviron: %v, %v", eps, err)
	}
}

func TestFromMapSameKeyDeterministic(t *testing.T) {
	m := map[string]string{"A:B": "colon", "A__B": "underscores", "a:b": "lower"}
	first, _ := FromMap(m).Get("a:b")
	for range 20 {
		if v, _ := FromMap(m).Get("A:B"); v != first {
			t.Fatalf("got %q then %q", first, v)
		}
	}
}

func TestEndpointType(t *testing.T) {
	for in, want := range map[string]EndpointType{"": Primary, "primary": Primary, "SECONDARY": Secondary, " Secondary ": Secondary} {
		got, err := ParseEndpointType(in)
		if err != nil || got != want {
			t.Errorf("ParseEndpointType(%q) = %v, %v", in, got, err)
		}
	}
	var typ EndpointType
	if err := typ.UnmarshalText([]byte("Secondary")); err != nil || typ != Secondary {
		t.Errorf("UnmarshalText: %v %v", typ, err)
	}
	if err := typ.UnmarshalText([]byte("backup")); err == nil {
		t.Error("UnmarshalText accepted backup")
	}
	if b, _ := Secondary.MarshalText(); string(b) != "Secondary" {
		t.Errorf("MarshalText = %s", b)
	}
}

func TestEndpointStringHasNoSecret(t *testing.T) {
	ep, err := NewEndpoint("n", Secondary, "Endpoint=https://x;AccessKey=SECRET", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := ep.String(); s != "[n](Secondary)https://x" {
		t.Errorf("String() = %q", s)
	}
}

func FuzzResolve(f *testing.F) {
	f.Add("AzureSignalRConnectionString", cs1, "Azure:SignalR:Endpoints:b:secondary", "Endpoint=http://b;AccessKey=k")
	f.Add("AzureSignalRConnectionString__serviceUri", "https://x", "AzureSignalRConnectionString__credential", "managedidentity")
	f.Add("Azure__SignalR__Endpoints__e__serviceUri", "http://[::1]:80", "Azure__SignalR__Endpoints__e__type", "secondary")
	f.Add("Azure:SignalR:Endpoints:", "x", "Azure:SignalR:Endpoints::primary", "Endpoint=https://y;AccessKey=k")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		opts, _ := fakeFactory()
		eps, err := FromMap(map[string]string{k1: v1, k2: v2}).Resolve("", opts)
		if err != nil {
			return
		}
		if len(eps) == 0 {
			t.Fatal("no endpoints and no error")
		}
		seen := map[string]bool{}
		primary := false
		for _, ep := range eps {
			if seen[ep.Endpoint] {
				t.Fatalf("duplicate endpoint %s", ep.Endpoint)
			}
			seen[ep.Endpoint] = true
			primary = primary || ep.Type == Primary
			if (ep.AccessKey == "") == (ep.Credential == nil) {
				t.Fatalf("endpoint %s: exactly one of key and credential expected", ep)
			}
			if !strings.HasSuffix(ep.ClientEndpoint, "/") || !strings.HasSuffix(ep.ServerEndpoint, "/") || !strings.HasSuffix(ep.AudienceBase, "/") {
				t.Fatalf("endpoint %+v: base URLs without trailing slash", ep)
			}
		}
		if !primary {
			t.Fatal("no primary endpoint and no error")
		}
	})
}

// Application credentials do not use managedIdentityResourceId, so it may stay set.
func TestIdentityValidateClientAndResourceID(t *testing.T) {
	for _, tt := range []struct {
		name string
		s    IdentitySettings
		ok   bool
	}{
		{"default credential", IdentitySettings{ClientID: "c", ManagedIdentityResourceID: "r"}, false},
		{"default credential with tenant", IdentitySettings{TenantID: "t", ClientID: "c", ManagedIdentityResourceID: "r"}, false},
		{"client secret", IdentitySettings{TenantID: "t", ClientID: "c", ClientSecret: "s", ManagedIdentityResourceID: "r"}, true},
		{"certificate file", IdentitySettings{TenantID: "t", ClientID: "c", ClientCertificatePath: "/c.pem", ManagedIdentityResourceID: "r"}, true},
		{"workload identity", IdentitySettings{Credential: CredentialWorkloadIdentity, ClientID: "c", ManagedIdentityResourceID: "r"}, true},
		{"resource id only", IdentitySettings{ManagedIdentityResourceID: "r"}, true},
	} {
		if err := tt.s.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

// App Service exposes the portal's "Connection strings" as CUSTOMCONNSTR_{name} (and other
// prefixes by type); .NET's environment provider reads them as ConnectionStrings:{name}.
func TestFromEnvConnectionStringPrefixes(t *testing.T) {
	for _, prefix := range []string{"CUSTOMCONNSTR_", "SQLAZURECONNSTR_", "SQLCONNSTR_", "MYSQLCONNSTR_"} {
		s := FromEnv([]string{prefix + "AzureSignalRConnectionString=" + cs1, "AzureSignalRConnectionString=Endpoint=https://two.service.signalr.net;AccessKey=key2;"})
		if v, ok := s.Get("ConnectionStrings:AzureSignalRConnectionString"); !ok || v != cs1 {
			t.Errorf("%s: ConnectionStrings:AzureSignalRConnectionString = %q, %v", prefix, v, ok)
		}
		eps, err := s.Resolve("", nil)
		if err != nil || len(eps) != 1 || eps[0].AccessKey != "key1" {
			t.Errorf("%s: Resolve = %v, %v; want the connection string of %sAzureSignalRConnectionString", prefix, eps, err, prefix)
		}
	}
}
