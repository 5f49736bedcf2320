package upstream

import (
	"strings"
	"testing"
)

// An invocation target is client input. In a path placeholder, "." and ".." are dot
// segments: every server normalizes them, so a client invoking ".." would send the
// signed request (and any ?code= key) to the parent path of the template.
func TestDotSegmentEventsNeverChangeThePath(t *testing.T) {
	r, err := compileRule(0, Rule{URLTemplate: "https://fn.example/api/{hub}/{event}?code=k"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []string{".", ".."} {
		got, _ := resolve([]rule{r}, "chat", CategoryMessages, ev)
		if got == "" {
			continue // refused: fine
		}
		path := strings.TrimPrefix(got, "https://fn.example")
		path, _, _ = strings.Cut(path, "?")
		for _, seg := range strings.Split(path, "/") {
			if seg == "." || seg == ".." {
				t.Errorf("event %q resolves to %q, which holds a dot segment", ev, got)
			}
		}
	}
	// Dots inside a name are not dot segments and stay as they are.
	if got, _ := resolve([]rule{r}, "chat", CategoryMessages, "a..b"); got != "https://fn.example/api/chat/a..b?code=k" {
		t.Errorf("a..b resolves to %q", got)
	}
}
