package protocol

import (
	"errors"
	"strings"
	"testing"
)

func TestParseHandshakeRequest(t *testing.T) {
	tests := []struct {
		in   string
		want HandshakeRequest
		rest string
	}{
		{"{\"protocol\":\"json\",\"version\":1}\x1e", HandshakeRequest{"json", 1}, ""},
		{"{\"protocol\":\"messagepack\",\"version\":2}\x1e\x02\x91\x06", HandshakeRequest{"messagepack", 2}, "\x02\x91\x06"},
		{" { \"version\" : 2 , \"extra\":[{}], \"protocol\" : \"json\" } \x1e{\"type\":6}\x1e", HandshakeRequest{"json", 2}, "{\"type\":6}\x1e"},
		{"{\"protocol\":\"blazorpack\",\"version\":9}\x1e", HandshakeRequest{"blazorpack", 9}, ""},
	}
	for _, tc := range tests {
		req, rest, err := ParseHandshakeRequest([]byte(tc.in))
		if err != nil || req != tc.want || string(rest) != tc.rest {
			t.Errorf("%q: %+v %q %v", tc.in, req, rest, err)
		}
	}
}

func TestParseHandshakeRequestErrors(t *testing.T) {
	if _, _, err := ParseHandshakeRequest([]byte(`{"protocol":"json","version":1}`)); err != ErrIncomplete {
		t.Errorf("without separator: %v", err)
	}
	if _, _, err := ParseHandshakeRequest(nil); err != ErrIncomplete {
		t.Errorf("empty: %v", err)
	}
	tests := []struct{ in, want string }{
		{`{"version":1}`, "missing required property protocol"},
		{`{"protocol":"json"}`, "missing required property version"},
		{`{"protocol":1,"version":1}`, "property protocol"},
		{`{"protocol":"json","version":"1"}`, "property version"},
		{`{"protocol":"json","version":-1}`, "out of range"},
		{`{"protocol":"json","version":1} {}`, "trailing data"},
		{`not json`, "expected '{'"},
		{``, "expected '{'"},
		{`{"protocol":"json",`, "unexpected end"},
	}
	for _, tc := range tests {
		_, rest, err := ParseHandshakeRequest([]byte(tc.in + "\x1e"))
		if err == nil || !errors.Is(err, ErrInvalidMessage) || !strings.Contains(err.Error(), tc.want) || rest != nil {
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestHandshakeResponse(t *testing.T) {
	if got := string(AppendHandshakeResponse(nil, "")); got != "{}\x1e" {
		t.Errorf("success response %q", got)
	}
	got := AppendHandshakeResponse([]byte("x"), "The protocol 'a\"b' is not supported.")
	if want := "x{\"error\":\"The protocol 'a\\\"b' is not supported.\"}\x1e"; string(got) != want {
		t.Errorf("error response %q, want %q", got, want)
	}
	errText, rest, err := ParseHandshakeResponse(got[1:])
	if err != nil || errText != "The protocol 'a\"b' is not supported." || len(rest) != 0 {
		t.Errorf("parse error response: %q %q %v", errText, rest, err)
	}
	errText, rest, err = ParseHandshakeResponse([]byte("{\"minorVersion\":1,\"error\":null}\x1e{\"type\":6}\x1e"))
	if err != nil || errText != "" || string(rest) != "{\"type\":6}\x1e" {
		t.Errorf("parse success response: %q %q %v", errText, rest, err)
	}
	if _, _, err := ParseHandshakeResponse([]byte("{}")); err != ErrIncomplete {
		t.Errorf("without separator: %v", err)
	}
	for _, in := range []string{"{\"type\":6}\x1e", "{\"error\":1}\x1e", "[]\x1e", "{}x\x1e"} {
		if _, _, err := ParseHandshakeResponse([]byte(in)); err == nil || !errors.Is(err, ErrInvalidMessage) {
			t.Errorf("%q: error %v", in, err)
		}
	}
	req := AppendHandshakeRequest(nil, HandshakeRequest{Protocol: "messagepack", Version: 2})
	if string(req) != "{\"protocol\":\"messagepack\",\"version\":2}\x1e" {
		t.Errorf("request %q", req)
	}
}
