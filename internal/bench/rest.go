package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/management"
)

// restTokenLifetime is how long the REST scenario's tokens live; one is signed again
// when less than restTokenRenew of it is left (a run lasts minutes, so in practice
// each is signed once).
const (
	restTokenLifetime = time.Hour
	restTokenRenew    = 5 * time.Minute
)

// restTimeout bounds one send-to-user request (the management client's timeout in
// the other scenarios).
const restTimeout = 10 * time.Second

// userSender posts send-to-user requests as an SDK that keeps its tokens does: one
// token per request path (the audience names the path, so each user has its own),
// signed once and reused until shortly before it expires, over keep-alive
// connections. The management client signs a new token per request, which on this
// shared 2-core machine cost the load generator as much CPU as the server spent on
// the request, and made every request a cache miss of the server's verified-token
// cache (a real caller's repeated token is a hit).
type userSender struct {
	hc       *http.Client
	endpoint string // no trailing '/'
	key      string
	hubPath  string // /api/hubs/{escaped lower-case hub}
	prefix   []byte // the body up to the arguments: {"target":...,"arguments":

	mu     sync.Mutex
	tokens map[string]restToken // by user
}

type restToken struct {
	bearer  string // "Bearer " + the token
	renewAt time.Time
}

func newUserSender(hc *http.Client, endpoint, key, hub, target string) *userSender {
	t, _ := json.Marshal(target) // a string always encodes
	return &userSender{
		hc: hc, endpoint: strings.TrimRight(endpoint, "/"), key: key,
		hubPath: "/api/hubs/" + url.PathEscape(strings.ToLower(hub)),
		prefix:  append(append([]byte(`{"target":`), t...), `,"arguments":`...),
		tokens:  make(map[string]restToken),
	}
}

// path is the escaped request path of a send to user.
func (s *userSender) path(user string) string {
	return s.hubPath + "/users/" + url.PathEscape(user) + "/:send"
}

// bearer returns the Authorization value for user's send path, signing a token
// when there is none or it is about to expire.
func (s *userSender) bearer(user string) (string, error) {
	now := time.Now()
	s.mu.Lock()
	t, ok := s.tokens[user]
	s.mu.Unlock()
	if ok && now.Before(t.renewAt) {
		return t.bearer, nil
	}
	// The audience is what the management client signs: the path with its query.
	aud := auth.RESTAudience(s.endpoint, s.path(user)+"?api-version="+management.APIVersion)
	tok, err := auth.NewToken(s.key, auth.TokenOptions{Audience: aud, Lifetime: restTokenLifetime, Now: func() time.Time { return now }})
	if err != nil {
		return "", fmt.Errorf("bench: signing a REST token: %w", err)
	}
	t = restToken{bearer: "Bearer " + tok, renewAt: now.Add(restTokenLifetime - restTokenRenew)}
	s.mu.Lock()
	s.tokens[user] = t
	s.mu.Unlock()
	return t.bearer, nil
}

// send posts the target with args (a JSON array) to user and expects 202 Accepted.
func (s *userSender) send(ctx context.Context, user string, args json.RawMessage) error {
	bearer, err := s.bearer(user)
	if err != nil {
		return err
	}
	body := make([]byte, 0, len(s.prefix)+len(args)+1)
	body = append(append(append(body, s.prefix...), args...), '}')
	ctx, cancel := context.WithTimeout(ctx, restTimeout)
	defer cancel()
	u := s.endpoint + s.path(user) + "?api-version=" + management.APIVersion
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("bench: send to user: %w", err)
	}
	req.Header["Authorization"] = []string{bearer}
	req.Header["Content-Type"] = []string{"application/json; charset=utf-8"}
	res, err := s.hc.Do(req)
	if err != nil {
		return fmt.Errorf("bench: send to user: %w", err)
	}
	// Read to the end so that the connection is reused.
	msg, _ := io.ReadAll(io.LimitReader(res.Body, 1024))
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		return fmt.Errorf("bench: send to user: %s: %s", res.Status, bytes.TrimSpace(msg))
	}
	return nil
}
