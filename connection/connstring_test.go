package connection

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseConnectionString(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want ConnectionString
	}{
		{"minimal", "Endpoint=https://x.service.signalr.net;AccessKey=abc;Version=1.0;",
			ConnectionString{Endpoint: "https://x.service.signalr.net", AccessKey: "abc", Version: "1.0"}},
		{"no trailing separator", "Endpoint=https://x.service.signalr.net;AccessKey=abc",
			ConnectionString{Endpoint: "https://x.service.signalr.net", AccessKey: "abc", Version: "1.0"}},
		{"keys case-insensitive", "ENDPOINT=https://X.Service.SignalR.net/;accesskey=abc;vErSiOn=1.0",
			ConnectionString{Endpoint: "https://x.service.signalr.net", AccessKey: "abc", Version: "1.0"}},
		{"whitespace trimmed, split at first =", "  Endpoint = https://x/ ;  AccessKey = a=b== ; ",
			ConnectionString{Endpoint: "https://x", AccessKey: "a=b==", Version: "1.0"}},
		{"parts without = ignored", "Endpoint=https://x;junk;AccessKey=k",
			ConnectionString{Endpoint: "https://x", AccessKey: "k", Version: "1.0"}},
		{"port key applied", "Endpoint=http://localhost;Port=8080;AccessKey=k;Version=1.0;",
			ConnectionString{Endpoint: "http://localhost:8080", AccessKey: "k", Version: "1.0", Port: 8080}},
		{"port key overrides URI port", "Endpoint=http://localhost:1234;Port=8888;AccessKey=k",
			ConnectionString{Endpoint: "http://localhost:8888", AccessKey: "k", Version: "1.0", Port: 8888}},
		{"port in URI kept", "Endpoint=http://127.0.0.1:8888;AccessKey=k",
			ConnectionString{Endpoint: "http://127.0.0.1:8888", AccessKey: "k", Version: "1.0"}},
		{"default port dropped", "Endpoint=https://x:443;AccessKey=k",
			ConnectionString{Endpoint: "https://x", AccessKey: "k", Version: "1.0"}},
		{"default port key dropped from id", "Endpoint=http://x;Port=80;AccessKey=k",
			ConnectionString{Endpoint: "http://x", AccessKey: "k", Version: "1.0", Port: 80}},
		{"ipv6 with port", "Endpoint=http://[::1];Port=9000;AccessKey=k",
			ConnectionString{Endpoint: "http://[::1]:9000", AccessKey: "k", Version: "1.0", Port: 9000}},
		{"path kept", "Endpoint=https://gw.example.com/signalr/;AccessKey=k",
			ConnectionString{Endpoint: "https://gw.example.com/signalr", AccessKey: "k", Version: "1.0"}},
		{"preview version", "Endpoint=https://x;AccessKey=k;Version=1.1-preview",
			ConnectionString{Endpoint: "https://x", AccessKey: "k", Version: "1.1-preview"}},
		{"client and server endpoints", "Endpoint=https://x;AccessKey=k;ClientEndpoint=https://client.example.com;ServerEndpoint=http://10.0.0.4:8080/base",
			ConnectionString{Endpoint: "https://x", AccessKey: "k", Version: "1.0",
				ClientEndpoint: "https://client.example.com/", ServerEndpoint: "http://10.0.0.4:8080/base/"}},
		{"authtype azure", "Endpoint=https://x;AuthType=Azure",
			ConnectionString{Endpoint: "https://x", Version: "1.0", AuthType: "azure"}},
		{"authtype azure.msi", "Endpoint=https://x;AuthType=azure.msi;ClientId=cid",
			ConnectionString{Endpoint: "https://x", Version: "1.0", AuthType: "azure.msi", ClientID: "cid"}},
		{"authtype azure.app secret", "Endpoint=https://x;AuthType=azure.app;ClientId=cid;TenantId=tid;ClientSecret=sec",
			ConnectionString{Endpoint: "https://x", Version: "1.0", AuthType: "azure.app", ClientID: "cid", TenantID: "tid", ClientSecret: "sec"}},
		{"authtype azure.app cert", "Endpoint=https://x;AuthType=AZURE.APP;ClientId=cid;TenantId=tid;ClientCert=/c.pem",
			ConnectionString{Endpoint: "https://x", Version: "1.0", AuthType: "azure.app", ClientID: "cid", TenantID: "tid", ClientCert: "/c.pem"}},
		{"authtype aad system", "Endpoint=https://x;AuthType=aad",
			ConnectionString{Endpoint: "https://x", Version: "1.0", AuthType: "aad"}},
		{"unknown authtype means access key", "Endpoint=https://x;AuthType=other;AccessKey=k",
			ConnectionString{Endpoint: "https://x", Version: "1.0", AccessKey: "k"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConnectionString(tt.in)
			if err != nil {
				t.Fatalf("ParseConnectionString: %v", err)
			}
			if *got != tt.want {
				t.Errorf("got  %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestParseConnectionStringErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "Connection string missing required properties endpoint."},
		{"one part", "Endpoint=https://x;", "Connection string missing required properties endpoint."},
		{"no endpoint", "AccessKey=SECRET;Version=1.0", "Connection string missing required properties endpoint."},
		{"empty endpoint", "Endpoint=;AccessKey=SECRET", "Connection string missing required properties endpoint."},
		{"relative endpoint", "Endpoint=x.service.signalr.net;AccessKey=SECRET", "Invalid value for endpoint property, it must be a valid URI."},
		{"ftp endpoint", "Endpoint=ftp://x;AccessKey=SECRET", "Invalid value for endpoint property, it must be a valid URI."},
		{"endpoint with query", "Endpoint=https://x/?a=b;AccessKey=SECRET", "Invalid value for endpoint property, it must be a valid URI."},
		{"endpoint bad port", "Endpoint=https://x:99999;AccessKey=SECRET", "Invalid value for endpoint property, it must be a valid URI."},
		{"port zero", "Endpoint=https://x;Port=0;AccessKey=SECRET", "Invalid value for port property, it must be an positive integer between (0, 65536)."},
		{"port too big", "Endpoint=https://x;Port=65536;AccessKey=SECRET", "Invalid value for port property, it must be an positive integer between (0, 65536)."},
		{"port negative", "Endpoint=https://x;Port=-1;AccessKey=SECRET", "Invalid value for port property, it must be an positive integer between (0, 65536)."},
		{"port text", "Endpoint=https://x;Port=eighty;AccessKey=SECRET", "Invalid value for port property, it must be an positive integer between (0, 65536)."},
		{"version 2", "Endpoint=https://x;AccessKey=SECRET;Version=2.0", "Version 2.0 is not supported."},
		{"version garbage", "Endpoint=https://x;AccessKey=SECRET;Version=1.", "Version 1. is not supported."},
		{"duplicate", "Endpoint=https://x;endpoint=https://y;AccessKey=SECRET", "Duplicate properties found in connection string: endpoint."},
		{"duplicate key", "Endpoint=https://x;AccessKey=SECRET;ACCESSKEY=SECRET", "Duplicate properties found in connection string: accesskey."},
		{"no access key", "Endpoint=https://x;Version=1.0", "accesskey is required."},
		{"empty access key", "Endpoint=https://x;AccessKey=", "accesskey is required."},
		{"bad client endpoint", "Endpoint=https://x;AccessKey=SECRET;ClientEndpoint=nope", "Invalid value for clientEndpoint property, it must be a valid URI."},
		{"bad server endpoint", "Endpoint=https://x;AccessKey=SECRET;ServerEndpoint=ws://x", "Invalid value for serverEndpoint property, it must be a valid URI."},
		{"app without client id", "Endpoint=https://x;AuthType=azure.app;TenantId=t;ClientSecret=SECRET", "Connection string missing required properties clientId."},
		{"app without tenant id", "Endpoint=https://x;AuthType=azure.app;ClientId=c;ClientSecret=SECRET", "Connection string missing required properties tenantId."},
		{"app without secret or cert", "Endpoint=https://x;AuthType=azure.app;ClientId=c;TenantId=t", "Connection string missing required properties clientSecret or clientCert."},
		{"aad app without secret or cert", "Endpoint=https://x;AuthType=aad;ClientId=c;TenantId=t", "Connection string missing required properties clientSecret or clientCert."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConnectionString(tt.in)
			if err == nil {
				t.Fatalf("no error, got %+v", got)
			}
			if err.Error() != tt.want {
				t.Errorf("error %q, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error leaks a secret: %q", err)
			}
		})
	}
}

func TestConnectionStringIdentity(t *testing.T) {
	tests := []struct {
		in     string
		want   IdentitySettings
		wantOK bool
	}{
		{"Endpoint=https://x;AccessKey=k", IdentitySettings{}, false},
		{"Endpoint=https://x;AuthType=azure", IdentitySettings{ServiceURI: "https://x"}, true},
		{"Endpoint=https://x;AuthType=azure.msi", IdentitySettings{ServiceURI: "https://x", Credential: "managedidentity"}, true},
		{"Endpoint=https://x;AuthType=azure.msi;ClientId=c", IdentitySettings{ServiceURI: "https://x", Credential: "managedidentity", ClientID: "c"}, true},
		{"Endpoint=https://x;AuthType=azure.app;ClientId=c;TenantId=t;ClientSecret=s",
			IdentitySettings{ServiceURI: "https://x", ClientID: "c", TenantID: "t", ClientSecret: "s"}, true},
		{"Endpoint=https://x;AuthType=azure.app;ClientId=c;TenantId=t;ClientCert=/p.pem",
			IdentitySettings{ServiceURI: "https://x", ClientID: "c", TenantID: "t", ClientCertificatePath: "/p.pem"}, true},
		{"Endpoint=https://x;AuthType=aad", IdentitySettings{ServiceURI: "https://x", Credential: "managedidentity"}, true},
		{"Endpoint=https://x;AuthType=aad;ClientId=c", IdentitySettings{ServiceURI: "https://x", Credential: "managedidentity", ClientID: "c"}, true},
		{"Endpoint=https://x;AuthType=aad;ClientId=c;TenantId=t;ClientSecret=s",
			IdentitySettings{ServiceURI: "https://x", ClientID: "c", TenantID: "t", ClientSecret: "s"}, true},
	}
	for _, tt := range tests {
		cs, err := ParseConnectionString(tt.in)
		if err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		got, ok := cs.Identity()
		if ok != tt.wantOK || !equalIdentity(got, tt.want) {
			t.Errorf("%s: Identity() = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func equalIdentity(a, b IdentitySettings) bool { return reflect.DeepEqual(a, b) }

func FuzzParseConnectionString(f *testing.F) {
	for _, s := range []string{
		"Endpoint=https://x.service.signalr.net;AccessKey=abc;Version=1.0;",
		"Endpoint=http://localhost;Port=8888;AccessKey=k;Version=1.0;",
		"Endpoint=https://x;AuthType=azure.app;ClientId=c;TenantId=t;ClientSecret=s",
		"Endpoint=https://x;AccessKey=k;ClientEndpoint=https://c;ServerEndpoint=http://[::1]:80/p",
		"Endpoint=http://[::1];Port=9;AccessKey==;",
		";;;=;Endpoint=;",
		"endpoint=HTTPS://X:0443/a/b/;accesskey=k;version=1.2.3-x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cs, err := ParseConnectionString(s)
		if err != nil {
			return
		}
		if !strings.HasPrefix(cs.Endpoint, "http://") && !strings.HasPrefix(cs.Endpoint, "https://") {
			t.Fatalf("endpoint %q is not http(s)", cs.Endpoint)
		}
		if strings.HasSuffix(cs.Endpoint, "/") {
			t.Fatalf("endpoint %q ends with /", cs.Endpoint)
		}
		if cs.AuthType == "" && cs.AccessKey == "" {
			t.Fatal("access-key connection string without key")
		}
		// The normalised endpoint parses again to itself.
		again, err := ParseConnectionString("Endpoint=" + cs.Endpoint + ";AccessKey=k")
		if err != nil {
			t.Fatalf("normalised endpoint %q does not parse: %v", cs.Endpoint, err)
		}
		if again.Endpoint != cs.Endpoint {
			t.Fatalf("normalisation not stable: %q -> %q", cs.Endpoint, again.Endpoint)
		}
	})
}
