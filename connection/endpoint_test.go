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
