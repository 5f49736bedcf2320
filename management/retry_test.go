package management

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/connection"
)

// failing answers the first n requests with status, then succeeds.
func failing(n int32, status int) (func(http.ResponseWriter, *http.Request), *atomic.Int32) {
	var count atomic.Int32
	return func(w http.ResponseWriter, r *http.Request) {
		if count.Add(1) <= n {
			w.WriteHeader(status)
			return
		}
		w.WriteHeader(http.StatusOK)
	}, &count
}

func TestRetries(t *testing.T) {
	retry := RetryOptions{MaxRetries: 3, Delay: time.Millisecond}
	ctx := context.Background()
	send := func(c *Client) error { return c.SendToAll(ctx, "chat", "t", nil, nil) }
	group := func(c *Client) error { return c.AddUserToGroup(ctx, "chat", "g", "u", nil) }
	tests := []struct {
		name      string
		retry     RetryOptions
		fails     int32
		status    int
		op        func(*Client) error
		wantCalls int32
		wantErr   bool
	}{
		{"off by default", RetryOptions{}, 1, 503, send, 1, true},
		{"off by default for groups", RetryOptions{}, 1, 503, group, 1, true},
		{"message retried above 500", retry, 2, 503, send, 3, false},
		{"message not retried on 500", retry, 2, 500, send, 1, true},
		{"message not retried on 408", retry, 2, 408, send, 1, true},
		{"message not retried on 400", retry, 2, 400, send, 1, true},
		{"group retried on 500", retry, 2, 500, group, 3, false},
		{"group retried on 408", retry, 1, 408, group, 2, false},
		{"group not retried on 400", retry, 1, 400, group, 1, true},
		{"gives up after MaxRetries", retry, 10, 502, group, 4, true},
		{"exponential", RetryOptions{MaxRetries: 2, Delay: time.Millisecond, Mode: RetryExponential}, 2, 503, send, 3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeService(t, testKey)
			respond, count := failing(tt.fails, tt.status)
			f.setRespond(respond)
			c := newTestClient(t, &ClientOptions{Retry: tt.retry}, f.endpoint("", connection.Primary))
			err := tt.op(c)
			if (err != nil) != tt.wantErr {
				t.Errorf("error %v, wantErr %v", err, tt.wantErr)
			}
			if n := count.Load(); n != tt.wantCalls {
				t.Errorf("%d calls, want %d", n, tt.wantCalls)
			}
		})
	}
}

func TestRetryOnTimeout(t *testing.T) {
	for _, tc := range []struct {
		name      string
		message   bool
		wantCalls int32
		wantErr   bool
	}{{"group call retried", false, 2, false}, {"message not retried", true, 1, true}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeService(t, testKey)
			var count atomic.Int32
			f.setRespond(func(w http.ResponseWriter, r *http.Request) {
				if count.Add(1) == 1 {
					<-r.Context().Done() // hang until the client gives up
					return
				}
				w.WriteHeader(http.StatusAccepted)
			})
			c := newTestClient(t, &ClientOptions{Timeout: 100 * time.Millisecond, Retry: RetryOptions{MaxRetries: 2, Delay: time.Millisecond}},
				f.endpoint("", connection.Primary))
			var err error
			if tc.message {
				err = c.SendToGroup(context.Background(), "chat", "g", "t", nil, nil)
			} else {
				err = c.AddConnectionToGroup(context.Background(), "chat", "g", "c", nil)
			}
			if (err != nil) != tc.wantErr {
				t.Errorf("error %v, wantErr %v", err, tc.wantErr)
			}
			if n := count.Load(); n != tc.wantCalls {
				t.Errorf("%d calls, want %d", n, tc.wantCalls)
			}
		})
	}
}

func TestRetryWaitHonoursContext(t *testing.T) {
	f := newFakeService(t, testKey)
	respond, _ := failing(100, 503)
	f.setRespond(respond)
	c := newTestClient(t, &ClientOptions{Retry: RetryOptions{MaxRetries: 5, Delay: time.Hour}}, f.endpoint("", connection.Primary))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.SendToAll(ctx, "chat", "t", nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestRetryDelay(t *testing.T) {
	c := &Client{retry: RetryOptions{Delay: time.Second, MaxDelay: 5 * time.Second, Mode: RetryExponential}}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for i, w := range want {
		if d := c.retryDelay(i); d != w {
			t.Errorf("attempt %d: %v, want %v", i, d, w)
		}
	}
	c.retry.Mode = RetryFixed
	if d := c.retryDelay(3); d != time.Second {
		t.Errorf("fixed: %v", d)
	}
}

// Timeout (AzureSignalRHttpClientTimeout) bounds each request also when the caller brings
// its own http.Client, which may have no timeout at all.
func TestTimeoutWithCustomHTTPClient(t *testing.T) {
	f := newFakeService(t, testKey)
	release := make(chan struct{})
	defer close(release)
	f.setRespond(func(w http.ResponseWriter, r *http.Request) {
		select { // hang until the client gives up (or the test ends)
		case <-r.Context().Done():
		case <-release:
		}
	})
	c := newTestClient(t, &ClientOptions{HTTPClient: &http.Client{}, Timeout: 100 * time.Millisecond},
		f.endpoint("", connection.Primary))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	err := c.AddConnectionToGroup(ctx, "chat", "g", "c", nil)
	if err == nil {
		t.Fatal("no error from a service that never answers")
	}
	if ctx.Err() != nil || time.Since(start) > 3*time.Second {
		t.Fatalf("the request was not bounded by Timeout: %v after %v", err, time.Since(start))
	}
}
