package client

import (
	"bufio"
	"bytes"
	"context"
	"strings"
	"testing"
)

func FuzzParseNegotiateResponse(f *testing.F) {
	for _, s := range []string{
		`{"url":"https://svc/client/?hub=chat","accessToken":"t"}`,
		`{"negotiateVersion":1,"connectionId":"a","connectionToken":"b","availableTransports":[{"transport":"WebSockets","transferFormats":["Text","Binary"]}]}`,
		`{"connectionId":"a"}`,
		`{"error":"nope"}`,
		`{"url":"ftp://x"}`,
		`{"negotiateVersion":1,"connectionId":"a"}`,
		`[]`, ``, `{"url":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := parseNegotiateResponse(body)
		if err != nil {
			return
		}
		if r.URL == "" && r.ConnectionID == "" {
			t.Fatal("accepted a response with neither url nor connectionId")
		}
		if r.URL == "" && r.connectionToken() == "" {
			t.Fatal("accepted a connection without a token")
		}
		_ = r.supports(WebSockets, true)
	})
}

func FuzzNegotiateURL(f *testing.F) {
	for _, s := range []string{"http://h/client/?hub=chat", "https://h/api", "http://h", "http://h/x?negotiateVersion=0&a=b", "ws://h", "::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, base string) {
		u, err := negotiateURL(base)
		if err != nil {
			return
		}
		if !strings.Contains(u, "negotiate") {
			t.Fatalf("negotiate URL %q of %q", u, base)
		}
		_ = connectURL(base, "tok")
	})
}

func TestNegotiateURL(t *testing.T) {
	tests := map[string]string{
		"http://h/client/?hub=chat":        "http://h/client/negotiate?hub=chat&negotiateVersion=1",
		"http://h/api":                     "http://h/api/negotiate?negotiateVersion=1",
		"https://h/api?negotiateVersion=0": "https://h/api/negotiate?negotiateVersion=0",
	}
	for in, want := range tests {
		if got, err := negotiateURL(in); err != nil || got != want {
			t.Errorf("negotiateURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if got := connectURL("http://h/client/?hub=chat", "a b"); got != "http://h/client/?hub=chat&id=a+b" {
		t.Errorf("connectURL = %q", got)
	}
	if got := connectURL("http://h/x", "t"); got != "http://h/x?id=t" {
		t.Errorf("connectURL = %q", got)
	}
}

func sseFrom(s string) *sseTransport {
	return &sseTransport{r: bufio.NewReaderSize(strings.NewReader(s), 16)}
}

func TestSSERead(t *testing.T) {
	tr := sseFrom(":\r\n\r\ndata: {\"type\":6}\x1e\r\n\r\ndata: a\r\ndata: b\r\n\r\nevent: x\r\ndata:" + strings.Repeat("z", 40) + "\n\n")
	want := []string{"{\"type\":6}\x1e", "a\nb", strings.Repeat("z", 40)}
	for _, w := range want {
		got, err := tr.read(context.Background())
		if err != nil || string(got) != w {
			t.Fatalf("read = %q, %v; want %q", got, err, w)
		}
	}
	if _, err := tr.read(context.Background()); err == nil {
		t.Fatal("read past the end succeeded")
	}
}

func FuzzSSERead(f *testing.F) {
	f.Add([]byte("data: x\r\n\r\n"))
	f.Add([]byte(":\r\n\r\ndata: a\ndata: b\n\n"))
	f.Add([]byte("data"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		tr := &sseTransport{r: bufio.NewReaderSize(bytes.NewReader(stream), 16)}
		for range 100 {
			b, err := tr.read(context.Background())
			if err != nil {
				return
			}
			if len(b) > len(stream) {
				t.Fatalf("event of %d bytes from a %d-byte stream", len(b), len(stream))
			}
		}
	})
}
