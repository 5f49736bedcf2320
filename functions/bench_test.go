package functions

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/signalbox-io/signalbox/auth"
)

// discardWriter is a ResponseWriter that keeps nothing, so the benchmark counts the
// trigger's own work and not a recorder's.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkTriggerInvoke is one echo invocation through Trigger.ServeHTTP, as the bench's
// function app answers the upstream scenario (no HTTP server: the trigger's own cost).
func BenchmarkTriggerInvoke(b *testing.B) {
	tr, err := NewTrigger(TriggerOptions{AccessKeys: []string{testKey}})
	if err != nil {
		b.Fatal(err)
	}
	tr.HandleMessage("chat", "echo", MessageFunc(func(_ context.Context, ic *InvocationContext) (any, error) {
		if len(ic.Arguments) == 0 {
			return nil, errors.New("echo needs an argument")
		}
		return ic.Arguments[0], nil
	}))
	body := []byte(`{"type":1,"invocationId":"7","target":"echo","arguments":[1764770000000000000,"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"]}`)
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1/runtime/webhooks/signalr", nil)
	req.Header = http.Header{
		"Content-Type":         {"application/json"},
		"X-Asrs-Hub":           {"chat"},
		"X-Asrs-Category":      {"messages"},
		"X-Asrs-Event":         {"echo"},
		"X-Asrs-Connection-Id": {testConn},
		"X-Asrs-Signature":     {auth.UpstreamSignature([]string{testKey}, testConn)},
		"User-Agent":           {"Go-http-client/1.1"},
	}
	req.ContentLength = int64(len(body)) // the service always sends the length
	w := &discardWriter{h: http.Header{}}
	rd := bytes.NewReader(body)
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		req.Body = io.NopCloser(rd)
		clear(w.h)
		tr.ServeHTTP(w, req)
	}
}
