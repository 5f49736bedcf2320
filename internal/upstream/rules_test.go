package upstream

import (
	"net/url"
	"strings"
	"testing"

	"github.com/signalbox-io/signalbox/auth"
)

func TestPatternMatching(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"*", "anything", true},
		{"", "anything", true},
		{"  *  ", "x", true},
		{"chat", "chat", true},
		{"chat", "CHAT", true},
		{"Chat", "chat", true},
		{"chat", "chat2", false},
		{"chat", "cha", false},
		{"a, b ,c", "b", true},
		{"a, b ,c", "C", true},
		{"a, b ,c", "d", false},
		{"a,*", "zzz", true},
		{",,", "", false},
		{", ,", "x", false},
		{"connections", "connections", true},
		{"connections", "messages", false},
	}
	for _, tt := range tests {
		if got := compilePattern(tt.pattern).match(tt.name); got != tt.want {
			t.Errorf("pattern %q match %q = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestRulesFirstMatchWins(t *testing.T) {
	rules := []Rule{
		{URLTemplate: "http://a/{event}", HubPattern: "chat", CategoryPattern: "messages", EventPattern: "send, broadcast"},
		{URLTemplate: "http://b/{hub}", HubPattern: "chat,news", CategoryPattern: "connections"},
		{URLTemplate: "http://c/{category}", HubPattern: "*", CategoryPattern: "*", EventPattern: "*"},
		{URLTemplate: "http://d/never"},
	}
	u, err := New(Options{Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ hub, cat, event, want string }{
		{"chat", "messages", "Send", "http://a/Send"},
		{"chat", "messages", "broadcast", "http://a/broadcast"},
		{"chat", "messages", "other", "http://c/messages"},
		{"news", "connections", "connected", "http://b/news"},
		{"chat", "connections", "disconnected", "http://b/chat"},
		{"other", "connections", "connected", "http://c/connections"},
	}
	for _, tt := range tests {
		if got, _ := resolve(u.rules, tt.hub, tt.cat, tt.event); got != tt.want {
			t.Errorf("resolve(%s,%s,%s) = %q, want %q", tt.hub, tt.cat, tt.event, got, tt.want)
		}
	}
	none, err := New(Options{Rules: []Rule{{URLTemplate: "http://a/", HubPattern: "chat"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := resolve(none.rules, "news", "messages", "x"); got != "" {
		t.Errorf("no rule should match, got %q", got)
	}
}

func TestURLPlaceholdersEscaped(t *testing.T) {
	r, err := compileRule(0, Rule{URLTemplate: "https://fn.example/api/{hub}/{category}/{event}?code=k"})
	if err != nil {
		t.Fatal(err)
	}
	got := r.url("chat", "messages", "a b/c?d#e")
	want := "https://fn.example/api/chat/messages/a%20b%2Fc%3Fd%23e?code=k"
	if got != want {
		t.Errorf("url = %q, want %q", got, want)
	}
}

func TestTemplateErrors(t *testing.T) {
	tests := []struct{ template, wantText string }{
		{"", "empty URL template"},
		{"localhost:7071/runtime/webhooks/signalr", "absolute http:// or https://"},
		{"/runtime/webhooks/signalr", "absolute http:// or https://"},
		{"ftp://host/x", "absolute http:// or https://"},
		{"http:///path", "has no host"},
		{"http://host/{hub}/{unknown}", "unknown placeholder"},
		{"http://host/{@Microsoft.KeyVault(SecretUri=x)}", "unknown placeholder"},
		{"http://ho st/%zz", "not a valid URL"},
	}
	for _, tt := range tests {
		_, err := New(Options{Rules: []Rule{{URLTemplate: "http://ok/"}, {URLTemplate: tt.template}}})
		if err == nil {
			t.Errorf("template %q: no error", tt.template)
			continue
		}
		if !strings.Contains(err.Error(), tt.wantText) || !strings.Contains(err.Error(), "rule 2") {
			t.Errorf("template %q: error %q should contain %q and name rule 2", tt.template, err, tt.wantText)
		}
		if tt.template != "" && !strings.Contains(err.Error(), tt.template) {
			t.Errorf("template %q: error %q does not name the template", tt.template, err)
		}
	}
	for _, ok := range []string{"http://localhost:7071/runtime/webhooks/signalr", "https://x.azurewebsites.net/runtime/webhooks/signalr?code=abc==", "http://{hub}.local/{event}"} {
		if _, err := New(Options{Rules: ParseRules([]string{ok})}); err != nil {
			t.Errorf("template %q: unexpected error %v", ok, err)
		}
	}
}

func TestParseRules(t *testing.T) {
	rules := ParseRules([]string{"http://a/", "http://b/"})
	if len(rules) != 2 || rules[0].URLTemplate != "http://a/" || rules[1].HubPattern != "*" || rules[1].EventPattern != "*" {
		t.Fatalf("ParseRules = %+v", rules)
	}
}

func TestRedactURL(t *testing.T) {
	tests := map[string]string{
		"https://fn.example/runtime/webhooks/signalr?code=SECRET": "https://fn.example/runtime/webhooks/signalr",
		"http://user:pw@host/p#frag":                              "http://host/p",
		"http://host/p":                                           "http://host/p",
		"::bad?code=SECRET":                                       "::bad",
	}
	for in, want := range tests {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCleanQuery(t *testing.T) {
	tests := map[string]string{
		"":                                "",
		"?":                               "",
		"?hub=chat&access_token=abc&id=1": "?hub=chat&id=1",
		"hub=chat&access_token=abc":       "?hub=chat",
		"access_token=a&access_token=b":   "",
		"?ACCESS_TOKEN=a&x=1":             "?x=1",
		"?access%5Ftoken=a&x=%20y":        "?x=%20y",
		"?x=1&&y=2":                       "?x=1&y=2",
		"?my_access_token=keep":           "?my_access_token=keep",
		"?hub=chat&id=abc&negotiateVersion=1&a=b": "?hub=chat&id=abc&negotiateVersion=1&a=b",
	}
	for in, want := range tests {
		if got := cleanQuery(in); got != want {
			t.Errorf("cleanQuery(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFormatClaimsAndHeaderValue(t *testing.T) {
	got := formatClaims([]auth.Claim{{Type: "role", Value: "admin"}, {Type: "email", Value: "a@b\r\nX-Evil: 1"}})
	if want := "role: admin, email: a@b  X-Evil: 1"; got != want {
		t.Errorf("formatClaims = %q, want %q", got, want)
	}
	got = formatClaims([]auth.Claim{{Type: "name", Value: "x, role: admin"}, {Type: "a,b", Value: "c"}})
	if want := "name: x%2C role: admin, a%2Cb: c"; got != want {
		t.Errorf("formatClaims = %q, want %q (no claim injection through commas)", got, want)
	}
	if formatClaims(nil) != "" {
		t.Error("no claims should give an empty header")
	}
	if got := headerValue("a\tb\x00c\x7f"); got != "a\tb c " {
		t.Errorf("headerValue = %q", got)
	}
}

func FuzzCleanQuery(f *testing.F) {
	for _, s := range []string{"", "?hub=chat&access_token=abc", "access%5Ftoken=x", "%zz=1&access_token", "a=b&&c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		out := cleanQuery(q)
		if out != "" && out[0] != '?' {
			t.Fatalf("cleanQuery(%q) = %q lacks '?'", q, out)
		}
		for part := range strings.SplitSeq(strings.TrimPrefix(out, "?"), "&") {
			key, _, _ := strings.Cut(part, "=")
			if isAccessTokenKey(key) {
				t.Fatalf("cleanQuery(%q) = %q keeps an access_token", q, out)
			}
		}
	})
}

func FuzzPattern(f *testing.F) {
	for _, s := range []string{"*", "a,b", " a , B ", ",,", ""} {
		f.Add(s, "b")
	}
	f.Fuzz(func(t *testing.T, p, name string) {
		pt := compilePattern(p)
		got := pt.match(name)
		if strings.TrimSpace(p) == "*" && !got {
			t.Fatalf("pattern %q must match %q", p, name)
		}
		if pt.match(strings.ToUpper(name)) != pt.match(strings.ToLower(name)) && name == strings.ToLower(name) && strings.ToUpper(name) != name {
			// Unicode case folding may differ from ToUpper for some runes; only ASCII is asserted.
			for _, r := range name {
				if r > 127 {
					return
				}
			}
			t.Fatalf("pattern %q is case-sensitive for %q", p, name)
		}
	})
}

// Regression (issue 7, found 4): placeholders were path-escaped inside the query too, so
// a target "x&code=evil&admin=1" added parameters to the signed upstream request.
func TestURLQueryPlaceholdersEscapedAsQueryValues(t *testing.T) {
	r, err := compileRule(0, Rule{URLTemplate: "https://fn.example/api/{event}?code=KEY&hub={hub}&event={event}"})
	if err != nil {
		t.Fatal(err)
	}
	evil := "x&code=evil&admin=1+2 #f"
	got := r.url("chat", "messages", evil)
	u, err := url.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if len(q) != 3 || q.Get("code") != "KEY" || q.Get("event") != evil || q.Get("hub") != "chat" || u.Fragment != "" {
		t.Fatalf("url %q: query %v, fragment %q", got, q, u.Fragment)
	}
	if u.Path != "/api/"+evil {
		t.Fatalf("path %q", u.Path)
	}
}
