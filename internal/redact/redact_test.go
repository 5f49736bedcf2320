package redact

import "testing"

func TestURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://localhost:7071/runtime/webhooks/signalr", "http://localhost:7071/runtime/webhooks/signalr"},
		{"http://localhost:7071/runtime/webhooks/signalr?code=SECRET", "http://localhost:7071/runtime/webhooks/signalr?***"},
		{"redis://user:p@ss@redis:6379/0", "redis://***@redis:6379/0"},
		{"https://h/{hub}/{event}#frag", "https://h/{hub}/{event}?***"},
		{"http://a@b/path@x?k=v", "http://***@b/path@x?***"}, // an @ in the path is not user info
		{"not a url ?code=x", "not a url ?***"},
		{"", ""},
	} {
		if got := URL(tc.in); got != tc.want {
			t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
