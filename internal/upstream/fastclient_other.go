//go:build !unix

package upstream

// rawSteps has nothing to hold where the connection is not peeked.
type rawSteps struct{}

func (r *rawSteps) bind(*fastConn) {}

// alive cannot peek without blocking here; a connection the server closed while idle
// fails the call that reuses it.
func (fc *fastConn) alive() bool { return true }

// writeAndAwait writes the request; the response read waits for the answer.
func (fc *fastConn) writeAndAwait() error { return fc.write() }
