package metrics_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/internal/metrics"
)

func scrapeText(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

func TestCounters(t *testing.T) {
	m := metrics.New(prometheus.NewRegistry())
	c := m.ConnOpened("chat", "WebSockets", "json")
	if c2 := m.ConnOpened("chat", "WebSockets", "json"); c2 != c {
		t.Error("connections of one kind do not share their metrics")
	}
	c.Received(2, 100)
	c.Sent(7)
	c.Closed()
	m.BackplanePublishError()
	m.BackplanePublishError()
	m.SlowConsumerClosed()
	m.UpstreamCall("timeout", 3*time.Second)
	for range 3 { // the first call of a status sets its series up, the others reuse them
		m.UpstreamCall("200", 2*time.Millisecond)
	}
	m.RESTRequest("sendAll", 202)
	m.AuthFailure("rest", "expired")
	text := scrapeText(t, m)
	for _, want := range []string{
		`signalbox_connections{hub="chat",protocol="json",transport="WebSockets"} 1`,
		`signalbox_connections_opened_total{hub="chat",protocol="json",transport="WebSockets"} 2`,
		`signalbox_messages_received_total{transport="WebSockets"} 2`,
		`signalbox_received_bytes_total{transport="WebSockets"} 100`,
		`signalbox_messages_sent_total{transport="WebSockets"} 1`,
		`signalbox_sent_bytes_total{transport="WebSockets"} 7`,
		`signalbox_backplane_publish_errors_total 2`,
		`signalbox_slow_consumer_closes_total 1`,
		`signalbox_upstream_calls_total{status="timeout"} 1`,
		`signalbox_upstream_call_duration_seconds_bucket{status="timeout",le="5"} 1`,
		`signalbox_upstream_call_duration_seconds_bucket{status="timeout",le="2.5"} 0`,
		`signalbox_upstream_calls_total{status="200"} 3`,
		`signalbox_upstream_call_duration_seconds_count{status="200"} 3`,
		`signalbox_rest_requests_total{operation="sendAll",status="202"} 1`,
		`signalbox_auth_failures_total{endpoint="rest",reason="expired"} 1`,
		`signalbox_go_goroutines `,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q", want)
		}
	}
}

func TestNilRecordsNothing(t *testing.T) {
	var m *metrics.Metrics
	c := m.ConnOpened("chat", "WebSockets", "json")
	c.Received(1, 1)
	c.Sent(1)
	c.Closed()
	m.BackplanePublishError()
	m.SlowConsumerClosed()
	m.UpstreamCall("200", time.Second)
	m.RESTRequest("sendAll", 202)
	m.AuthFailure("rest", "expired")
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("nil metrics handler: %d", rec.Code)
	}
}

func TestAuthReason(t *testing.T) {
	for err, want := range map[error]string{
		nil: "missing", auth.ErrNoToken: "missing", auth.ErrTokenTooLong: "too_long",
		fmt.Errorf("x: %w", auth.ErrExpired): "expired", auth.ErrAudience: "audience",
		auth.ErrBadSignature: "signature", auth.ErrAlgorithm: "algorithm", auth.ErrMalformed: "malformed",
		errors.New("other"): "invalid",
	} {
		if got := metrics.AuthReason(err); got != want {
			t.Errorf("AuthReason(%v) = %q, want %q", err, got, want)
		}
	}
}

// Each server has its own registry; other parts of the service record through the
// Metrics it holds.
func Example() {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.BackplanePublishError()
	families, _ := reg.Gather()
	for _, f := range families {
		if f.GetName() == "signalbox_backplane_publish_errors_total" {
			fmt.Println(f.GetName(), f.GetMetric()[0].GetCounter().GetValue())
		}
	}
	// Output: signalbox_backplane_publish_errors_total 1
}
