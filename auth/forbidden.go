package auth

import "errors"

// ErrForbidden: the token is valid but the identity it speaks for is not allowed to
// make the request (HTTP 403, where the other errors are 401).
var ErrForbidden = errors.New("identity not allowed")
