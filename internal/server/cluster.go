package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"

	"github.com/signalbox-io/signalbox/internal/cluster"
)

// newNode builds the cluster node the REST API talks to: alone in memory, or one
// node of a cluster on Redis when redis-url is set.
func (s *Server) newNode(cfg Config, logger *slog.Logger) (*cluster.Node, error) {
	if cfg.RedisURL == "" {
		node, err := cluster.NewNode(context.Background(), cluster.Options{Logger: logger, NodeID: cfg.NodeID, Flusher: s.flushers.get})
		if err != nil {
			return nil, fmt.Errorf("server: node: %w", err)
		}
		return node, nil
	}
	id := cfg.NodeID
	if id == "" {
		id = "node-" + cluster.NewNodeID()
	}
	b, err := cluster.NewRedisBroker(cluster.RedisOptions{
		URL:           cfg.RedisURL,
		Prefix:        cfg.RedisPrefix,
		NodeID:        id,
		DeadAfter:     cfg.NodeTimeout,
		Logger:        logger,
		OnUnpublished: s.metrics.BackplanePublishError,
		OnOutage:      s.metrics.BackplaneOutage,
	})
	if err != nil {
		return nil, fmt.Errorf("server: cluster: %w", err)
	}
	node, err := cluster.NewNode(context.Background(), cluster.Options{Broker: b, NodeID: id, Logger: logger, Flusher: s.flushers.get})
	if err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("server: cluster: %w", err)
	}
	s.AddReadinessCheck("cluster", func(context.Context) error { return node.Ready() })
	logger.Info("cluster mode", slog.String("node", id), slog.String("prefix", cfg.RedisPrefix))
	s.proxyTransport = http.DefaultTransport.(*http.Transport).Clone()
	return node, nil
}

// nodeAddress is the address other nodes forward to: the configured one, or the
// listen address, with the host name when listening on every interface.
func (s *Server) nodeAddress(addr net.Addr) string {
	if s.cfg.NodeAddress != "" {
		return strings.TrimRight(s.cfg.NodeAddress, "/")
	}
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return s.cfg.Scheme() + "://" + addr.String()
	}
	if h, _, err := net.SplitHostPort(s.cfg.Listen); err == nil && h != "" {
		host = h
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if name, err := os.Hostname(); err == nil {
			host = name
		}
	}
	return s.cfg.Scheme() + "://" + net.JoinHostPort(host, port)
}

// connectionToken is the secret id of a new connection. In a cluster it names the
// node that holds the connection, after a '.' (random ids never contain one), so
// that any node can send the client's requests there.
func (s *Server) connectionToken() string {
	if !s.node.Clustered() {
		return newID()
	}
	return newID() + "." + s.node.ID()
}

// forwardedHeader marks a request one node forwarded to another: it is never
// forwarded again.
const forwardedHeader = "X-Signalbox-Forwarded"

// forward sends a client's request for a connection this node does not hold to
// the node that does, named by the token. It reports false (nothing written) when
// the token names no other live node.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, token string) bool {
	if !s.node.Clustered() || r.Header.Get(forwardedHeader) != "" {
		return false
	}
	_, node, ok := strings.Cut(token, ".")
	if !ok || node == s.node.ID() {
		return false
	}
	return s.forwardTo(w, r, node)
}

// forwardTo proxies r to node; it reports false (nothing written) when the node has
// no known address.
func (s *Server) forwardTo(w http.ResponseWriter, r *http.Request, node string) bool {
	addr, ok := s.node.NodeAddress(r.Context(), node)
	if !ok || addr == "" {
		return false
	}
	target, err := url.Parse(addr)
	if err != nil {
		return false
	}
	p := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // the owner sees the host the client used
			pr.SetXForwarded()
			pr.Out.Header.Set(forwardedHeader, s.node.ID())
		},
		Transport:     s.proxyTransport,
		FlushInterval: -1, // SSE and long polling: every write goes through at once
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.log.Warn("cluster: forwarding failed", slog.String("node", node), slog.Any("error", err))
			textError(w, http.StatusBadGateway, "The node holding this connection cannot be reached.")
		},
	}
	s.metrics.ClusterForward()
	p.ServeHTTP(w, r)
	return true
}
