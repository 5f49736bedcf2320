package management

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/connection"
)

const (
	// keyMaxAge is how long a fetched signing key stays usable when refreshing fails.
	keyMaxAge = 120 * time.Minute
	// keyRetryAfter spaces refresh attempts after a failure while the old key is usable.
	keyRetryAfter = 5 * time.Minute
)

// ClientAccess is what a negotiate function returns: the URL a client connects to and
// its access token. It marshals to {"url":..,"accessToken":..}.
type ClientAccess struct {
	URL         string              `json:"url"`
	AccessToken string              `json:"accessToken"`
	Endpoint    connection.Endpoint `json:"-"`
}

// ClientTokenOptions configures ClientToken.
type ClientTokenOptions struct {
	UserID string       // -> asrs.s.uid
	Claims []auth.Claim // passed to auth.NewToken as given (system-claim renaming is the caller's job)
	// Lifetime of the token; default 1 h.
	Lifetime time.Duration
	// Endpoint mints for this configured endpoint instead of PickEndpoint(hub).
	Endpoint *connection.Endpoint
}

// ClientToken mints a client access token locally: signed with the endpoint's AccessKey,
// or for identity-based endpoints with a key fetched from the service (kid = its KeyId).
// The audience is built from the service endpoint without port; the URL from the client
// endpoint.
func (c *Client) ClientToken(ctx context.Context, hub string, opts *ClientTokenOptions) (ClientAccess, error) {
	if opts == nil {
		opts = &ClientTokenOptions{}
	}
	if hub == "" {
		return ClientAccess{}, errors.New("management: hub name is empty")
	}
	es, err := c.endpointFor(opts.Endpoint)
	if err != nil {
		return ClientAccess{}, err
	}
	key, kid := es.ep.AccessKey, ""
	if key == "" {
		if key, kid, err = c.signingKey(ctx, es); err != nil {
			return ClientAccess{}, err
		}
	}
	tok, err := auth.NewToken(key, auth.TokenOptions{
		Audience: auth.ClientAudience(es.ep.AudienceBase, hub),
		Lifetime: opts.Lifetime,
		UserID:   opts.UserID,
		Claims:   opts.Claims,
		KeyID:    kid,
		Now:      c.now,
	})
	if err != nil {
		return ClientAccess{}, fmt.Errorf("management: client token: %w", err)
	}
	return ClientAccess{URL: auth.ClientURL(es.ep.ClientEndpoint, hub), AccessToken: tok, Endpoint: es.ep}, nil
}

func (c *Client) endpointFor(ep *connection.Endpoint) (*endpointState, error) {
	if ep == nil {
		return c.pick()
	}
	es, ok := c.find(*ep)
	if !ok {
		return nil, fmt.Errorf("management: endpoint %s is not configured", ep)
	}
	return es, nil
}

// GenerateClientTokenOptions configures GenerateClientToken.
type GenerateClientTokenOptions struct {
	UserID   string
	Lifetime time.Duration // rounded up to whole minutes; default 60 min
	Roles    []string
	Groups   []string
	Endpoint *connection.Endpoint // default PickEndpoint(hub)
}

// GenerateClientToken asks the service to mint a client token
// (POST /api/hubs/{hub}/:generateToken, api-version 2022-11-01).
func (c *Client) GenerateClientToken(ctx context.Context, hub string, opts *GenerateClientTokenOptions) (ClientAccess, error) {
	if opts == nil {
		opts = &GenerateClientTokenOptions{}
	}
	if opts.Lifetime < 0 {
		return ClientAccess{}, fmt.Errorf("management: token lifetime %v is negative", opts.Lifetime)
	}
	es, err := c.endpointFor(opts.Endpoint)
	if err != nil {
		return ClientAccess{}, err
	}
	path, err := hubPath(hub, lit(":generateToken"))
	if err != nil {
		return ClientAccess{}, err
	}
	q := url.Values{}
	if opts.UserID != "" {
		q.Set("userId", opts.UserID)
	}
	if opts.Lifetime > 0 {
		q.Set("minutesToExpire", strconv.FormatInt(int64((opts.Lifetime+time.Minute-1)/time.Minute), 10))
	}
	for _, r := range opts.Roles {
		q.Add("role", r)
	}
	for _, g := range opts.Groups {
		q.Add("group", g)
	}
	body, _, err := c.do(ctx, es, call{method: http.MethodPost, path: path, apiVersion: generateTokenAPIVersion, query: q})
	if err != nil {
		return ClientAccess{}, fmt.Errorf("management: generate client token: %w", err)
	}
	var res struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(body, &res); err != nil || res.Token == "" {
		return ClientAccess{}, errors.New("management: generate client token: response has no token")
	}
	return ClientAccess{URL: auth.ClientURL(es.ep.ClientEndpoint, hub), AccessToken: res.Token, Endpoint: es.ep}, nil
}

// signingKey returns the key (and its id) that signs client tokens of an identity-based
// endpoint, fetching it when it is missing or older than the refresh interval. When a
// refresh fails, a key younger than keyMaxAge is still used.
func (c *Client) signingKey(ctx context.Context, es *endpointState) (key, kid string, err error) {
	select {
	case es.keySem <- struct{}{}:
	case <-ctx.Done():
		return "", "", fmt.Errorf("management: waiting for signing key: %w", ctx.Err())
	}
	defer func() { <-es.keySem }()

	now := c.now()
	age := now.Sub(es.keyFetched)
	usable := es.key != "" && age < keyMaxAge
	if es.key != "" && age < c.keyRefresh {
		return es.key, es.keyID, nil
	}
	if usable && now.Sub(es.keyFailedAt) < keyRetryAfter {
		return es.key, es.keyID, nil
	}
	id, k, err := c.fetchKey(ctx, es)
	if err != nil {
		if usable {
			es.keyFailedAt = now
			c.log.Warn("refreshing SignalR signing key failed; using the previous key", "endpoint", es.ep.String(), "error", err)
			return es.key, es.keyID, nil
		}
		return "", "", err
	}
	es.key, es.keyID, es.keyFetched, es.keyFailedAt = k, id, now, time.Time{}
	return k, id, nil
}

// fetchKey calls GET {ServerEndpoint}api/v1/auth/accessKey with the Entra bearer.
func (c *Client) fetchKey(ctx context.Context, es *endpointState) (keyID, key string, err error) {
	body, _, err := c.do(ctx, es, call{method: http.MethodGet, path: "/api/v1/auth/accessKey"})
	if err != nil {
		var re *ResponseError
		if errors.As(err, &re) && (re.StatusCode == http.StatusUnauthorized || re.StatusCode == http.StatusForbidden) {
			return "", "", fmt.Errorf("management: The given AzureAD identity don't have the permission to generate access token.: %w", err)
		}
		return "", "", fmt.Errorf("management: fetching signing key: %w", err)
	}
	var res struct {
		KeyID     *string `json:"KeyId"`
		AccessKey *string `json:"AccessKey"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return "", "", fmt.Errorf("management: fetching signing key: invalid response: %w", err)
	}
	if res.KeyID == nil || *res.KeyID == "" {
		return "", "", errors.New("management: fetching signing key: Missing required <KeyId> field.")
	}
	if res.AccessKey == nil || *res.AccessKey == "" {
		return "", "", errors.New("management: fetching signing key: Missing required <AccessKey> field.")
	}
	return *res.KeyID, *res.AccessKey, nil
}
