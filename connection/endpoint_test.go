package connection

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// An Endpoint carries its access key; no generic way of printing or encoding it may show it.
func TestEndpointDoesNotExposeAccessKey(t *testing.T) {
	ep, err := NewEndpoint("east", Secondary, "Endpoint=https://x.service.signalr.net;AccessKey=SECRET-KEY;Version=1.0;", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(ep)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got["endpoint"] != "https://x.service.signalr.net" || got["name"] != "east" || got["endpointType"] != "Secondary" {
		t.Errorf("JSON %s lacks endpoint, name or endpointType", b)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "endpoint", ep)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("m", "endpoint", ep)
	for name, out := range map[string]string{
		"json.Marshal": string(b),
		"slog":         buf.String(),
		"%v":           fmt.Sprintf("%v", ep),
		"%+v":          fmt.Sprintf("%+v", ep),
		"%#v":          fmt.Sprintf("%#v", ep),
	} {
		if strings.Contains(out, "SECRET-KEY") {
			t.Errorf("%s shows the access key: %s", name, out)
		}
	}
}

// Parsed settings hold secrets too (access key, client secret, pipeline token): printing or
// logging them must not show those.
func TestSettingsTypesDoNotExposeSecrets(t *testing.T) {
	cs, err := ParseConnectionString("Endpoint=https://x.service.signalr.net;AuthType=azure.app;ClientId=c;TenantId=t;ClientSecret=SECRET-1;AccessKey=SECRET-2")
	if err != nil {
		t.Fatal(err)
	}
	id, _ := cs.Identity()
	id.SystemAccessToken = "SECRET-3"
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "cs", cs, "id", id)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("m", "cs", cs, "id", id)
	outs := map[string]string{"slog": buf.String()}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		outs[verb+" cs"] = fmt.Sprintf(verb, cs)
		outs[verb+" *cs"] = fmt.Sprintf(verb, *cs)
		outs[verb+" id"] = fmt.Sprintf(verb, id)
	}
	for name, out := range outs {
		if strings.Contains(out, "SECRET") {
			t.Errorf("%s shows a secret: %s", name, out)
		}
	}
	if s := fmt.Sprint(cs); !strings.Contains(s, "https://x.service.signalr.net") {
		t.Errorf("String() %q does not name the endpoint", s)
	}
}
