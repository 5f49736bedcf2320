package management

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/signalbox-io/signalbox/connection"
)

// Known x-ms-error-code values of 404 responses that mean "false" or "nothing to do".
const (
	CodeConnectionNotExisted      = "Warning.Connection.NotExisted"
	CodeUserNotExisted            = "Warning.User.NotExisted"
	CodeGroupNotExisted           = "Warning.Group.NotExisted"
	CodeUserNotInGroup            = "Info.User.NotInGroup"
	CodeConnectionNotExistedError = "Error.Connection.NotExisted"
)

// Signalbox's refusals of a group add (409): the connection is already in as many
// groups as max-groups-per-connection allows, or the user has that many persistent
// memberships. Nothing was added; a retry fails the same way until a group is left.
const (
	CodeConnectionTooManyGroups = "Error.Connection.TooManyGroups"
	CodeUserTooManyGroups       = "Error.User.TooManyGroups"
)

// ErrTooManyGroups matches (errors.Is) the *ResponseError of a group add refused
// because the connection or the user is at its group limit (CodeConnectionTooManyGroups,
// CodeUserTooManyGroups); the ResponseError, found with errors.As, says which.
var ErrTooManyGroups = errors.New("management: group limit reached")

// ResponseError is a non-2xx answer of the service; find it with errors.As.
type ResponseError struct {
	Method     string
	URL        string // without query
	StatusCode int
	ErrorCode  string // x-ms-error-code header
	Message    string // response body (truncated) or a hint
}

// Is matches ErrTooManyGroups for a group add refused at the group limit.
func (e *ResponseError) Is(target error) bool {
	return target == ErrTooManyGroups && e.StatusCode == http.StatusConflict &&
		(e.ErrorCode == CodeConnectionTooManyGroups || e.ErrorCode == CodeUserTooManyGroups)
}

func (e *ResponseError) Error() string {
	s := fmt.Sprintf("%s %s: status %d", e.Method, e.URL, e.StatusCode)
	if e.ErrorCode != "" {
		s += " (" + e.ErrorCode + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// EndpointFailure is what went wrong on one endpoint of an operation on several endpoints.
type EndpointFailure struct {
	Endpoint connection.Endpoint
	// Err is the endpoint's error: a *ResponseError, a transport error, or ErrEndpointOffline
	// when the endpoint was skipped because it is known to be offline.
	Err error
}

func (f EndpointFailure) Error() string {
	return "endpoint " + f.Endpoint.String() + ": " + f.Err.Error()
}

// Unwrap returns the endpoint's error.
func (f EndpointFailure) Unwrap() error { return f.Err }

// DeliveryError reports an operation on several endpoints that did not succeed on all of
// the endpoints it was meant for. Find it with errors.As.
//
// Delivered names the endpoints that accepted the operation. When it is not empty the
// operation took effect there (the clients of those endpoints got the message, the group
// changed): repeating the whole operation would repeat it on those endpoints too, so a caller
// that must not duplicate retries only Failed, or not at all (see Delivered).
type DeliveryError struct {
	Op        string // e.g. "send to all"
	Delivered []connection.Endpoint
	Failed    []EndpointFailure
}

func (e *DeliveryError) Error() string {
	var b strings.Builder
	b.WriteString("management: ")
	b.WriteString(e.Op)
	if len(e.Delivered) > 0 {
		fmt.Fprintf(&b, ": delivered to %d of %d endpoints, failed on ", len(e.Delivered), len(e.Delivered)+len(e.Failed))
	} else {
		b.WriteString(": failed on every endpoint: ")
	}
	for i, f := range e.Failed {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.Error())
	}
	return b.String()
}

// Unwrap returns the endpoints' errors, so errors.As finds a *ResponseError of any of them.
func (e *DeliveryError) Unwrap() []error {
	out := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		out[i] = f
	}
	return out
}

// Is matches ErrNoOnlineEndpoint when every target endpoint was skipped as offline.
func (e *DeliveryError) Is(target error) bool {
	if target != ErrNoOnlineEndpoint || len(e.Delivered) > 0 || len(e.Failed) == 0 {
		return false
	}
	for _, f := range e.Failed {
		if !errors.Is(f.Err, ErrEndpointOffline) {
			return false
		}
	}
	return true
}

// Partial reports whether some endpoint accepted the operation.
func (e *DeliveryError) Partial() bool { return len(e.Delivered) > 0 }

// Delivered reports whether an operation took effect: err is nil, or a *DeliveryError
// (possibly wrapped) with at least one endpoint that accepted it. A function whose output
// was delivered should not fail its invocation, or the host's retry sends it twice.
func Delivered(err error) bool {
	if err == nil {
		return true
	}
	var de *DeliveryError
	return errors.As(err, &de) && de.Partial()
}
