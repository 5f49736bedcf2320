package server

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/protocol"
)

// scrape reads /metrics through the handler: "name{labels}" -> value.
func scrape(t *testing.T, s *Server) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestMetricsAfterAKnownWorkload runs a workload whose every count is known and
// scrapes /metrics.
func TestMetricsAfterAKnownWorkload(t *testing.T) {
	rec, upURL := newUpstream(t)
	rec.reply = func(w http.ResponseWriter, r *http.Request, _ []byte) {
		if r.Header.Get("X-ASRS-Event") == "boom" {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	}
	ts := startServer(t, func(c *Config) {
		c.Upstream = StringList{upURL}
		c.KeepAliveInterval = time.Hour // no pings in the counts
	})

	jc, _ := ts.connectWS("chat", "ann", protocol.JSON())
	mc, _ := ts.connectWS("chat", "bob", protocol.MessagePack())
	waitFor(t, 5*time.Second, "both registered", func() bool {
		return ts.s.Registry().UserExists("chat", "ann") && ts.s.Registry().UserExists("chat", "bob")
	})

	// Two invocations from the JSON client: the upstream answers 200, then 500.
	var sentIn int
	for _, target := range []string{"hello", "boom"} {
		frame, err := protocol.JSON().AppendFrame(nil, &protocol.Invocation{Target: target, Arguments: []protocol.Value{protocol.JSONValue([]byte(`"x"`))}})
		if err != nil {
			t.Fatal(err)
		}
		sentIn += len(frame)
		jc.sendRaw(frame)
	}

	// Three REST broadcasts, one with a wrong key, one to no route.
	path := "/api/hubs/chat/:send"
	body := `{"target":"news","arguments":["hi"]}`
	for i := 0; i < 3; i++ {
		if resp := ts.do("POST", path+"?api-version=2022-06-01", restToken(t, ts, path), strings.NewReader(body), map[string]string{"Content-Type": "application/json"}); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("send: %d", resp.StatusCode)
		}
	}
	wrong, _ := auth.NewToken("not-the-key-0123456789abcdefghijklmnopqrstuv", auth.TokenOptions{Audience: auth.RESTAudience(ts.url, path)})
	if resp := ts.do("POST", path, wrong, strings.NewReader(body), nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong key: %d", resp.StatusCode)
	}
	if resp := ts.do("GET", "/api/hubs/chat/nothing/here/at/all", "", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("no route: %d", resp.StatusCode)
	}
	// Negotiate without a token, and with an expired one.
	if resp := ts.do("POST", "/client/negotiate?hub=chat", "", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("negotiate without token: %d", resp.StatusCode)
	}
	expired, _ := auth.NewToken(testKey, auth.TokenOptions{Audience: auth.ClientAudience(ts.url, "chat"),
		Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }})
	if resp := ts.do("POST", "/client/negotiate?hub=chat", expired, nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("negotiate with an expired token: %d", resp.StatusCode)
	}

	// Each client receives its handshake answer and the three broadcasts: count the bytes.
	sentOut := 0
	for _, c := range []*wsClient{jc, mc} {
		sentOut += len(protocol.AppendHandshakeResponse(nil, ""))
		got := 0
		for got < 3 {
			b, _, err := c.readMsg(5 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			sentOut += len(b)
			c.fr.feed(t, b)
			for _, m := range c.fr.pending {
				if inv, ok := m.(*protocol.Invocation); ok && inv.Target == "news" {
					got++
				}
			}
			c.fr.pending = nil
		}
	}

	// The upstream calls end after the server received the responses: wait for them.
	waitFor(t, 5*time.Second, "4 upstream calls (2 connected, hello, boom)", func() bool {
		m := scrape(t, ts.s)
		return m[`signalbox_upstream_calls_total{status="200"}`] == 3 && m[`signalbox_upstream_calls_total{status="500"}`] == 1
	})
	m := scrape(t, ts.s)
	want := map[string]float64{
		`signalbox_connections{hub="chat",protocol="json",transport="WebSockets"}`:                     1,
		`signalbox_connections{hub="chat",protocol="messagepack",transport="WebSockets"}`:              1,
		`signalbox_connections_opened_total{hub="chat",protocol="json",transport="WebSockets"}`:        1,
		`signalbox_connections_opened_total{hub="chat",protocol="messagepack",transport="WebSockets"}`: 1,
		`signalbox_messages_received_total{transport="WebSockets"}`:                                    2,
		`signalbox_received_bytes_total{transport="WebSockets"}`:                                       float64(sentIn),
		`signalbox_messages_sent_total{transport="WebSockets"}`:                                        8,
		`signalbox_sent_bytes_total{transport="WebSockets"}`:                                           float64(sentOut),
		`signalbox_rest_requests_total{operation="sendAll",status="202"}`:                              3,
		`signalbox_rest_requests_total{operation="sendAll",status="401"}`:                              1,
		`signalbox_rest_requests_total{operation="unknown",status="404"}`:                              1,
		`signalbox_auth_failures_total{endpoint="rest",reason="signature"}`:                            1,
		`signalbox_auth_failures_total{endpoint="negotiate",reason="missing"}`:                         1,
		`signalbox_auth_failures_total{endpoint="negotiate",reason="expired"}`:                         1,
		`signalbox_upstream_call_duration_seconds_count{status="200"}`:                                 3,
		`signalbox_upstream_call_duration_seconds_count{status="500"}`:                                 1,
		`signalbox_slow_consumer_closes_total`:                                                         0,
		`signalbox_backplane_publish_errors_total`:                                                     0,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	for k := range m {
		if !strings.HasPrefix(k, "signalbox_") {
			t.Errorf("metric %s does not start with signalbox_", k)
		}
	}

	// A closed connection leaves the gauge.
	jc.c.CloseNow()
	waitFor(t, 5*time.Second, "the JSON connection to end", func() bool { return !ts.s.Registry().UserExists("chat", "ann") })
	waitFor(t, 5*time.Second, "the gauge to drop", func() bool {
		return scrape(t, ts.s)[`signalbox_connections{hub="chat",protocol="json",transport="WebSockets"}`] == 0
	})
}

// TestAuthFailuresAreLoggedWithoutTheToken is the regression test of issue 10: a
// wrong key gave the client a 401 and logged nothing on the server.
func TestAuthFailuresAreLoggedWithoutTheToken(t *testing.T) {
	var logs syncBuffer
	cfg := fastConfig()
	s, err := New(cfg, newTestLogger(&logs))
	if err != nil {
		t.Fatal(err)
	}
	ts := serveOn(t, s)
	wrongKey := "a-wrong-key-0123456789abcdefghijklmnopqrstuvw"
	bad, _ := auth.NewToken(wrongKey, auth.TokenOptions{Audience: auth.ClientAudience(ts.url, "chat")})
	for i := 0; i < authLogBurst+5; i++ {
		if resp := ts.do("POST", "/client/negotiate?hub=chat&access_token="+bad, "", nil, nil); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("negotiate: %d", resp.StatusCode)
		}
	}
	path := "/api/hubs/chat/:send"
	restBad, _ := auth.NewToken(wrongKey, auth.TokenOptions{Audience: auth.RESTAudience(ts.url, path)})
	ts.do("POST", path, restBad, strings.NewReader(`{"target":"t","arguments":[]}`), nil)

	out := logs.String()
	lines := strings.Count(out, "access token rejected")
	if lines != authLogBurst {
		t.Errorf("%d log lines for %d failures, want the burst of %d:\n%s", lines, authLogBurst+6, authLogBurst, out)
	}
	if !strings.Contains(out, "reason=signature") || !strings.Contains(out, "endpoint=negotiate") {
		t.Errorf("the log does not give endpoint and reason:\n%s", out)
	}
	// At debug level every refusal has its own line with its reason (issue 7: each
	// refused token with a logged reason), the flood limit notwithstanding.
	for _, want := range []struct {
		endpoint string
		n        int
	}{{"negotiate", authLogBurst + 5}, {"rest", 1}} {
		if got := countLines(out, "access token refused", "endpoint="+want.endpoint, "reason=signature"); got != want.n {
			t.Errorf("%d debug lines for %s, want %d:\n%s", got, want.endpoint, want.n, out)
		}
	}
	if strings.Contains(out, bad) || strings.Contains(out, restBad) || strings.Contains(out, wrongKey) || strings.Contains(out, "access_token=") {
		t.Errorf("the log holds the token or key:\n%s", out)
	}
	if got := scrape(t, s)[`signalbox_auth_failures_total{endpoint="negotiate",reason="signature"}`]; got != float64(authLogBurst+5) {
		t.Errorf("counted %v negotiate failures, want %d", got, authLogBurst+5)
	}
}

// countLines counts the lines of out holding every one of parts.
func countLines(out string, parts ...string) int {
	n := 0
	for line := range strings.Lines(out) {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			n++
		}
	}
	return n
}

// syncBuffer is a log sink the server's goroutines write while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newTestLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
