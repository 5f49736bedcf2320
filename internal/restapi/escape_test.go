package restapi

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
)

// A name holding a literal percent-escape ("50%41") travels as "50%2541"; the token's
// audience is signed over that escaped path and must match it, decoded once, not twice.
func TestLiteralPercentInNamesAuthenticates(t *testing.T) {
	e := newEnv(t)
	c := e.connect("chat", "c%41", "u%41", "json")
	e.reg.AddToGroup("chat", "g%41", "c%41")
	p := "/api/hubs/chat/"
	wantStatus(t, e.do(http.MethodPost, p+"groups/"+url.PathEscape("g%41")+"/:send", `{"target":"g"}`), http.StatusAccepted)
	wantStatus(t, e.do(http.MethodPost, p+"users/"+url.PathEscape("u%41")+"/:send", `{"target":"u"}`), http.StatusAccepted)
	wantStatus(t, e.do(http.MethodHead, p+"connections/"+url.PathEscape("c%41"), ""), http.StatusOK)
	if got := c.Targets(t); !slices.Equal(got, []string{"g", "u"}) {
		t.Fatalf("got %q", got)
	}
	// A token signed for the once-decoded look-alike ("gA") must not open "g%41".
	r := e.do(http.MethodPost, p+"groups/"+url.PathEscape("g%41")+"/:send", `{"target":"x"}`, withToken(e.token(p+"groups/gA/:send")))
	wantStatus(t, r, http.StatusUnauthorized)
}
