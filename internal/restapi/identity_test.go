package restapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/auth"
)

type fakeAuth struct{ err error }

func (f fakeAuth) AuthenticateREST(context.Context, string, string) error { return f.err }

// TestAuthenticatorAndAccessKey: an Authenticator's verdict decides (403 for a known
// identity that is not allowed, 401 otherwise), and the access-key route answers
// {"KeyId","AccessKey"} on both prefixes, GET only, 404 when identities are off.
func TestAuthenticatorAndAccessKey(t *testing.T) {
	e := newEnv(t)
	h := e.handler.(*handler)
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, http.StatusAccepted},
		{auth.ErrForbidden, http.StatusForbidden},
		{auth.ErrExpired, http.StatusUnauthorized},
	} {
		h.opts.Authenticator = fakeAuth{tc.err}
		w := e.do(http.MethodPost, "/api/hubs/chat/:send", `{"target":"t"}`)
		wantStatus(t, w, tc.want)
	}
	h.opts.Authenticator = nil

	for _, p := range []string{"/api/auth/accessKey", "/api/v1/auth/accessKey"} {
		wantNotFound(t, e.do(http.MethodGet, p, ""), CodeNotFound)
	}
	var gotToken string
	h.opts.AccessKey = func(_ context.Context, token string) (string, string, time.Time, error) {
		gotToken = token
		if token == "stranger" {
			return "", "", time.Time{}, errors.New("x: " + auth.ErrForbidden.Error())
		}
		if token == "forbidden" {
			return "", "", time.Time{}, auth.ErrForbidden
		}
		return "kid1", "key1", time.Unix(1_800_000_000, 0), nil
	}
	for _, p := range []string{"/api/auth/accessKey", "/api/v1/auth/accessKey"} {
		w := e.do(http.MethodGet, p, "", withToken("entra"))
		wantStatus(t, w, http.StatusOK)
		var body map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body["KeyId"] != "kid1" || body["AccessKey"] != "key1" || gotToken != "entra" {
			t.Fatalf("%s: %s (token %q)", p, w.Body, gotToken)
		}
		wantStatus(t, e.do(http.MethodGet, p, "", withToken("forbidden")), http.StatusForbidden)
		wantStatus(t, e.do(http.MethodGet, p, "", withToken("stranger")), http.StatusUnauthorized)
		wantStatus(t, e.do(http.MethodGet, p, "", noAuth()), http.StatusUnauthorized)
		wantStatus(t, e.do(http.MethodPost, p, ""), http.StatusMethodNotAllowed)
	}
}
