package management

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/connection"
)

// recorded is one request the fake service received.
type recorded struct {
	Method, Path, Query, ContentType, Body string
	Claims                                 map[string]any
}

// fakeService stands in for a SignalR Service: it checks the bearer (a REST token signed
// with key, or the fixed Entra token), records the request and answers with respond.
type fakeService struct {
	t       *testing.T
	srv     *httptest.Server
	key     string // REST tokens must verify with it; "" = Entra mode
	entra   string // expected Entra bearer in Entra mode
	healthy atomic.Bool
	health  chan struct{} // one value per health request, when not nil
	// healthAnswer, when set, decides the answer to a health request instead of
	// healthy (it may block to hold the request).
	healthAnswer func() bool

	mu       sync.Mutex
	reqs     []recorded
	respond  func(w http.ResponseWriter, r *http.Request) // nil = 200/202 empty
	authErrs []string
}

func newFakeService(t *testing.T, key string) *fakeService {
	t.Helper()
	f := &fakeService{t: t, key: key}
	f.healthy.Store(true)
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeService) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/api/health" {
		if f.health != nil {
			select {
			case f.health <- struct{}{}:
			default:
			}
		}
		f.mu.Lock()
		answer := f.healthAnswer
		f.mu.Unlock()
		if (answer != nil && !answer()) || (answer == nil && !f.healthy.Load()) {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	body, _ := io.ReadAll(r.Body)
	rec := recorded{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, ContentType: r.Header.Get("Content-Type"), Body: string(body)}
	tok := auth.TokenFromRequest(r)
	var authErr string
	if f.key != "" {
		v := auth.Validator{Keys: []string{f.key}}
		if _, err := v.ValidateREST(tok, r.URL.EscapedPath()); err != nil {
			authErr = err.Error()
		}
		rec.Claims = jwtClaims(tok)
	} else if tok != f.entra {
		authErr = "unexpected Entra bearer"
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, rec)
	respond := f.respond
	if authErr != "" {
		f.authErrs = append(f.authErrs, authErr)
	}
	f.mu.Unlock()
	if authErr != "" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if respond != nil {
		respond(w, r)
		return
	}
	if r.Method == http.MethodPost {
		w.WriteHeader(http.StatusAccepted)
	}
}

func (f *fakeService) setRespond(fn func(w http.ResponseWriter, r *http.Request)) {
	f.mu.Lock()
	f.respond = fn
	f.mu.Unlock()
}

func (f *fakeService) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.authErrs) > 0 {
		f.t.Errorf("requests with bad authentication: %v", f.authErrs)
	}
	return append([]recorded(nil), f.reqs...)
}

func (f *fakeService) reset() {
	f.mu.Lock()
	f.reqs, f.authErrs = nil, nil
	f.mu.Unlock()
}

// endpoint returns a key endpoint for the fake service.
func (f *fakeService) endpoint(name string, typ connection.EndpointType) connection.Endpoint {
	ep, err := connection.NewEndpoint(name, typ, "Endpoint="+f.srv.URL+";AccessKey="+f.key+";Version=1.0;", nil)
	if err != nil {
		f.t.Fatalf("endpoint: %v", err)
	}
	return ep
}

// jwtClaims decodes the payload of a JWT without verifying it.
func jwtClaims(tok string) map[string]any {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// jwtHeader decodes the header of a JWT.
func jwtHeader(tok string) map[string]any {
	parts := strings.Split(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}
