package restapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/auth"
)

func TestGenerateToken(t *testing.T) {
	e := newEnv(t)
	w := e.do(http.MethodPost, "/api/hubs/Chat/:generateToken?userId=u1&minutesToExpire=5&api-version=2022-11-01", "")
	wantStatus(t, w, http.StatusOK)
	var got struct{ Token string }
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || got.Token != "tok-chat-u1" {
		t.Fatalf("body %q (%v)", w.Body.String(), err)
	}
	wantStatus(t, e.do(http.MethodPost, "/api/hubs/chat/:generateToken?application=App", ""), http.StatusOK)
	want := []issued{{"chat", "u1", 5 * time.Minute}, {"app_chat", "", time.Hour}}
	if !slices.Equal(e.issued, want) {
		t.Fatalf("issued %+v, want %+v", e.issued, want)
	}
	for _, bad := range []string{"0", "-1", "abc", "1.5"} {
		wantStatus(t, e.do(http.MethodPost, "/api/hubs/chat/:generateToken?minutesToExpire="+bad, ""), http.StatusBadRequest)
	}
	if len(e.issued) != 2 {
		t.Fatal("a rejected request issued a token")
	}

	noIssuer := New(Options{Hubs: e.node, Validator: &auth.Validator{Keys: []string{testKey}}})
	r := httptest.NewRequest(http.MethodPost, "http://example.com/api/hubs/chat/:generateToken", nil)
	r.Header.Set("Authorization", "Bearer "+e.token("/api/hubs/chat/:generateToken"))
	rw := httptest.NewRecorder()
	noIssuer.ServeHTTP(rw, r)
	wantStatus(t, rw, http.StatusNotImplemented)
}

