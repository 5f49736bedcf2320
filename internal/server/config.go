package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/signalbox-io/signalbox/internal/redact"
	"github.com/signalbox-io/signalbox/internal/upstream"
)

// Config is everything `signalbox serve` can be told. The same struct is filled, in
// order of increasing precedence, by Default, a YAML file, the environment and flags.
// YAML keys are the flag names.
type Config struct {
	// Listen is the HOST:PORT the HTTP server binds.
	Listen string `yaml:"listen"`
	// AccessKeys sign and verify tokens: primary first, then secondary. Empty means a
	// key is generated at start and printed in a connection string.
	AccessKeys StringList `yaml:"access-key"`
	// Upstream holds URL templates ({hub}, {category}, {event}) that receive every event.
	Upstream StringList `yaml:"upstream"`
	// Upstreams are full rules, tried after the bare templates of Upstream.
	Upstreams []UpstreamRule `yaml:"upstreams"`
	// PublicURL is the URL clients are told to use (connection string, tokens).
	PublicURL string `yaml:"public-url"`
	// RedisURL selects cluster mode (not implemented yet: accepted and validated).
	RedisURL string `yaml:"redis-url"`
	// NodeID names this node in a cluster; generated when empty.
	NodeID string `yaml:"node-id"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log-level"`
	// AllowedOrigins lists the browser origins ("*", scheme://host[:port] or
	// https://*.example.com) that may call /client/ and /api/. Empty allows any
	// origin, like Azure SignalR and its emulator. Requests without an Origin
	// header (non-browser clients) are always allowed.
	AllowedOrigins StringList `yaml:"allowed-origins"`

	// KeepAliveInterval is how long a connection may go without an outbound frame
	// before the server sends a Ping.
	KeepAliveInterval time.Duration `yaml:"keep-alive-interval"`
	// ClientTimeout closes a connection that sent nothing for this long (long polling:
	// a pending or recently ended poll counts as activity).
	ClientTimeout time.Duration `yaml:"client-timeout"`
	// HandshakeTimeout closes a connection that has not completed the handshake.
	HandshakeTimeout time.Duration `yaml:"handshake-timeout"`
	// NegotiateTimeout discards a negotiated connection no transport attached to.
	NegotiateTimeout time.Duration `yaml:"negotiate-timeout"`
	// PollTimeout is how long a long-polling request waits for data before it returns
	// 200 with an empty body.
	PollTimeout time.Duration `yaml:"poll-timeout"`
	// WriteTimeout bounds one write to a client; a client that does not read is closed.
	WriteTimeout time.Duration `yaml:"write-timeout"`
	// DrainTimeout bounds the graceful drain on SIGTERM/SIGINT.
	DrainTimeout time.Duration `yaml:"drain-timeout"`
	// UpstreamTimeout bounds one upstream HTTP call.
	UpstreamTimeout time.Duration `yaml:"upstream-timeout"`
	// MaxMessageSize is the largest hub message a client may send, and the largest
	// body of one SSE/long-polling send request.
	MaxMessageSize int `yaml:"max-message-size"`
	// SendQueueFrames and SendQueueBytes bound each connection's outbound queue; a
	// connection whose queue is full is closed as a slow consumer.
	SendQueueFrames int `yaml:"send-queue-frames"`
	SendQueueBytes  int `yaml:"send-queue-bytes"`
	// MaxConnections caps concurrent client connections (0 = unlimited); negotiate
	// answers 429 beyond it.
	MaxConnections int `yaml:"max-connections"`
}

// UpstreamRule is one upstream template with its patterns ("*", a comma-separated
// list, or a name; empty means "*").
type UpstreamRule struct {
	URL      string `yaml:"url"`
	Hub      string `yaml:"hub"`
	Category string `yaml:"category"`
	Event    string `yaml:"event"`
}

// StringList is a list of strings that a YAML file may also give as one scalar.
type StringList []string

