package functions

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/signalbox-io/signalbox/protocol"
)

func TestInvocationContextJSON(t *testing.T) {
	ic := InvocationContext{
		Arguments: []protocol.Value{protocol.JSONValue([]byte(`"hi"`)), protocol.JSONValue([]byte(`{"a":1}`))},
		Category:  "messages", Event: "send", Hub: "chat", ConnectionID: "c1", UserID: "u1",
		Headers: map[string]string{"X-Asrs-Hub": "chat"}, Claims: map[string]string{"role": "admin"},
		InvocationID: "not serialised",
	}
	b, err := json.Marshal(ic)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Arguments":["hi",{"a":1}],"Error":"","Category":"messages","Event":"send","Hub":"chat","ConnectionId":"c1","UserId":"u1","Headers":{"X-Asrs-Hub":"chat"},"Query":null,"Claims":{"role":"admin"}}`
	if string(b) != want {
		t.Fatalf("JSON\n got %s\nwant %s", b, want)
	}
	var back InvocationContext
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	var s string
	if err := back.Arguments[0].Decode(&s); err != nil || s != "hi" {
		t.Fatalf("argument 0 = %q, %v", s, err)
	}
	if back.ConnectionID != "c1" || back.UserID != "u1" || back.Claims["role"] != "admin" || back.Query != nil || back.InvocationID != "" {
		t.Fatalf("round trip = %+v", back)
	}
	// The isolated worker's form: StringValues arrays, Category as an enum name.
	iso := `{"Arguments":[],"Category":"Messages","Event":"e","Hub":"h","ConnectionId":"c","Headers":{"a":["1","2"]},"Query":{"q":["x"]}}`
	if err := json.Unmarshal([]byte(iso), &back); err != nil {
		t.Fatal(err)
	}
	if back.Category != "messages" || back.Headers["a"] != "1,2" || back.Query["q"] != "x" || back.Header("A") != "1,2" {
		t.Fatalf("isolated form = %+v", back)
	}
	if err := json.Unmarshal([]byte(`{"Headers":{"a":1}}`), &back); err == nil {
		t.Fatal("a numeric header value must be an error")
	}
}

func TestClaimsAndQueryParsing(t *testing.T) {
	h := http.Header{}
	if parseClaims(h) != nil || parseClientQuery(h) != nil {
		t.Fatal("absent headers must give nil maps")
	}
	h.Set(HeaderUserClaims, "sub: alice,role: a, role: b,noseparator, x: y: z,  name :  Al ")
	c := parseClaims(h)
	if len(c) != 3 || c["sub"] != "alice" || c["role"] != "a" || c["name"] != "Al" {
		t.Fatalf("claims = %v", c)
	}
	h.Set(HeaderClientQuery, "?id=1&id=2&t=%20x")
	q := parseClientQuery(h)
	if q["id"] != "1,2" || q["t"] != " x" {
		t.Fatalf("query = %v", q)
	}
	hs := requestHeaders(http.Header{"Content-Type": {"a"}, "Content-Length": {"1"}, "X-A": {"1", "2"}})
	if len(hs) != 1 || hs["X-A"] != "1,2" {
		t.Fatalf("headers = %v", hs)
	}
}

func FuzzInvocationContextJSON(f *testing.F) {
	for _, s := range []string{
		`{"Arguments":[1,"a"],"Category":"messages","Event":"e","Hub":"h","ConnectionId":"c","UserId":"u","Headers":{"a":"b"},"Query":null,"Claims":{}}`,
		`{"Headers":{"a":["1"]}}`, `{}`, `null`, `[`, `{"Arguments":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var ic InvocationContext
		if err := json.Unmarshal(data, &ic); err != nil {
			return
		}
		b, err := json.Marshal(ic)
		if err != nil {
			t.Fatalf("re-marshal: %v", err)
		}
		var again InvocationContext
		if err := json.Unmarshal(b, &again); err != nil {
			t.Fatalf("round trip: %v (%s)", err, b)
		}
		if again.ConnectionID != ic.ConnectionID || len(again.Arguments) != len(ic.Arguments) || !strings.EqualFold(again.Category, ic.Category) {
			t.Fatalf("round trip changed %+v into %+v", ic, again)
		}
	})
}
