package server

import (
	"net/http"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/internal/restapi"
)

// restAPI is the data-plane REST API on top of the server's registry.
func (s *Server) restAPI() http.Handler {
	return restapi.New(restapi.Options{
		Hubs:      s.node,
		Validator: s.validator,
		// The gate checks identity tokens besides access-key tokens.
		Authenticator: s.gate,
		AccessKey:     s.accessKey(),
		Calls:         s.calls,
		Connections:   s.calls,
		IssueToken:    s.issueClientToken,
		Logger:        s.log,
		Health:        http.HandlerFunc(s.health),
		Observe:       s.metrics.RESTRequest,
		OnAuthFailure: func(r *http.Request, err error) {
			s.authFailed(r, "rest", err)
		},
	})
}

// issueClientToken mints a client token whose audience is the public client URL of
// hub, signed with the primary key.
func (s *Server) issueClientToken(hubName, userID string, lifetime time.Duration) (string, error) {
	key, kid := s.gate.SigningKey()
	return auth.NewToken(key, auth.TokenOptions{
		KeyID:    kid,
		Audience: auth.ClientAudience(s.Endpoint(), hubName),
		Lifetime: lifetime,
		UserID:   userID,
	})
}
