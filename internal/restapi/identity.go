package restapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/signalbox-io/signalbox/auth"
)

// Authenticator checks the bearer token of a REST request for its (escaped) path. An
// error wrapping auth.ErrForbidden is a 403 (a valid identity that is not allowed);
// any other error is a 401.
type Authenticator interface {
	AuthenticateREST(ctx context.Context, token, path string) error
}

// AccessKeyFunc returns the signing key (and its id) for the identity of token; errors
// are classed as an Authenticator's are.
type AccessKeyFunc func(ctx context.Context, token string) (keyID, key string, expires time.Time, err error)

// authError classes an authentication failure: 403 for a known identity that is not
// allowed, 401 for everything else. The cause is logged, never sent.
func authError(err error) *apiError {
	if errors.Is(err, auth.ErrForbidden) {
		return &apiError{kind: errForbidden, msg: "The identity is not allowed to access this resource.", err: err}
	}
	return &apiError{kind: errUnauthorized, msg: "invalid token", err: err}
}

// serveAccessKey answers GET /api/[v1/]auth/accessKey with {"KeyId","AccessKey"}, the
// shape the Azure SDKs read (both members required).
func (h *handler) serveAccessKey(w http.ResponseWriter, r *http.Request) {
	if h.opts.AccessKey == nil {
		h.fail(w, r, newErr(errRouteNotFound, "no such route: identity-based access is not configured"))
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		h.fail(w, r, newErr(errMethodNotAllowed, "method %s not allowed here", r.Method))
		return
	}
	token := auth.TokenFromRequest(r)
	if token == "" {
		h.fail(w, r, newErr(errUnauthorized, "missing bearer token"))
		return
	}
	keyID, key, expires, err := h.opts.AccessKey(r.Context(), token)
	if err != nil {
		h.fail(w, r, authError(err))
		return
	}
	body, _ := json.Marshal(struct {
		KeyID     string    `json:"KeyId"`
		AccessKey string    `json:"AccessKey"`
		Expires   time.Time `json:"ExpiresOn"`
	}{keyID, key, expires.UTC()})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
