package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// The Azure SignalR emulator (asrs-emulator) keeps its upstream in a settings.json:
//
//	{"UpstreamSettings": {"Templates": [{"UrlTemplate": "http://localhost:7071/runtime/webhooks/signalr",
//	  "EventPattern": "*", "HubPattern": "*", "CategoryPattern": "*"}]}}
//
// Property names match case-insensitively, as .NET configuration binds them; other
// top-level sections are the emulator's own business and are ignored, but an unknown
// key inside a template is an error (a typo would otherwise silently match "*").

// LoadEmulatorSettings reads the emulator settings file at path.
func LoadEmulatorSettings(path string) ([]UpstreamRule, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	rules, err := ParseEmulatorSettings(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rules, nil
}

// ParseEmulatorSettings returns the upstream templates of an emulator settings.json,
// in order.
func ParseEmulatorSettings(data []byte) ([]UpstreamRule, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("not the emulator's settings.json: %w", err)
	}
	section, ok := lookupFold(top, "UpstreamSettings")
	if !ok {
		return nil, errors.New("no UpstreamSettings section (the emulator writes one with `asrs-emulator upstream init`)")
	}
	var us map[string]json.RawMessage
	if err := json.Unmarshal(section, &us); err != nil {
		return nil, fmt.Errorf("UpstreamSettings: %w", err)
	}
	raw, ok := lookupFold(us, "Templates")
	if !ok {
		return nil, nil
	}
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("UpstreamSettings.Templates: want a list of templates: %w", err)
	}
	rules := make([]UpstreamRule, 0, len(items))
	for i, item := range items {
		var r UpstreamRule
		for k, v := range item {
			var dst *string
			switch strings.ToLower(k) {
			case "urltemplate":
				dst = &r.URL
			case "hubpattern":
				dst = &r.Hub
			case "categorypattern":
				dst = &r.Category
			case "eventpattern":
				dst = &r.Event
			default:
				return nil, fmt.Errorf("UpstreamSettings.Templates[%d]: unknown key %q (UrlTemplate, HubPattern, CategoryPattern, EventPattern)", i, k)
			}
			if err := json.Unmarshal(v, dst); err != nil {
				return nil, fmt.Errorf("UpstreamSettings.Templates[%d].%s: want a string", i, k)
			}
		}
		if r.URL == "" {
			return nil, fmt.Errorf("UpstreamSettings.Templates[%d]: UrlTemplate is required", i)
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// lookupFold finds key in m ignoring letter case.
func lookupFold(m map[string]json.RawMessage, key string) (json.RawMessage, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}
