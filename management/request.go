package management

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/connection"
)

// maxErrorBody bounds how much of an error response is kept in ResponseError.Message.
const maxErrorBody = 1024

const unauthorizedHint = "Authorization failed. If you were using AccessKey, please check connection string and see if the AccessKey is correct. " +
	"If you were using Azure Active Directory, please note that the role assignments will take up to 30 minutes to take effect if it was added recently."

// call is one REST request before it is sent to an endpoint.
type call struct {
	method     string
	path       string     // escaped, from /api/...
	apiVersion string     // default APIVersion
	query      url.Values // added after signing, so not part of the audience
	body       []byte     // JSON; nil = no body
	message    bool       // a message send: retried only for status > 500
	tolerate   []string   // x-ms-error-code values that turn a 404 into a "false" success
}

// hubPath returns /api/hubs/{lower hub} followed by parts, each after a '/'.
func hubPath(hub string, parts ...part) (string, error) {
	if hub == "" {
		return "", errors.New("management: hub name is empty")
	}
	var b strings.Builder
	b.WriteString("/api/hubs/")
	b.WriteString(url.PathEscape(strings.ToLower(hub)))
	for _, p := range parts {
		b.WriteByte('/')
		if p.what == "" {
			b.WriteString(p.v)
			continue
		}
		if p.v == "" {
			return "", fmt.Errorf("management: %s is empty", p.what)
		}
		b.WriteString(url.PathEscape(p.v))
	}
	return b.String(), nil
}

// part is one path segment: one of ours (what == "") written as is, or a caller's
// value, which must not be empty and is escaped; what names it in errors.
type part struct{ what, v string }

func lit(s string) part         { return part{v: s} }
func userSeg(id string) part    { return part{"user id", id} }
func groupSeg(name string) part { return part{"group name", name} }
func connSeg(id string) part    { return part{"connection id", id} }

// url builds the request URL on the endpoint's server endpoint.
func (es *endpointState) url(path, apiVersion string, query url.Values) string {
	u := strings.TrimSuffix(es.ep.ServerEndpoint, "/") + path + "?api-version=" + url.QueryEscape(apiVersion)
	if len(query) > 0 {
		u += "&" + query.Encode()
	}
	return u
}

// authorize sets the bearer token of a REST request.
func (c *Client) authorize(ctx context.Context, es *endpointState, req *http.Request, audiencePath string) error {
	if es.ep.AccessKey != "" {
		tok, err := auth.NewToken(es.ep.AccessKey, auth.TokenOptions{
			Audience: auth.RESTAudience(es.ep.AudienceBase, audiencePath),
			Lifetime: time.Hour,
			Claims:   []auth.Claim{{Type: "nameid", Value: c.nameID}},
			Now:      c.now,
		})
		if err != nil {
			return fmt.Errorf("management: signing REST token: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		return nil
	}
	tok, err := c.entraToken(ctx, es)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	return nil
}

// entraToken returns a cached Microsoft Entra token for Scope, renewed 5 minutes before
// it expires (credentials from azidentity cache too, fakes and custom ones may not).
func (c *Client) entraToken(ctx context.Context, es *endpointState) (string, error) {
	select {
	case es.tokSem <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("management: waiting for Microsoft Entra token for %s: %w", es.ep.Endpoint, ctx.Err())
	}
	defer func() { <-es.tokSem }()
	if es.tok.Token != "" && c.now().Add(5*time.Minute).Before(es.tok.ExpiresOn) {
		return es.tok.Token, nil
	}
	tok, err := es.ep.Credential.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{Scope}})
	if err != nil {
		return "", fmt.Errorf("management: getting Microsoft Entra token for %s: %w", es.ep.Endpoint, err)
	}
	es.tok = tok
	return tok.Token, nil
}

// do sends cl to es with the retry policy. It returns the body of a 2xx answer; found is
// false (and err nil) for a 404 whose x-ms-error-code is in cl.tolerate.
func (c *Client) do(ctx context.Context, es *endpointState, cl call) (body []byte, found bool, err error) {
	if cl.apiVersion == "" {
		cl.apiVersion = APIVersion
	}
	target := es.url(cl.path, cl.apiVersion, cl.query)
	plain := strings.TrimSuffix(es.ep.ServerEndpoint, "/") + cl.path
	renewed := false
	for attempt := 0; ; attempt++ {
		var rd io.Reader
		if cl.body != nil {
			rd = bytes.NewReader(cl.body)
		}
		// Each attempt is bounded by the client's Timeout, whatever HTTPClient is in use.
		actx, cancel := context.WithTimeout(ctx, c.timeout)
		req, err := http.NewRequestWithContext(actx, cl.method, target, rd)
		if err != nil {
			cancel()
			return nil, false, fmt.Errorf("management: building request %s %s: %w", cl.method, plain, err)
		}
		if cl.body != nil {
			req.Header.Set("Content-Type", "application/json; charset=utf-8")
		}
		req.Header.Set("User-Agent", "signalbox-management")
		if err := c.authorize(actx, es, req, cl.path+"?api-version="+cl.apiVersion); err != nil {
			cancel()
			return nil, false, err
		}
		var retryable bool
		var lastErr error
		resp, err := c.hc.Do(req)
		if err != nil {
			cancel()
			if ctx.Err() != nil {
				return nil, false, fmt.Errorf("management: %s %s: %w", cl.method, plain, ctx.Err())
			}
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			lastErr = fmt.Errorf("An error happened when making request to %s: %w", plain, err)
			retryable = !cl.message
			c.suspect(es, lastErr)
		} else {
			data, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			cancel()
			code := resp.Header.Get("x-ms-error-code")
			switch {
			case resp.StatusCode >= 200 && resp.StatusCode <= 299:
				if rerr != nil {
					return nil, false, fmt.Errorf("management: reading response of %s %s: %w", cl.method, plain, rerr)
				}
				return data, true, nil
			case resp.StatusCode == http.StatusNotFound && code != "" && slices.Contains(cl.tolerate, code):
				return nil, false, nil
			}
			lastErr = newResponseError(cl.method, plain, resp.StatusCode, code, data)
			if resp.StatusCode == http.StatusUnauthorized && es.ep.Credential != nil && !renewed {
				// A revoked or rotated Entra token: get a fresh one once, outside the retry budget.
				renewed = true
				select {
				case es.tokSem <- struct{}{}:
					es.tok = azcore.AccessToken{}
					<-es.tokSem
				case <-ctx.Done():
					return nil, false, fmt.Errorf("management: %s %s: %w (last error: %v)", cl.method, plain, ctx.Err(), lastErr)
				}
				attempt--
				continue
			}
			if resp.StatusCode >= 500 {
				c.suspect(es, lastErr)
			}
			if cl.message {
				retryable = resp.StatusCode > 500
			} else {
				retryable = resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout
			}
		}
		if !retryable || attempt >= c.retry.MaxRetries {
			return nil, false, lastErr
		}
		d := c.retryDelay(attempt)
		c.log.Debug("retrying SignalR REST call", "method", cl.method, "url", plain, "attempt", attempt+1, "delay", d, "error", lastErr)
		if !sleep(ctx, d) {
			return nil, false, fmt.Errorf("management: %s %s: %w (last error: %v)", cl.method, plain, ctx.Err(), lastErr)
		}
	}
}

