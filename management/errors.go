package management

import "fmt"

// Known x-ms-error-code values of 404 responses that mean "false" or "nothing to do".
const (
	CodeConnectionNotExisted      = "Warning.Connection.NotExisted"
	CodeUserNotExisted            = "Warning.User.NotExisted"
	CodeGroupNotExisted           = "Warning.Group.NotExisted"
	CodeUserNotInGroup            = "Info.User.NotInGroup"
	CodeConnectionNotExistedError = "Error.Connection.NotExisted"
)

// ResponseError is a non-2xx answer of the service; find it with errors.As.
type ResponseError struct {
	Method     string
	URL        string // without query
	StatusCode int
	ErrorCode  string // x-ms-error-code header
	Message    string // response body (truncated) or a hint
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
