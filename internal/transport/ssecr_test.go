package transport

import (
	"strings"
	"testing"
)

// eventSourceData parses one event the way browsers do (HTML EventSource: CRLF, a lone
// CR and a lone LF all end a line; data lines are joined with LF).
func eventSourceData(ev string) string {
	ev = strings.ReplaceAll(ev, "\r\n", "\n")
	ev = strings.ReplaceAll(ev, "\r", "\n")
	var data []string
	for _, line := range strings.Split(ev, "\n") {
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			data = append(data, d)
		}
	}
	return strings.Join(data, "\n")
}

// A lone CR inside a payload (JSON whitespace in arguments relayed verbatim) ends a line
// for the browser, so it must start a new data line, or the rest of the message is lost.
func TestSSEEventWithLoneCR(t *testing.T) {
	for _, payload := range []string{"a\rb", "{\"type\":1,\"target\":\"t\",\"arguments\":[{\"a\":\r1}]}\x1e"} {
		got := eventSourceData(string(AppendSSEEvent(nil, []byte(payload))))
		if want := strings.ReplaceAll(payload, "\r", "\n"); got != want {
			t.Errorf("%q: the browser reads %q, want %q", payload, got, want)
		}
	}
}
