package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/signalbox-io/signalbox/internal/restapi"
)

// executeForwardTimeout bounds the :execute one node runs for another.
const executeForwardTimeout = 10 * time.Second

// fanOutExecute runs POST .../:execute on every node of a cluster, each node on the
// connections it holds: here first (which also checks the request: a bad filter or
// command is refused before any other node sees it), then on the other live nodes at
// once. It reports false when the request is not one to fan out.
func (s *Server) fanOutExecute(w http.ResponseWriter, r *http.Request, api http.Handler) bool {
	if !s.node.Clustered() || r.Header.Get(forwardedHeader) != "" || !restapi.IsExecute(r) {
		return false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, restapi.DefaultMaxBodyBytes+1))
	if err != nil || int64(len(body)) > restapi.DefaultMaxBodyBytes {
		// Let the REST API answer (413, or a read error) from what is left.
		r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), r.Body))
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	local := &bufferedResponse{header: make(http.Header)}
	api.ServeHTTP(local, r)
	if local.status != http.StatusAccepted {
		local.copyTo(w)
		return true
	}
	nodes, err := s.node.LiveNodes(r.Context())
	if err != nil {
		writeUnavailable(w, "the cluster cannot be read; :execute ran on this node only: "+err.Error())
		return true
	}
	var (
		mu     sync.Mutex
		failed []string
		wg     sync.WaitGroup
	)
	for node, addr := range nodes {
		if node == s.node.ID() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.executeOn(r.Context(), r, addr, body); err != nil {
				s.log.Warn("cluster: :execute on another node failed", slog.String("node", node), slog.Any("error", err))
				mu.Lock()
				failed = append(failed, node)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(failed) > 0 {
		sort.Strings(failed)
		writeUnavailable(w, fmt.Sprintf(":execute did not run on node(s) %s; it ran on the others", strings.Join(failed, ", ")))
		return true
	}
	w.WriteHeader(http.StatusAccepted)
	return true
}

// executeOn sends the :execute request to the node at addr, which runs it on its own
// connections only (the forwarded header stops it from fanning out again).
func (s *Server) executeOn(ctx context.Context, r *http.Request, addr string, body []byte) error {
	if addr == "" {
		return fmt.Errorf("the node has no forwarding address")
	}
	ctx, cancel := context.WithTimeout(ctx, executeForwardTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(addr, "/")+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	for _, h := range []string{"Authorization", "Content-Type"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	req.Host = r.Host // the owner sees the host the caller used, as forwarded requests do
	req.Header.Set(forwardedHeader, s.node.ID())
	tr := http.RoundTripper(s.proxyTransport)
	if tr == nil {
		tr = http.DefaultTransport
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("status %d (%s)", resp.StatusCode, resp.Header.Get("x-ms-error-code"))
	}
	return nil
}

func writeUnavailable(w http.ResponseWriter, msg string) {
	b, _ := json.Marshal(map[string]string{"code": restapi.CodeUnavailable, "message": msg})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("x-ms-error-code", restapi.CodeUnavailable)
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write(b)
}

// bufferedResponse holds a response until the caller decides what to send.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }
func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}
func (b *bufferedResponse) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedResponse) copyTo(w http.ResponseWriter) {
	for k, vs := range b.header {
		w.Header()[k] = vs
	}
	if b.status == 0 {
		b.status = http.StatusOK
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(b.body.Bytes())
}
