package transport

import (
	"bytes"
	"fmt"
	"net/http"
	"time"
)

// SSE writes Server-Sent Events to one response. Only text payloads travel over it
// (the transport's transfer format is Text).
type SSE struct {
	w            http.ResponseWriter
	rc           *http.ResponseController
	writeTimeout time.Duration
	buf          []byte
}

// StartSSE writes the status line and headers of an event stream and the ":\r\n"
// comment prelude (which makes Firefox fire "open"), then flushes. writeTimeout
// bounds every later write (0 = none), so a reader that stopped reading is detected.
func StartSSE(w http.ResponseWriter, writeTimeout time.Duration) (*SSE, error) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache,no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Encoding", "identity")
	// Reverse proxies (nginx) otherwise buffer the stream.
	h.Set("X-Accel-Buffering", "no")
	s := &SSE{w: w, rc: http.NewResponseController(w), writeTimeout: writeTimeout}
	w.WriteHeader(http.StatusOK)
	if err := s.write([]byte(":\r\n")); err != nil {
		return nil, err
	}
	return s, nil
}

// Write sends payload as one event and flushes it.
func (s *SSE) Write(payload []byte) error {
	if len(payload) == 0 {
		return nil
	}
	s.buf = AppendSSEEvent(s.buf[:0], payload)
	err := s.write(s.buf)
	if cap(s.buf) > 64<<10 {
		s.buf = nil // do not pin a burst's buffer for the connection's lifetime
	}
	return err
}

func (s *SSE) write(b []byte) error {
	if s.writeTimeout > 0 {
		// Not every ResponseWriter supports deadlines (httptest.ResponseRecorder);
		// the write itself still works there.
		_ = s.rc.SetWriteDeadline(time.Now().Add(s.writeTimeout))
	}
	if _, err := s.w.Write(b); err != nil {
		return fmt.Errorf("sse: write: %w", err)
	}
	if err := s.rc.Flush(); err != nil {
		return fmt.Errorf("sse: flush: %w", err)
	}
	return nil
}

// AppendSSEEvent appends payload formatted as one event: "data: <line>\r\n" for every
// line of the payload (a trailing '\r' of a line is dropped), then an empty "\r\n". A
// '\r' inside a line also starts a new data line: browsers end a line there, and would
// drop what follows as an unknown field.
func AppendSSEEvent(dst, payload []byte) []byte {
	for {
		line, rest, found := bytes.Cut(payload, []byte{'\n'})
		line = bytes.TrimSuffix(line, []byte{'\r'})
		for {
			part, more, cr := bytes.Cut(line, []byte{'\r'})
			dst = append(dst, "data: "...)
			dst = append(dst, part...)
			dst = append(dst, '\r', '\n')
			if !cr {
				break
			}
			line = more
		}
		if !found {
			break
		}
		payload = rest
	}
	return append(dst, '\r', '\n')
}