func TestListGroupConnections(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"c5", "c1", "c4", "c2", "c3"} {
		user := ""
		if id != "c3" {
			user = "u-" + id
		}
		e.connect("chat", id, user, "json")
		e.reg.AddToGroup("chat", "g", id)
	}
	e.connect("chat", "other", "", "json")

	type page struct {
		Value []struct {
			ConnectionID string  `json:"connectionId"`
			UserID       *string `json:"userId"`
		}
		NextLink string
	}
	fetch := func(target string) page {
		t.Helper()
		w := e.do(http.MethodGet, target, "")
		wantStatus(t, w, http.StatusOK)
		var p page
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// Follow nextLink until it runs out; it must be absolute and keep api-version.
	collect := func(target string) ([]string, int) {
		var ids []string
		pages := 0
		for target != "" {
			p := fetch(target)
			pages++
			for _, v := range p.Value {
				ids = append(ids, v.ConnectionID)
				if (v.UserID == nil) != (v.ConnectionID == "c3") {
					t.Errorf("%s userId %v", v.ConnectionID, v.UserID)
				}
			}
			target = ""
			if p.NextLink != "" {
				u, err := url.Parse(p.NextLink)
				if err != nil || u.Scheme != "http" || u.Host != "example.com" || u.Query().Get("api-version") != "2024-12-01" {
					t.Fatalf("nextLink %q", p.NextLink)
				}
				target = u.RequestURI()
			}
			if pages > 10 {
				t.Fatal("paging does not end")
			}
		}
		return ids, pages
	}
	base := "/api/hubs/chat/groups/g/connections?api-version=2024-12-01"
	all := []string{"c1", "c2", "c3", "c4", "c5"}
	if ids, pages := collect(base); !slices.Equal(ids, all) || pages != 1 {
		t.Errorf("default paging: %v in %d pages", ids, pages)
	}
	if ids, pages := collect(base + "&maxpagesize=2"); !slices.Equal(ids, all) || pages != 3 {
		t.Errorf("maxpagesize=2: %v in %d pages", ids, pages)
	}
	if ids, _ := collect(base + "&maxpagesize=2&top=3"); !slices.Equal(ids, all[:3]) {
		t.Errorf("top=3: %v", ids)
	}
	w := e.do(http.MethodGet, base+"&maxpagesize=1", "", func(r *http.Request) {
		r.Header.Set("X-Forwarded-Proto", "https, http")
		r.Header.Set("X-Forwarded-Host", "public.example.net")
	})
	wantStatus(t, w, http.StatusOK)
	var fp page
	if err := json.Unmarshal(w.Body.Bytes(), &fp); err != nil || !strings.HasPrefix(fp.NextLink, "https://public.example.net/api/hubs/chat/groups/g/connections?") {
		t.Errorf("forwarded nextLink %q (%v)", fp.NextLink, err)
	}
	if p := fetch("/api/hubs/chat/groups/empty/connections"); len(p.Value) != 0 || p.NextLink != "" {
		t.Errorf("empty group: %+v", p)
	}
	for _, bad := range []string{"maxpagesize=0", "maxpagesize=201", "top=-1", "top=x", "continuationToken=!!"} {
		wantStatus(t, e.do(http.MethodGet, base+"&"+bad, ""), http.StatusBadRequest)
	}
	// The body must be {"value":[]} rather than null for an empty group.
	if w := e.do(http.MethodGet, "/api/hubs/chat/groups/none/connections", ""); !strings.Contains(w.Body.String(), `"value":[]`) {
		t.Errorf("empty listing body %q", w.Body.String())
	}
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	c := e.connect("chat", "c", "", "json")
	target := "/api/hubs/chat/:send"
	otherHub := e.token("/api/hubs/other/:send")
	wrongKey, err := auth.NewToken("another-key-0123456789abcdefghij", auth.TokenOptions{Audience: "http://example.com" + target})
	if err != nil {
		t.Fatal(err)
	}
	expired, err := auth.NewToken(testKey, auth.TokenOptions{Audience: "http://example.com" + target,
		Now: func() time.Time { return time.Now().Add(-3 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]reqOpt{
		"none":      noAuth(),
		"garbage":   withToken("not-a-jwt"),
		"other hub": withToken(otherHub),
		"wrong key": withToken(wrongKey),
		"expired":   withToken(expired),
	}
	for name, opt := range cases {
		t.Run(name, func(t *testing.T) {
			w := e.do(http.MethodPost, target, `{"target":"t"}`, opt)
			wantStatus(t, w, http.StatusUnauthorized)
			if body := w.Body.String(); strings.Contains(body, "eyJ") || len(body) > 64 {
				t.Errorf("401 body %q may echo the token", body)
			}
		})
	}
	if n := len(c.Frames()); n != 0 {
		t.Fatal("an unauthenticated send was delivered")
	}
	// The token from the query works too (auth.TokenFromRequest), as for clients.
	w := e.do(http.MethodPost, target+"?access_token="+e.token(target), `{"target":"t"}`, noAuth())
	wantStatus(t, w, http.StatusAccepted)
	// A nil Validator rejects everything.
	h := New(Options{Hubs: e.node})
	r := httptest.NewRequest(http.MethodPost, "http://example.com"+target, strings.NewReader(`{"target":"t"}`))
	r.Header.Set("Authorization", "Bearer "+e.token(target))
	rw := httptest.NewRecorder()
	h.ServeHTTP(rw, r)
	wantStatus(t, rw, http.StatusUnauthorized)
}

func TestValidation(t *testing.T) {
	e := newEnv(t)
	send := `{"target":"t"}`
	cases := []struct{ method, target, body string }{
		{http.MethodPost, "/api/hubs/1bad/:send", send},
		{http.MethodPost, "/api/hubs/bad-hub/:send", send},
		{http.MethodPost, "/api/hubs/" + strings.Repeat("h", 129) + "/:send", send},
		{http.MethodPost, "/api/hubs/chat/:send?application=9app", send},
		{http.MethodPost, "/api/hubs/chat/:send?application=a&application=b", send},
		{http.MethodPost, "/api/v1/hubs/bad%20hub", send},
		{http.MethodPost, "/api/hubs/chat/groups/%20%20/:send", send},
		{http.MethodPost, "/api/hubs/chat/groups/" + strings.Repeat("g", 1025) + "/:send", send},
		{http.MethodPost, "/api/hubs/chat/users//:send", send},
		{http.MethodPut, "/api/hubs/chat/groups/g/connections/", ""},
	}
	for _, tc := range cases {
		w := e.do(tc.method, tc.target, tc.body)
		if tc.target == "/api/hubs/chat/groups/g/connections/" {
			// A trailing slash leaves no connection id: this is the listing route, GET only.
			wantStatus(t, w, http.StatusMethodNotAllowed)
			continue
		}
		if w.Code != http.StatusBadRequest {
			t.Errorf("%s %s: status %d, want 400 (%q)", tc.method, truncate(tc.target), w.Code, w.Body.String())
			continue
		}
		if tc.method != http.MethodHead && !strings.Contains(w.Body.String(), CodeInvalidRequest) {
			t.Errorf("%s: body %q lacks the error code", truncate(tc.target), w.Body.String())
		}
	}
	// Valid edge cases: the full hub alphabet, 1024-character group, escaped ids.
	wantStatus(t, e.do(http.MethodPost, "/api/hubs/a_`,.[]9/:send", send), http.StatusAccepted)
	wantStatus(t, e.do(http.MethodPost, "/api/hubs/"+strings.Repeat("h", 128)+"/:send", send), http.StatusAccepted)
	wantStatus(t, e.do(http.MethodPost, "/api/hubs/chat/groups/"+strings.Repeat("g", 1024)+"/:send", send), http.StatusAccepted)
}

func TestEscapedIDsAndApplication(t *testing.T) {
	e := newEnv(t)
	c := e.connect("app_chat", "conn/1 x", "user/é?", "json")
	e.reg.AddToGroup("app_chat", "g/1 ü", "conn/1 x")
	p := "/api/hubs/Chat/"
	q := "?application=App&api-version=2022-06-01"
	wantStatus(t, e.do(http.MethodPost, p+"users/"+url.PathEscape("user/é?")+"/:send"+q, `{"target":"u"}`), http.StatusAccepted)
	wantStatus(t, e.do(http.MethodPost, p+"connections/"+url.PathEscape("conn/1 x")+"/:send"+q, `{"target":"c"}`), http.StatusAccepted)
	wantStatus(t, e.do(http.MethodPost, p+"groups/"+url.PathEscape("g/1 ü")+"/:send"+q, `{"target":"g"}`), http.StatusAccepted)
	wantStatus(t, e.do(http.MethodHead, p+"connections/"+url.PathEscape("conn/1 x")+q, ""), http.StatusOK)
	// Without the application the hub is plain "chat", where nobody is connected.
	wantStatus(t, e.do(http.MethodPost, p+":send", `{"target":"none"}`), http.StatusAccepted)
	if got := c.Targets(t); !slices.Equal(got, []string{"u", "c", "g"}) {
		t.Fatalf("got %q", got)
	}
}

func TestRoutingErrors(t *testing.T) {
	e := newEnv(t)
	for _, target := range []string{"/api/hubs/chat/nope", "/api/hubs/chat/users/u/x/y/z", "/api/other", "/elsewhere", "/api/hubs", "/api/v2/hubs/chat/:send"} {
		w := e.do(http.MethodPost, target, `{"target":"t"}`)
		wantStatus(t, w, http.StatusNotFound)
		if w.Header().Get("x-ms-error-code") == CodeConnectionNotExisted {
			t.Error("route 404 must not look like a missing connection")
		}
	}
	w := e.do(http.MethodGet, "/api/hubs/chat/:send", "")
	wantStatus(t, w, http.StatusMethodNotAllowed)
	if w.Header().Get("Allow") != "POST" {
		t.Errorf("Allow %q", w.Header().Get("Allow"))
	}
	w = e.do(http.MethodPatch, "/api/hubs/chat/users/u/groups/g", "")
	wantStatus(t, w, http.StatusMethodNotAllowed)
	if w.Header().Get("Allow") != "DELETE, GET, HEAD, PUT" {
		t.Errorf("Allow %q", w.Header().Get("Allow"))
	}
	// Health is anonymous.
	for _, p := range []string{"/api/health", "/api/v1/health", "/api/health?api-version=2022-06-01"} {
		for _, m := range []string{http.MethodGet, http.MethodHead} {
			wantStatus(t, e.do(m, p, "", noAuth()), http.StatusOK)
		}
		wantStatus(t, e.do(http.MethodPost, p, "", noAuth()), http.StatusMethodNotAllowed)
	}
	// Literal segments are case-insensitive, like ASP.NET routing.
	wantStatus(t, e.do(http.MethodPost, "/API/Hubs/chat/Users/u/:SEND", `{"target":"t"}`), http.StatusAccepted)
}

// Every route's placeholders fit pathParams, which match fills without a map.
func TestRoutesFitPathParams(t *testing.T) {
	for _, rt := range routes() {
		n := 0
		for _, s := range rt.segs {
			if strings.HasPrefix(s, "{") {
				n++
			}
		}
		if n > len(pathParams{}.names) {
			t.Errorf("route %v has %d placeholders, pathParams holds %d", rt.segs, n, len(pathParams{}.names))
		}
	}
}
