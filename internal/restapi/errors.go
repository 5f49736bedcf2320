package restapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/signalbox-io/signalbox/internal/hub"
)

// Error codes sent in x-ms-error-code. The first five are the ones the SDKs match
// to turn a 404 into "false" or "nothing to do"; the rest follow the same
// Level.Scope.Kind scheme.
const (
	CodeConnectionNotExisted      = "Warning.Connection.NotExisted"
	CodeUserNotExisted            = "Warning.User.NotExisted"
	CodeGroupNotExisted           = "Warning.Group.NotExisted"
	CodeUserNotInGroup            = "Info.User.NotInGroup"
	CodeConnectionNotExistedError = "Error.Connection.NotExisted"
	CodeInvalidRequest            = "Error.Request.Invalid"
	CodeUnauthorized              = "Error.Request.Unauthorized"
	CodeForbidden                 = "Error.Request.Forbidden"
	CodeStreamNotExisted          = "Error.Stream.NotExisted"
	CodeInvocationFailed          = "Error.Invocation.Failed"
	CodeInvocationTimeout         = "Error.Invocation.Timeout"
	CodeInvocationThrottled       = "Error.Invocation.Throttled"
	CodeConnectionTooManyGroups   = "Error.Connection.TooManyGroups"
	CodeUserTooManyGroups         = "Error.User.TooManyGroups"
	CodeNotFound                  = "Error.Request.NotFound"
	CodeMethodNotAllowed          = "Error.Request.MethodNotAllowed"
	CodeTooLarge                  = "Error.Request.TooLarge"
	CodeUnsupportedMediaType      = "Error.Request.UnsupportedMediaType"
	CodeNotImplemented            = "Error.Request.NotImplemented"
	CodeInternal                  = "Error.Service.Internal"
	CodeUnavailable               = "Error.Service.Unavailable"
	CodeOverloaded                = "Error.Service.Overloaded"
)

// errKind is the class of an API error; errorTable maps it to the response.
type errKind int

const (
	errInternal errKind = iota
	errInvalid
	errUnauthorized
	errForbidden
	errRouteNotFound
	errMethodNotAllowed
	errTooLarge
	errUnsupportedMediaType
	errNotImplemented
	errConnectionNotExisted
	errUserNotExisted
	errGroupNotExisted
	errUserNotInGroup
	errConnectionNotExistedError
	errUnavailable
	errStreamNotExisted
	errInvocationFailed
	errInvocationTimeout
	errTooManyInvocations
	errOverloaded
	errConnectionTooManyGroups
	errUserTooManyGroups
)

// errorTable is the one place where error classes become HTTP responses.
var errorTable = map[errKind]struct {
	status int
	code   string
}{
	errInternal:                  {http.StatusInternalServerError, CodeInternal},
	errInvalid:                   {http.StatusBadRequest, CodeInvalidRequest},
	errUnauthorized:              {http.StatusUnauthorized, CodeUnauthorized},
	errForbidden:                 {http.StatusForbidden, CodeForbidden},
	errRouteNotFound:             {http.StatusNotFound, CodeNotFound},
	errMethodNotAllowed:          {http.StatusMethodNotAllowed, CodeMethodNotAllowed},
	errTooLarge:                  {http.StatusRequestEntityTooLarge, CodeTooLarge},
	errUnsupportedMediaType:      {http.StatusUnsupportedMediaType, CodeUnsupportedMediaType},
	errNotImplemented:            {http.StatusNotImplemented, CodeNotImplemented},
	errConnectionNotExisted:      {http.StatusNotFound, CodeConnectionNotExisted},
	errUserNotExisted:            {http.StatusNotFound, CodeUserNotExisted},
	errGroupNotExisted:           {http.StatusNotFound, CodeGroupNotExisted},
	errUserNotInGroup:            {http.StatusNotFound, CodeUserNotInGroup},
	errConnectionNotExistedError: {http.StatusNotFound, CodeConnectionNotExistedError},
	errUnavailable:               {http.StatusServiceUnavailable, CodeUnavailable},
	errStreamNotExisted:          {http.StatusNotFound, CodeStreamNotExisted},
	errInvocationFailed:          {http.StatusBadRequest, CodeInvocationFailed},
	errInvocationTimeout:         {http.StatusGatewayTimeout, CodeInvocationTimeout},
	errTooManyInvocations:        {http.StatusTooManyRequests, CodeInvocationThrottled},
	errOverloaded:                {http.StatusServiceUnavailable, CodeOverloaded},
	// 409, not 429: a retry cannot succeed until the connection or user leaves a
	// group, and the Azure SDKs retry a 429 by themselves.
	errConnectionTooManyGroups: {http.StatusConflict, CodeConnectionTooManyGroups},
	errUserTooManyGroups:       {http.StatusConflict, CodeUserTooManyGroups},
}

// apiError is the error type handlers return; anything else is a 500.
type apiError struct {
	kind errKind
	msg  string
	err  error // cause, logged but never sent to the caller
}

func (e *apiError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *apiError) Unwrap() error { return e.err }

func newErr(kind errKind, format string, args ...any) *apiError {
	return &apiError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// unavailable turns an error of the Hubs into a 503: the operation was not
// carried out (a message not published is never answered 202). Nil stays nil.
func unavailable(err error) error {
	if err == nil {
		return nil
	}
	// The cause (addresses, broker errors) is logged, not sent.
	return &apiError{kind: errUnavailable, msg: "service unavailable: the operation could not be carried out across the cluster; retry later", err: err}
}

func invalid(format string, args ...any) *apiError { return newErr(errInvalid, format, args...) }

// groupAddFailed turns the error of a group add into its answer: the refusal at
// the group limit as 409, anything else as unavailable.
func groupAddFailed(err error) error {
	var gl *hub.GroupLimitError
	switch {
	case errors.As(err, &gl) && gl.User:
		return newErr(errUserTooManyGroups, "The user is already in %d groups, the limit per user (max-groups-per-connection); remove it from a group first.", gl.Limit)
	case errors.As(err, &gl):
		return newErr(errConnectionTooManyGroups, "The connection is already in %d groups, the limit per connection (max-groups-per-connection); remove it from a group first.", gl.Limit)
	}
	return unavailable(err)
}

// errorBody is the ErrorDetail shape of the swagger, reduced to what we fill.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeError writes err as a response and reports its status.
func writeError(w http.ResponseWriter, r *http.Request, err error) int {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{kind: errInternal, msg: "internal error", err: err}
	}
	entry, ok := errorTable[ae.kind]
	if !ok {
		entry = errorTable[errInternal]
	}
	h := w.Header()
	h.Set("x-ms-error-code", entry.code)
	if ae.kind == errUnauthorized {
		// A short text, never the token or why it failed in detail.
		h.Set("WWW-Authenticate", "Bearer")
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(entry.status)
		if r.Method != http.MethodHead {
			_, _ = w.Write([]byte("Unauthorized"))
		}
		return entry.status
	}
	if ae.kind == errOverloaded {
		h.Set("Retry-After", "1")
	}
	msg := ae.msg
	if ae.kind == errInternal {
		msg = "internal error"
	}
	body, _ := json.Marshal(errorBody{Code: entry.code, Message: msg})
	h.Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(entry.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
	return entry.status
}