// UnmarshalYAML accepts a scalar or a sequence of scalars.
func (l *StringList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			*l = nil
			return nil
		}
		*l = StringList{n.Value}
		return nil
	case yaml.SequenceNode:
		var out []string
		if err := n.Decode(&out); err != nil {
			return err
		}
		*l = out
		return nil
	}
	return fmt.Errorf("line %d: expected a string or a list of strings", n.Line)
}

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		Listen:            "localhost:8888",
		LogLevel:          "info",
		KeepAliveInterval: 15 * time.Second,
		ClientTimeout:     30 * time.Second,
		HandshakeTimeout:  15 * time.Second,
		NegotiateTimeout:  15 * time.Second,
		PollTimeout:       90 * time.Second,
		WriteTimeout:      10 * time.Second,
		DrainTimeout:      10 * time.Second,
		UpstreamTimeout:   100 * time.Second,
		MaxMessageSize:    1 << 20,
		SendQueueFrames:   1024,
		SendQueueBytes:    4 << 20,
	}
}

var nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Validate reports every problem of c, one per line, naming the setting.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if host, port, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen: %q is not HOST:PORT: %v", c.Listen, err)
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		bad("listen: port %q of %q is not a number from 0 to 65535", port, c.Listen)
	} else if strings.ContainsAny(host, "/ ") {
		bad("listen: host %q is not a host name or IP address", host)
	}
	for i, k := range c.AccessKeys {
		switch {
		case k == "":
			bad("access-key: key %d is empty", i+1)
		case strings.TrimSpace(k) != k:
			bad("access-key: key %d has leading or trailing spaces", i+1)
		case strings.ContainsAny(k, ";,"):
			// ';' would break the connection string, ',' the environment list.
			bad("access-key: key %d contains ';' or ','", i+1)
		}
	}
	for _, t := range c.Upstream {
		if err := checkTemplate(t); err != nil {
			bad("upstream: %v", err)
		}
	}
	for i, r := range c.Upstreams {
		if r.URL == "" {
			bad("upstreams[%d]: url is required", i)
		} else if err := checkTemplate(r.URL); err != nil {
			bad("upstreams[%d]: %v", i, err)
		}
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		switch {
		case err != nil:
			bad("public-url: %v", err)
		case u.Scheme != "http" && u.Scheme != "https":
			bad("public-url: %q must start with http:// or https://", c.PublicURL)
		case u.Host == "":
			bad("public-url: %q has no host", c.PublicURL)
		case u.RawQuery != "" || u.Fragment != "":
			bad("public-url: %q must not have a query or fragment", c.PublicURL)
		}
	}
	if c.RedisURL != "" {
		u, err := url.Parse(c.RedisURL)
		switch {
		case err != nil:
			bad("redis-url: %q: %v", redact.URL(c.RedisURL), urlErrCause(err))
		case u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix":
			bad("redis-url: %q must start with redis://, rediss:// or unix://", redact.URL(c.RedisURL))
		case u.Scheme != "unix" && u.Host == "":
			bad("redis-url: %q has no host", redact.URL(c.RedisURL))
		}
	}
	if c.NodeID != "" && !nodeIDPattern.MatchString(c.NodeID) {
		bad("node-id: %q must be 1-64 letters, digits, '_', '.' or '-'", c.NodeID)
	}
	for i, o := range c.AllowedOrigins {
		if o == "*" {
			continue
		}
		if _, err := parseOriginPattern(o); err != nil {
			bad("allowed-origins: entry %d: %v", i+1, err)
		}
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "warning", "error":
	default:
		bad("log-level: %q is not debug, info, warn or error", c.LogLevel)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"keep-alive-interval", c.KeepAliveInterval}, {"client-timeout", c.ClientTimeout},
		{"handshake-timeout", c.HandshakeTimeout}, {"negotiate-timeout", c.NegotiateTimeout},
		{"poll-timeout", c.PollTimeout}, {"write-timeout", c.WriteTimeout},
		{"drain-timeout", c.DrainTimeout}, {"upstream-timeout", c.UpstreamTimeout},
	} {
		if d.v <= 0 {
			bad("%s: must be a positive duration such as 15s, got %v", d.name, d.v)
		}
	}
	if c.MaxMessageSize <= 0 {
		bad("max-message-size: must be positive, got %d", c.MaxMessageSize)
	}
	if c.SendQueueFrames <= 0 {
		bad("send-queue-frames: must be positive, got %d", c.SendQueueFrames)
	}
	if c.SendQueueBytes <= 0 {
		bad("send-queue-bytes: must be positive, got %d", c.SendQueueBytes)
	}
	if c.MaxConnections < 0 {
		bad("max-connections: must not be negative, got %d", c.MaxConnections)
	}
	return errors.Join(errs...)
}

