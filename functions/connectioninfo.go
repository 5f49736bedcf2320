package functions

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/connection"
	"github.com/signalbox-io/signalbox/management"
)

// ConnectionInfo is the value of the signalRConnectionInfo input binding: what a negotiate
// function returns to a SignalR client.
type ConnectionInfo struct {
	URL         string `json:"url"`
	AccessToken string `json:"accessToken"`
}

// ConnectionInfoOptions are the properties of the signalRConnectionInfo binding.
type ConnectionInfoOptions struct {
	// UserID goes into the token as asrs.s.uid (userId).
	UserID string
	// IDToken is a bare JWT (idToken) whose claims named in ClaimTypeList are copied into the
	// token. It is decoded WITHOUT signature validation, exactly like the extension: only pass
	// a token your front end (e.g. App Service authentication) has already verified.
	IDToken string
	// ClaimTypeList names the IDToken claims to copy (raw JWT claim names, case-sensitive).
	ClaimTypeList []string
	// Claims are further custom claims, like SignalRConnectionDetail.Claims in C#.
	Claims []auth.Claim
	// Lifetime of the token; default 1 h.
	Lifetime time.Duration
	// Endpoint, when set, negotiates with the configured endpoint of this name
	// (Azure:SignalR:Endpoints:{name}, case-insensitive) whatever its health; an unknown name
	// is ErrUnknownEndpoint.
	Endpoint string
	// SelectEndpoint, when set (and Endpoint is not), chooses the endpoint from every
	// configured one with its health, like a C# IEndpointRouter's GetNegotiateEndpoint; it
	// must return one of them. Without either, the endpoint is chosen as ConnectionInfo says.
	SelectEndpoint func(endpoints []EndpointInfo) (EndpointInfo, error)
}

// ErrAccessTokenTooLong is returned when the token would exceed auth.MaxTokenLength
// characters; errors.Is also matches auth.ErrTokenTooLong.
var ErrAccessTokenTooLong = auth.ErrTokenTooLong

// renamedClaims are custom claim types that would collide with the token's own claims.
var renamedClaims = []string{"aud", "exp", "iat", "nbf", "iss", "actort", "acr", "azp", "c_hash", "jti", "nonce"}

// userClaims prepares custom claims as the extension's BuildJwtClaims does: system-claim
// names get the asrs.u. prefix, only the first sub stays sub. Claims posing as service claims
// (asrs.s.*) are prefixed too, so an identity provider cannot set the user id or other
// service behaviour through claimTypeList.
func userClaims(claims []auth.Claim) []auth.Claim {
	out := make([]auth.Claim, 0, len(claims))
	seenSub := false
	for _, c := range claims {
		switch {
		case c.Type == "sub":
			if seenSub {
				c.Type = "asrs.u.sub"
			}
			seenSub = true
		case slices.Contains(renamedClaims, c.Type), strings.HasPrefix(c.Type, "asrs.s."):
			c.Type = "asrs.u." + c.Type
		}
		out = append(out, c)
	}
	return out
}

// DecodeIDToken returns the claims of a JWT without validating it (the class-based GetClaims
// helper of the extension): the payload's members in order, arrays as one claim per element,
// objects as JSON text. A "Bearer " prefix is stripped.
func DecodeIDToken(token string) ([]auth.Claim, error) {
	token = strings.TrimSpace(token)
	if len(token) > 7 && strings.EqualFold(token[:7], "bearer ") {
		token = strings.TrimSpace(token[7:])
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 && len(parts) != 2 {
		return nil, errors.New("functions: idToken is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, fmt.Errorf("functions: idToken payload: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, errors.New("functions: idToken payload is not a JSON object")
	}
	var claims []auth.Claim
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("functions: idToken payload: %w", err)
		}
		key, _ := kt.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("functions: idToken payload: %w", err)
		}
		var list []json.RawMessage
		if len(raw) > 0 && raw[0] == '[' && json.Unmarshal(raw, &list) == nil {
			for _, item := range list {
				claims = append(claims, auth.Claim{Type: key, Value: claimText(item)})
			}
			continue
		}
		claims = append(claims, auth.Claim{Type: key, Value: claimText(raw)})
	}
	return claims, nil
}

func claimText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// customClaims applies idToken + claimTypeList, then the explicit claims.
func customClaims(opts *ConnectionInfoOptions) ([]auth.Claim, error) {
	var claims []auth.Claim
	if opts.IDToken != "" && len(opts.ClaimTypeList) > 0 {
		all, err := DecodeIDToken(opts.IDToken)
		if err != nil {
			return nil, err
		}
		for _, c := range all {
			if slices.Contains(opts.ClaimTypeList, c.Type) {
				claims = append(claims, c)
			}
		}
	}
	claims = append(claims, opts.Claims...)
	return userClaims(claims), nil
}

