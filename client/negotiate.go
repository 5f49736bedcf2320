package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxRedirects is how many {url, accessToken} answers negotiate follows, as the
// JavaScript client does.
const maxRedirects = 100

// maxNegotiateBody bounds a negotiate response.
const maxNegotiateBody = 1 << 20

type transportInfo struct {
	Transport       string   `json:"transport"`
	TransferFormats []string `json:"transferFormats"`
}

// negotiateResponse is every shape a negotiate endpoint answers with: a redirect
// ({url, accessToken}), an error, or a connection.
type negotiateResponse struct {
	URL                 string          `json:"url"`
	AccessToken         string          `json:"accessToken"`
	Error               string          `json:"error"`
	NegotiateVersion    int             `json:"negotiateVersion"`
	ConnectionID        string          `json:"connectionId"`
	ConnectionToken     string          `json:"connectionToken"`
	AvailableTransports []transportInfo `json:"availableTransports"`
}

// parseNegotiateResponse decodes and checks a negotiate response body.
func parseNegotiateResponse(body []byte) (*negotiateResponse, error) {
	var r negotiateResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("client: negotiate: invalid response: %w", err)
	}
	switch {
	case r.Error != "":
		return nil, fmt.Errorf("client: negotiate: server error: %s", r.Error)
	case r.URL != "":
		u, err := url.Parse(r.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("client: negotiate: redirect to an invalid URL %q", r.URL)
		}
		return &r, nil
	case r.ConnectionID == "":
		return nil, errors.New("client: negotiate: response has neither url nor connectionId")
	case r.NegotiateVersion >= 1 && r.ConnectionToken == "":
		return nil, errors.New("client: negotiate: version 1 response without connectionToken")
	}
	return &r, nil
}

// connectionToken is the id= value of the transport requests.
func (r *negotiateResponse) connectionToken() string {
	if r.NegotiateVersion >= 1 {
		return r.ConnectionToken
	}
	return r.ConnectionID
}

// supports reports whether the server offers transport t with the transfer format.
func (r *negotiateResponse) supports(t Transport, binary bool) bool {
	format := "Text"
	if binary {
		format = "Binary"
	}
	for _, ti := range r.AvailableTransports {
		if ti.Transport != t.String() {
			continue
		}
		for _, f := range ti.TransferFormats {
			if f == format {
				return true
			}
		}
	}
	return false
}

// negotiateURL inserts /negotiate at the end of the path and adds negotiateVersion=1
// to the query, keeping the query of base.
func negotiateURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("client: invalid URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("client: URL scheme %q is not http or https", u.Scheme)
	}
	if strings.HasSuffix(u.Path, "/") {
		u.Path += "negotiate"
	} else {
		u.Path += "/negotiate"
	}
	if u.RawPath != "" {
		u.RawPath = "" // re-derived from Path
	}
	q := u.Query()
	if !q.Has("negotiateVersion") {
		q.Set("negotiateVersion", "1")
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// connectURL adds the connection token to base.
func connectURL(base, token string) string {
	if token == "" {
		return base
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "id=" + url.QueryEscape(token)
}

// negotiation is the outcome of negotiate: where to connect, with which token.
type negotiation struct {
	url          string // the (last) base URL
	accessToken  string
	connectionID string
	token        string // id= value, "" when negotiation was skipped
}

// negotiate runs the negotiate requests, following redirects.
func (d *dialer) negotiate(ctx context.Context, base string) (*negotiation, error) {
	tok, err := d.token(ctx)
	if err != nil {
		return nil, err
	}
	for redirects := 0; ; redirects++ {
		if redirects > maxRedirects {
			return nil, fmt.Errorf("client: negotiate: more than %d redirects", maxRedirects)
		}
		u, err := negotiateURL(base)
		if err != nil {
			return nil, err
		}
		r, err := d.negotiateOnce(ctx, u, tok)
		if err != nil {
			return nil, err
		}
		if r.URL != "" {
			base, tok = r.URL, r.AccessToken
			continue
		}
		if !r.supports(d.opts.Transport, d.proto.Binary()) {
			return nil, fmt.Errorf("client: negotiate: the server does not offer %s with the %s protocol", d.opts.Transport, d.proto.Name())
		}
		return &negotiation{url: base, accessToken: tok, connectionID: r.ConnectionID, token: r.connectionToken()}, nil
	}
}

func (d *dialer) negotiateOnce(ctx context.Context, u, tok string) (*negotiateResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return nil, fmt.Errorf("client: negotiate: %w", err)
	}
	d.setHeaders(req.Header, tok)
	res, err := d.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: negotiate: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxNegotiateBody+1))
	if err != nil {
		return nil, fmt.Errorf("client: negotiate: reading response: %w", err)
	}
	if len(body) > maxNegotiateBody {
		return nil, errors.New("client: negotiate: response larger than 1 MiB")
	}
	if res.StatusCode != http.StatusOK {
		return nil, &HTTPError{Op: "negotiate", StatusCode: res.StatusCode, Body: trimBody(body)}
	}
	return parseNegotiateResponse(body)
}

// HTTPError is a negotiate or transport request the server answered with an
// unexpected status.
type HTTPError struct {
	Op         string // "negotiate", "connect", "send", "poll"
	StatusCode int
	Body       string // the start of the response body
}

func (e *HTTPError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("client: %s: HTTP %d", e.Op, e.StatusCode)
	}
	return fmt.Sprintf("client: %s: HTTP %d: %s", e.Op, e.StatusCode, e.Body)
}

func trimBody(b []byte) string {
	const max = 200
	s := strings.TrimSpace(string(b))
	if len(s) > max {
		s = s[:max] + "..."
	}
	return s
}