func (c *Client) retryDelay(attempt int) time.Duration {
	d := c.retry.Delay
	if c.retry.Mode == RetryExponential {
		for i := 0; i < attempt && d < c.retry.MaxDelay; i++ {
			d *= 2
		}
	}
	return min(d, c.retry.MaxDelay)
}

func newResponseError(method, u string, status int, code string, body []byte) *ResponseError {
	msg := strings.TrimSpace(string(body))
	if len(msg) > maxErrorBody {
		msg = msg[:maxErrorBody] + "..."
	}
	if status == http.StatusUnauthorized {
		if msg == "" {
			msg = unauthorizedHint
		} else {
			msg = unauthorizedHint + " " + msg
		}
	}
	return &ResponseError{Method: method, URL: u, StatusCode: status, ErrorCode: code, Message: msg}
}

// targets returns the endpoints an operation goes to: every endpoint for a nil filter,
// else the configured endpoints matching it.
func (c *Client) targets(filter []connection.Endpoint) []*endpointState {
	if filter == nil {
		return c.eps
	}
	var out []*endpointState
	for _, e := range c.eps {
		if slices.ContainsFunc(filter, func(f connection.Endpoint) bool { return sameEndpoint(e.ep, f) }) {
			out = append(out, e)
		}
	}
	return out
}

// fanout runs fn on every target endpoint. With one configured endpoint its error is
// returned as is; with several, the targets known to be offline are skipped (and count as
// failed), the others run concurrently, and any failure gives a *DeliveryError naming the
// endpoints that accepted and the ones that failed.
func (c *Client) fanout(ctx context.Context, op string, filter []connection.Endpoint, fn func(context.Context, *endpointState) error) error {
	_, err := c.fanoutBool(ctx, op, filter, func(ctx context.Context, es *endpointState) (bool, error) {
		return false, fn(ctx, es)
	})
	return err
}

// fanoutBool is fanout for checks as well: the result is true when any endpoint says
// true, and then errors of other endpoints are only logged.
func (c *Client) fanoutBool(ctx context.Context, op string, filter []connection.Endpoint, fn func(context.Context, *endpointState) (bool, error)) (bool, error) {
	targets := c.targets(filter)
	if len(targets) == 0 {
		return false, ErrNoEndpoint
	}
	if len(c.eps) == 1 { // a lone endpoint is always tried, as for negotiation
		return fn(ctx, targets[0])
	}
	de := &DeliveryError{Op: op}
	var online []*endpointState
	for _, e := range targets {
		if e.online.Load() {
			online = append(online, e)
		} else {
			de.Failed = append(de.Failed, EndpointFailure{Endpoint: e.ep, Err: ErrEndpointOffline})
		}
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		anyTrue bool
	)
	for _, es := range online {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := fn(ctx, es)
			mu.Lock()
			defer mu.Unlock()
			anyTrue = anyTrue || ok
			if err != nil {
				de.Failed = append(de.Failed, EndpointFailure{Endpoint: es.ep, Err: err})
			} else {
				de.Delivered = append(de.Delivered, es.ep)
			}
		}()
	}
	wg.Wait()
	if len(de.Failed) == 0 {
		return anyTrue, nil
	}
	// Keep the configured order, so that messages and tests read the same every time.
	slices.SortStableFunc(de.Failed, func(a, b EndpointFailure) int { return c.index(a.Endpoint) - c.index(b.Endpoint) })
	slices.SortStableFunc(de.Delivered, func(a, b connection.Endpoint) int { return c.index(a) - c.index(b) })
	if anyTrue {
		c.log.Warn("SignalR check failed on some endpoints", "operation", op, "error", de)
		return true, nil
	}
	return false, de
}

// index is the position of a configured endpoint.
func (c *Client) index(ep connection.Endpoint) int {
	for i, e := range c.eps {
		if sameEndpoint(e.ep, ep) {
			return i
		}
	}
	return len(c.eps)
}
