package restapi

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/internal/hub"
)

// downHubs fails every operation the way a cluster node does without its broker.
type downHubs struct{ Hubs }

var errBrokerDown = errors.New("broker unreachable")

func (downHubs) SendAll(context.Context, string, *hub.Payload, []string) error { return errBrokerDown }
func (downHubs) ConnectionExists(context.Context, string, string) (bool, error) {
	return false, errBrokerDown
}
func (downHubs) AddUserToGroup(context.Context, string, string, string, *time.Duration) error {
	return errBrokerDown
}

// A message the service could not publish is a 503 with a clear code, never a 202;
// a failed existence check is a 503, never a 404 that would read as "absent".
func TestHubErrorsAre503(t *testing.T) {
	e := newEnv(t)
	e.handler = New(Options{Hubs: downHubs{}, Validator: &auth.Validator{Keys: []string{testKey}}})
	for _, c := range []struct{ method, path, body string }{
		{http.MethodPost, "/api/hubs/chat/:send", `{"target":"t"}`},
		{http.MethodHead, "/api/hubs/chat/connections/c1", ""},
		{http.MethodPut, "/api/hubs/chat/groups/g/users/u", ""},
	} {
		w := e.do(c.method, c.path, c.body)
		wantStatus(t, w, http.StatusServiceUnavailable)
		if got := w.Header().Get("x-ms-error-code"); got != CodeUnavailable {
			t.Errorf("%s %s: x-ms-error-code = %q, want %q", c.method, c.path, got, CodeUnavailable)
		}
	}
}
