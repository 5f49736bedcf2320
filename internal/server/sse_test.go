package server

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/protocol"
)

// sseClient reads raw events from an SSE response.
type sseClient struct {
	t    *testing.T
	resp *http.Response
	r    *bufio.Reader
	fr   *frameReader
}

func (ts *testServer) openSSE(hubName, user, id string) (*sseClient, context.CancelFunc) {
	ts.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	u := ts.url + "/client/?hub=" + hubName + "&id=" + id + "&access_token=" + url.QueryEscape(ts.token(hubName, user))
	req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	ts.t.Cleanup(func() { cancel(); resp.Body.Close() })
	return &sseClient{t: ts.t, resp: resp, r: bufio.NewReader(resp.Body), fr: newFrameReader(protocol.JSON())}, cancel
}

// event reads one event's data (lines joined with \n).
func (sc *sseClient) event(timeout time.Duration) (string, error) {
	sc.t.Helper()
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		var lines []string
		for {
			line, err := sc.r.ReadString('\n')
			if err != nil {
				ch <- res{err: err}
				return
			}
			if !strings.HasSuffix(line, "\r\n") {
				ch <- res{err: io.ErrUnexpectedEOF}
				return
			}
			line = strings.TrimSuffix(line, "\r\n")
			if line == "" {
				ch <- res{s: strings.Join(lines, "\n")}
				return
			}
			data, ok := strings.CutPrefix(line, "data: ")
			if !ok {
				ch <- res{err: io.ErrUnexpectedEOF}
				return
			}
			lines = append(lines, data)
		}
	}()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-time.After(timeout):
		sc.t.Fatal("timed out waiting for an SSE event")
		return "", nil
	}
}

// next returns the next hub message of the stream, after the handshake response,
// reading events as needed. The service writes every frame queued at once as one event
// (the handshake response and the next message may share one, as the SignalR clients
// allow), so a test must not count events to count messages.
func (sc *sseClient) next(timeout time.Duration) protocol.Message {
	sc.t.Helper()
	deadline := time.Now().Add(timeout)
	for len(sc.fr.pending) == 0 {
		ev, err := sc.event(time.Until(deadline))
		if err != nil {
			sc.t.Fatalf("SSE stream: %v", err)
		}
		if errText, _ := sc.fr.feed(sc.t, []byte(ev)); errText != "" {
			sc.t.Fatalf("handshake error: %s", errText)
		}
	}
	m := sc.fr.pending[0]
	sc.fr.pending = sc.fr.pending[1:]
	return m
}

func (ts *testServer) post(hubName, user, id string, body []byte) *http.Response {
	ts.t.Helper()
	return ts.do("POST", "/client/?hub="+hubName+"&id="+id, ts.token(hubName, user), strings.NewReader(string(body)),
		map[string]string{"Content-Type": "text/plain;charset=UTF-8"})
}

func TestServerSentEvents(t *testing.T) {
	ts := startServer(t, nil)
	n := ts.negotiate("chat", "sam")
	sc, _ := ts.openSSE("chat", "sam", n.ConnectionToken)
	h := sc.resp.Header
	if sc.resp.StatusCode != 200 || h.Get("Content-Type") != "text/event-stream" || h.Get("Cache-Control") != "no-cache,no-store" ||
		h.Get("Pragma") != "no-cache" || h.Get("Content-Encoding") != "identity" {
		t.Fatalf("%d %v", sc.resp.StatusCode, h)
	}
	prelude := make([]byte, 3)
	if _, err := io.ReadFull(sc.r, prelude); err != nil || string(prelude) != ":\r\n" {
		t.Fatalf("prelude %q %v", prelude, err)
	}
	hs := protocol.AppendHandshakeRequest(nil, protocol.HandshakeRequest{Protocol: "json", Version: 1})
	if resp := ts.post("chat", "sam", n.ConnectionToken, hs); resp.StatusCode != 200 {
		t.Fatalf("handshake POST %d", resp.StatusCode)
	}
	ev, err := sc.event(2 * time.Second)
	if err != nil || ev != "{}\x1e" {
		t.Fatalf("handshake event %q %v", ev, err)
	}
	waitFor(t, 2*time.Second, "registration", func() bool { return ts.s.Registry().UserExists("chat", "sam") })
	broadcast(ts.s, "chat", "greet", "line1\nline2")
	ev, err = sc.event(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	sc.fr.handshake = true
	sc.fr.feed(t, []byte(ev))
	if target, arg := invocationText(t, sc.fr.pending[0]); target != "greet" || arg != "line1\nline2" {
		t.Fatalf("%s(%q)", target, arg)
	}
	// A second event stream for the same connection is refused.
	resp := ts.do("GET", "/client/?hub=chat&id="+n.ConnectionToken, ts.token("chat", "sam"), nil, map[string]string{"Accept": "text/event-stream"})
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("second stream: %d", resp.StatusCode)
	}
	// Closing from the client ends the stream.
	if resp := ts.post("chat", "sam", n.ConnectionToken, mustFrame(t, protocol.JSON(), &protocol.Close{})); resp.StatusCode != 200 {
		t.Fatalf("close POST %d", resp.StatusCode)
	}
	if _, err := sc.event(2 * time.Second); err == nil {
		t.Fatal("stream still open after the client's Close")
	}
	waitFor(t, 2*time.Second, "removal", func() bool { return ts.s.Stats().Connections == 0 })
}

func TestServerSentEventsRejectsMessagePack(t *testing.T) {
	ts := startServer(t, nil)
	n := ts.negotiate("chat", "")
	sc, _ := ts.openSSE("chat", "", n.ConnectionToken)
	if _, err := sc.r.Discard(3); err != nil {
		t.Fatal(err)
	}
	ts.post("chat", "", n.ConnectionToken, protocol.AppendHandshakeRequest(nil, protocol.HandshakeRequest{Protocol: "messagepack", Version: 1}))
	ev, err := sc.event(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	errText, _, err := protocol.ParseHandshakeResponse([]byte(ev))
	if err != nil || !strings.Contains(errText, "Binary") {
		t.Fatalf("handshake response %q (%v)", ev, err)
	}
	if _, err := sc.event(2 * time.Second); err == nil {
		t.Fatal("stream still open after a failed handshake")
	}
}

func mustFrame(t *testing.T, p protocol.Protocol, m protocol.Message) []byte {
	t.Helper()
	b, err := p.AppendFrame(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