// checkTemplate fills the placeholders and requires an absolute http(s) URL.
func checkTemplate(t string) error {
	filled := strings.NewReplacer("{hub}", "h", "{category}", "c", "{event}", "e").Replace(t)
	u, err := url.Parse(filled)
	if err != nil {
		return fmt.Errorf("template %q: %w", redact.URL(t), urlErrCause(err))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("template %q must be an absolute http:// or https:// URL", redact.URL(t))
	}
	return nil
}

// urlErrCause drops the *url.Error wrapper, whose text repeats the whole URL.
func urlErrCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Rules returns the upstream rules: bare templates first, then full rules.
func (c *Config) Rules() []upstream.Rule {
	rules := upstream.ParseRules(c.Upstream)
	for _, r := range c.Upstreams {
		rules = append(rules, upstream.Rule{URLTemplate: r.URL, HubPattern: r.Hub, CategoryPattern: r.Category, EventPattern: r.Event})
	}
	return rules
}

// ParseFile decodes YAML over c: keys present in the file replace c's values, keys
// absent keep them. Unknown keys are errors, so that typos do not pass silently.
func (c *Config) ParseFile(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	next := *c
	if err := dec.Decode(&next); err != nil {
		if errors.Is(err, io.EOF) { // empty file
			return nil
		}
		return fmt.Errorf("config: %w", err)
	}
	*c = next
	return nil
}

// LoadFile reads and decodes the YAML file at path over c.
func (c *Config) LoadFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := c.ParseFile(data); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Environment variables read by ApplyEnv.
const (
	EnvListen    = "SIGNALBOX_LISTEN"
	EnvAccessKey = "SIGNALBOX_ACCESS_KEY" // comma-separated
	EnvUpstream  = "SIGNALBOX_UPSTREAM"   // space-separated
	EnvPublicURL = "SIGNALBOX_PUBLIC_URL"
	EnvRedisURL  = "SIGNALBOX_REDIS_URL"
	EnvNodeID    = "SIGNALBOX_NODE_ID"
	EnvConfig    = "SIGNALBOX_CONFIG"
	EnvLogLevel  = "SIGNALBOX_LOG_LEVEL"

	EnvAllowedOrigins = "SIGNALBOX_ALLOWED_ORIGINS" // comma-separated
)

// ApplyEnv overrides c with the variables that getenv reports as set and non-empty.
func (c *Config) ApplyEnv(getenv func(string) string) {
	if v := getenv(EnvListen); v != "" {
		c.Listen = v
	}
	if v := getenv(EnvAccessKey); v != "" {
		var keys []string
		for _, k := range strings.Split(v, ",") {
			if k = strings.TrimSpace(k); k != "" {
				keys = append(keys, k)
			}
		}
		c.AccessKeys = keys
	}
	if v := getenv(EnvUpstream); v != "" {
		c.Upstream = strings.Fields(v)
	}
	if v := getenv(EnvPublicURL); v != "" {
		c.PublicURL = v
	}
	if v := getenv(EnvRedisURL); v != "" {
		c.RedisURL = v
	}
	if v := getenv(EnvNodeID); v != "" {
		c.NodeID = v
	}
	if v := getenv(EnvLogLevel); v != "" {
		c.LogLevel = v
	}
	if v := getenv(EnvAllowedOrigins); v != "" {
		var origins []string
		for _, o := range strings.Split(v, ",") {
			if o = strings.TrimSpace(o); o != "" {
				origins = append(origins, o)
			}
		}
		c.AllowedOrigins = origins
	}
}