// ConnectionInfo produces the signalRConnectionInfo value for hub: the client URL of the
// endpoint management.Client.PickEndpoint chooses (the only one, else a random online
// primary, else an online secondary), or the one opts.Endpoint names or opts.SelectEndpoint
// picks, and an access token for it.
func (s *Service) ConnectionInfo(ctx context.Context, hub string, opts *ConnectionInfoOptions) (ConnectionInfo, error) {
	if opts == nil || (opts.Endpoint == "" && opts.SelectEndpoint == nil) {
		return s.connectionInfo(ctx, hub, opts, nil)
	}
	var ep connection.Endpoint
	var err error
	if opts.Endpoint != "" {
		ep, err = s.endpointNamed(opts.Endpoint)
	} else {
		ep, err = s.selectEndpoint(opts.SelectEndpoint)
	}
	if err != nil {
		return ConnectionInfo{}, err
	}
	return s.connectionInfo(ctx, hub, opts, &ep)
}

// selectEndpoint runs a caller's choice and maps its answer back to a configured endpoint.
func (s *Service) selectEndpoint(sel func([]EndpointInfo) (EndpointInfo, error)) (connection.Endpoint, error) {
	chosen, err := sel(s.Endpoints())
	if err != nil {
		return connection.Endpoint{}, err
	}
	for _, st := range s.client.Endpoints() {
		if endpointInfo(st).sameAs(chosen) {
			return st.Endpoint, nil
		}
	}
	return connection.Endpoint{}, fmt.Errorf("%w: SelectEndpoint returned %q (%s)", ErrUnknownEndpoint, chosen.Name, chosen.Endpoint)
}

func (e EndpointInfo) sameAs(o EndpointInfo) bool {
	return strings.EqualFold(e.Name, o.Name) && strings.EqualFold(e.EndpointType, o.EndpointType) &&
		strings.EqualFold(strings.TrimRight(e.Endpoint, "/"), strings.TrimRight(o.Endpoint, "/"))
}

func (s *Service) connectionInfo(ctx context.Context, hub string, opts *ConnectionInfoOptions, ep *connection.Endpoint) (ConnectionInfo, error) {
	if strings.TrimSpace(hub) == "" {
		return ConnectionInfo{}, errors.New("functions: connection info: hub name is required")
	}
	if opts == nil {
		opts = &ConnectionInfoOptions{}
	}
	claims, err := customClaims(opts)
	if err != nil {
		return ConnectionInfo{}, err
	}
	lifetime := opts.Lifetime
	if lifetime <= 0 {
		lifetime = time.Hour
	}
	access, err := s.client.ClientToken(ctx, hub, &management.ClientTokenOptions{
		UserID: opts.UserID, Claims: claims, Lifetime: lifetime, Endpoint: ep,
	})
	if err != nil {
		if errors.Is(err, auth.ErrTokenTooLong) {
			return ConnectionInfo{}, ErrAccessTokenTooLong
		}
		return ConnectionInfo{}, fmt.Errorf("functions: connection info for hub %s: %w", hub, err)
	}
	if len(access.AccessToken) > auth.MaxTokenLength {
		return ConnectionInfo{}, ErrAccessTokenTooLong
	}
	return ConnectionInfo{URL: access.URL, AccessToken: access.AccessToken}, nil
}

// EndpointConnectionInfo is one entry of Negotiation.
type EndpointConnectionInfo struct {
	EndpointInfo
	ConnectionInfo ConnectionInfo `json:"connectionInfo"`
}

// Negotiation is the value of the signalRNegotiation input binding: connection info for
// every configured endpoint, online or not, so the function can choose.
type Negotiation struct {
	Endpoints []EndpointConnectionInfo `json:"endpoints"`
}

// Negotiation negotiates with every endpoint independently (signalRNegotiation).
func (s *Service) Negotiation(ctx context.Context, hub string, opts *ConnectionInfoOptions) (Negotiation, error) {
	n := Negotiation{Endpoints: []EndpointConnectionInfo{}}
	for _, st := range s.client.Endpoints() {
		ep := st.Endpoint
		info, err := s.connectionInfo(ctx, hub, opts, &ep)
		if err != nil {
			return Negotiation{}, fmt.Errorf("functions: negotiation with %s: %w", ep.String(), err)
		}
		n.Endpoints = append(n.Endpoints, EndpointConnectionInfo{EndpointInfo: endpointInfo(st), ConnectionInfo: info})
	}
	return n, nil
}

// Endpoints is the value of the signalREndpoints input binding: every configured endpoint
// with its online state (the list is the same for every hub).
func (s *Service) Endpoints() []EndpointInfo {
	sts := s.client.Endpoints()
	out := make([]EndpointInfo, 0, len(sts))
	for _, st := range sts {
		out = append(out, endpointInfo(st))
	}
	return out
}

func endpointInfo(st management.EndpointStatus) EndpointInfo {
	return EndpointInfo{EndpointType: st.Type.String(), Name: st.Name, Endpoint: st.Endpoint.Endpoint, Online: st.Online}
}
