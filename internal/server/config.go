package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/signalbox-io/signalbox/internal/redact"
	"github.com/signalbox-io/signalbox/internal/transport"
	"github.com/signalbox-io/signalbox/internal/upstream"
)

// Config is everything `signalbox serve` can be told. The same struct is filled, in
// order of increasing precedence, by Default, a YAML file, the environment and flags,
// all through the one table of settings.go (see Load).
type Config struct {
	// ConfigFile is the YAML file the configuration was read from, if any.
	ConfigFile string
	// Listen is the HOST:PORT the HTTP server binds.
	Listen string
	// AccessKeys sign and verify tokens: primary first, then secondary. Empty means a
	// key is generated at start and printed in a connection string.
	AccessKeys StringList
	// Upstream holds URL templates ({hub}, {category}, {event}) that receive every event.
	Upstream StringList
	// Upstreams are full rules, tried after the bare templates of Upstream.
	Upstreams []UpstreamRule
	// EmulatorSettings is the Azure SignalR emulator's settings.json; Load appends its
	// upstream templates to Upstreams.
	EmulatorSettings string
	// TLSCert and TLSKey are PEM files: when set the server speaks HTTPS and WSS.
	TLSCert, TLSKey string
	// StateFile keeps the generated access key between runs (the command line's
	// business; the server never reads it).
	StateFile string
	// PublicURL is the URL clients are told to use (connection string, tokens).
	PublicURL string
	// RedisURL selects cluster mode: the nodes sharing a Redis (and a prefix) act as
	// one service. See docs/cluster.md.
	RedisURL string
	// RedisPrefix starts every Redis key and channel of the cluster.
	RedisPrefix string
	// NodeID names this node in a cluster; generated when empty.
	NodeID string
	// NodeAddress is the base URL (http://host:port) other nodes use to forward a
	// client's request to this node; default http:// plus the listen address (the
	// host name when listening on every interface).
	NodeAddress string
	// NodeTimeout is how long a node may miss heartbeats before the others take it
	// for dead and forget its connections.
	NodeTimeout time.Duration
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// AllowedOrigins lists the browser origins ("*", scheme://host[:port] or
	// https://*.example.com) that may call /client/ and /api/. Empty allows any
	// origin, like Azure SignalR and its emulator. Requests without an Origin
	// header (non-browser clients) are always allowed.
	AllowedOrigins StringList

	// IdentityIssuer is the URL of an OIDC issuer whose Microsoft Entra-style bearer
	// tokens are accepted on the REST API and GET /api/v1/auth/accessKey.
	IdentityIssuer string
	// IdentityAudience is the audience those tokens must carry (default
	// https://signalr.azure.com).
	IdentityAudience string
	// IdentityAllow lists the identities (object or client ids) allowed in; empty
	// allows every identity of the issuer. Others get 403.
	IdentityAllow StringList
	// DisableLocalAuth refuses access-key tokens, as Azure's disableLocalAuth does.
	DisableLocalAuth bool

	// InvokeTimeout bounds how long POST .../:invoke waits for the client's result.
	InvokeTimeout time.Duration
	// MaxPendingInvocations bounds the :invoke calls waiting for a client result at
	// once; more get 429.
	MaxPendingInvocations int
	// MaxConcurrentBroadcasts bounds the REST broadcasts and group sends carried out
	// at once (0 = 8×GOMAXPROCS, -1 = unlimited); one beyond waits up to
	// BroadcastQueueWait, then gets 503 with Retry-After.
	MaxConcurrentBroadcasts int
	BroadcastQueueWait      time.Duration

	// KeepAliveInterval is how long a connection may go without an outbound frame
	// before the server sends a Ping.
	KeepAliveInterval time.Duration
	// ClientTimeout closes a connection that sent nothing for this long (long polling:
	// a pending or recently ended poll counts as activity).
	ClientTimeout time.Duration
	// HandshakeTimeout closes a connection that has not completed the handshake.
	HandshakeTimeout time.Duration
	// NegotiateTimeout discards a negotiated connection no transport attached to.
	NegotiateTimeout time.Duration
	// PollTimeout is how long a long-polling request waits for data before it returns
	// 200 with an empty body.
	PollTimeout time.Duration
	// WriteTimeout bounds one write to a client; a client that does not read is closed.
	WriteTimeout time.Duration
	// DrainTimeout bounds the graceful drain on SIGTERM/SIGINT.
	DrainTimeout time.Duration
	// UpstreamTimeout bounds one upstream HTTP call.
	UpstreamTimeout time.Duration
	// UpstreamRejectConnections closes a connection whose connected upstream call answers
	// 401 or 403 (see upstream.Options.RejectConnections).
	UpstreamRejectConnections bool
	// MaxMessageSize is the largest hub message a client may send, and the largest
	// body of one SSE/long-polling send request.
	MaxMessageSize int
	// SendQueueFrames and SendQueueBytes bound each connection's outbound queue; a
	// connection whose queue is full is closed as a slow consumer.
	SendQueueFrames int
	SendQueueBytes  int
	// ReconnectWindow is how long a stateful-reconnect connection outlives a lost
	// transport waiting for its client (0 turns stateful reconnect off);
	// ReconnectBufferBytes bounds its unacknowledged outbound messages (more wait).
	ReconnectWindow      time.Duration
	ReconnectBufferBytes int
	// MetricsListen, when set, is the HOST:PORT of a listener of its own for /metrics,
	// which the main listener then does not serve.
	MetricsListen string
	// MemoryBudget bounds the bytes all connections together hold in unfinished
	// inbound messages and outbound queues; a connection that would pass it is
	// closed. 0 derives it from the machine (a quarter of the memory limit or of
	// the RAM, at least 64 MiB); -1 means unlimited.
	MemoryBudget int
	// NoTrace turns off the live view (/_/trace).
	NoTrace bool
	// MaxConnections caps concurrent client connections (0 = unlimited); negotiate
	// answers 429 beyond it.
	MaxConnections int

	// AccessKeyFile names a file holding the access keys, one per line (primary
	// first; blank lines and lines starting with # are skipped). Unlike --access-key it
	// keeps the keys out of the process list; it is read again on every reload.
	AccessKeyFile string

	// The limits below answer with their documented error when exceeded
	// (docs/reliability.md); 0 means unlimited where noted.

	// TrustedProxies lists the reverse proxies (IP addresses or CIDR prefixes) whose
	// X-Forwarded-For names the client address the per-address limits apply to. Empty:
	// the TCP peer is the client (behind a proxy, every client shares its address).
	TrustedProxies StringList
	// MaxConnectionsPerAddress and MaxConnectionsPerUser cap the connections of one
	// client IP address and of one user id in one hub (0 = unlimited): negotiate
	// answers 429.
	MaxConnectionsPerAddress int
	MaxConnectionsPerUser    int
	// NegotiateRate is the negotiations per second one client address may make, with
	// bursts of NegotiateBurst (0 = unlimited); beyond it negotiate answers 429.
	NegotiateRate  float64
	NegotiateBurst int
	// MaxPendingNegotiations caps the connections negotiated but not yet started by a
	// transport (each holds memory until negotiate-timeout); beyond it 429.
	MaxPendingNegotiations int
	// MaxHandshakeSize bounds the handshake request (bytes).
	MaxHandshakeSize int
	// MaxGroupsPerConnection caps the groups a connection may be added to through
	// the REST API (and the persistent group memberships of one user); 0 = unlimited.
	// Beyond, the add is refused with 409.
	MaxGroupsPerConnection int
	// MaxTokenSize is the longest access token accepted (characters): 413 on the
	// client endpoints, 401 on the REST API.
	MaxTokenSize int
	// MaxArgumentDepth bounds how deeply the arguments of a message (from a client or
	// the REST API) nest arrays and objects.
	MaxArgumentDepth int
	// MaxHeaderBytes bounds the request line and headers of every HTTP request (431).
	MaxHeaderBytes int
	// UpstreamMaxInFlight bounds the upstream calls in progress, in all, per hub, and
	// per event of a hub; beyond a bound an invocation fails at once with a Completion
	// error naming it. UpstreamMaxConnsPerHost bounds the HTTP connections to one
	// upstream host (0 = as many as calls may be in flight).
	UpstreamMaxInFlight         int
	UpstreamMaxInFlightPerHub   int
	UpstreamMaxInFlightPerEvent int
	UpstreamMaxConnsPerHost     int
	// UpstreamSlotWait is how long an invocation may wait for a slot of its event
	// (at most UpstreamMaxInFlightPerEvent wait); 0 refuses at once.
	UpstreamSlotWait time.Duration
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

// Default returns the configuration used when nothing is set: every setting's
// default from the table.
func Default() Config {
	var c Config
	for _, st := range settings {
		if st.Default == "" || st.set == nil {
			continue
		}
		if err := st.set(&c, []string{st.Default}); err != nil {
			panic("server: default of " + st.Key + ": " + err.Error()) // a bad table entry; a test runs this
		}
	}
	return c
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
	if c.RedisPrefix == "" || strings.ContainsAny(c.RedisPrefix, " \n\r") {
		bad("redis-prefix: %q must be non-empty without spaces", c.RedisPrefix)
	}
	if c.NodeAddress != "" {
		if u, err := url.Parse(c.NodeAddress); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("node-address: %q must be http://HOST:PORT or https://HOST:PORT", c.NodeAddress)
		}
	}
	if c.NodeTimeout < time.Second {
		bad("node-timeout: %v is shorter than 1s", c.NodeTimeout)
	}
	for i, o := range c.AllowedOrigins {
		if o == "*" {
			continue
		}
		if _, err := parseOriginPattern(o); err != nil {
			bad("allowed-origins: entry %d: %v", i+1, err)
		}
	}
	c.validateIdentity(bad)
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
		{"invoke-timeout", c.InvokeTimeout}, {"broadcast-queue-wait", c.BroadcastQueueWait},
	} {
		if d.v <= 0 {
			bad("%s: must be a positive duration such as 15s, got %v", d.name, d.v)
		}
	}
	if c.UpstreamSlotWait < 0 || c.UpstreamSlotWait > 10*time.Second {
		bad("upstream-slot-wait: must be from 0 (no wait) to 10s, got %v", c.UpstreamSlotWait)
	}
	if c.MaxMessageSize <= 0 {
		bad("max-message-size: must be positive, got %d", c.MaxMessageSize)
	}
	if c.SendQueueFrames <= 0 {
		bad("send-queue-frames: must be positive, got %d", c.SendQueueFrames)
	}
	if c.MemoryBudget < -1 {
		bad("memory-budget: must be a byte count, 0 (derived from the machine) or -1 (unlimited), got %d", c.MemoryBudget)
	}
	if c.SendQueueBytes <= 0 {
		bad("send-queue-bytes: must be positive, got %d", c.SendQueueBytes)
	}
	if c.ReconnectWindow < 0 {
		bad("reconnect-window: must not be negative, got %v", c.ReconnectWindow)
	}
	if c.ReconnectBufferBytes <= 0 {
		bad("reconnect-buffer-bytes: must be positive, got %d", c.ReconnectBufferBytes)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("tls-cert, tls-key: give both or neither")
	}
	if c.MetricsListen != "" {
		if _, port, err := net.SplitHostPort(c.MetricsListen); err != nil {
			bad("metrics-listen: %q is not HOST:PORT: %v", c.MetricsListen, err)
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			bad("metrics-listen: port %q of %q is not a number from 0 to 65535", port, c.MetricsListen)
		}
	}
	if c.MaxConcurrentBroadcasts < -1 {
		bad("max-concurrent-broadcasts: must be a count, 0 (eight per CPU) or -1 (unlimited), got %d", c.MaxConcurrentBroadcasts)
	}
	if c.MaxPendingInvocations <= 0 {
		bad("max-pending-invocations: must be positive, got %d", c.MaxPendingInvocations)
	}
	for _, n := range []struct {
		name string
		v    int
	}{
		{"max-connections", c.MaxConnections}, {"max-connections-per-address", c.MaxConnectionsPerAddress},
		{"max-connections-per-user", c.MaxConnectionsPerUser}, {"negotiate-burst", c.NegotiateBurst},
		{"max-pending-negotiations", c.MaxPendingNegotiations}, {"max-groups-per-connection", c.MaxGroupsPerConnection},
		{"upstream-max-conns-per-host", c.UpstreamMaxConnsPerHost},
	} {
		if n.v < 0 {
			bad("%s: must not be negative (0 = unlimited), got %d", n.name, n.v)
		}
	}
	if _, err := parsePrefixes(c.TrustedProxies); err != nil {
		bad("trusted-proxies: %v", err)
	}
	if c.NegotiateRate < 0 {
		bad("negotiate-rate: must not be negative (0 = unlimited), got %v", c.NegotiateRate)
	}
	for _, n := range []struct {
		name      string
		v, lo, hi int
	}{
		{"max-handshake-size", c.MaxHandshakeSize, 64, 1 << 20},
		{"max-token-size", c.MaxTokenSize, 256, 1 << 16},
		{"max-argument-depth", c.MaxArgumentDepth, 1, 500}, // the protocol package stops at 512
		{"max-header-bytes", c.MaxHeaderBytes, 4 << 10, 1 << 20},
		{"upstream-max-in-flight", c.UpstreamMaxInFlight, 1, 1 << 20},
		{"upstream-max-in-flight-per-hub", c.UpstreamMaxInFlightPerHub, 1, 1 << 20},
		{"upstream-max-in-flight-per-event", c.UpstreamMaxInFlightPerEvent, 1, 1 << 20},
	} {
		if n.v < n.lo || n.v > n.hi {
			bad("%s: must be from %d to %d, got %d", n.name, n.lo, n.hi, n.v)
		}
	}
	return errors.Join(errs...)
}

// Scheme is https when the server has a certificate, else http.
func (c *Config) Scheme() string {
	if c.TLSCert != "" {
		return "https"
	}
	return "http"
}

// MetricsOwnListener reports whether /metrics has a listener of its own.
func (c *Config) MetricsOwnListener() bool { return c.MetricsListen != "" }

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
// absent keep them. Unknown keys and bad values are errors naming the key and line,
// so that typos do not pass silently.
func (c *Config) ParseFile(data []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 { // empty file
		return nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("config: line %d: expected a mapping of setting: value", root.Line)
	}
	next := *c
	seen := map[string]bool{}
	var errs []error
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		st, ok := LookupSetting(k.Value)
		switch {
		case k.Kind != yaml.ScalarNode:
			errs = append(errs, fmt.Errorf("line %d: a key must be a setting name", k.Line))
			continue
		case !ok || st.NoFile:
			errs = append(errs, fmt.Errorf("line %d: unknown key %q%s", k.Line, k.Value, suggest(k.Value)))
			continue
		case seen[k.Value]:
			errs = append(errs, fmt.Errorf("line %d: %s is given twice", k.Line, k.Value))
			continue
		}
		seen[k.Value] = true
		if err := decodeSetting(&next, st, v); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %s: %w", v.Line, st.Key, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("config: %w", errors.Join(errs...))
	}
	*c = next
	return nil
}

// decodeSetting applies one YAML value: a scalar, or for a repeated setting a scalar
// or a list of scalars.
func decodeSetting(c *Config, st Setting, v *yaml.Node) error {
	if st.decode != nil {
		return st.decode(c, v)
	}
	switch {
	case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
		if st.Repeated {
			return st.set(c, nil)
		}
		return st.set(c, []string{""})
	case v.Kind == yaml.ScalarNode:
		return st.set(c, []string{v.Value})
	case v.Kind == yaml.SequenceNode && st.Repeated:
		vals := make([]string, 0, len(v.Content))
		for _, item := range v.Content {
			if item.Kind != yaml.ScalarNode {
				return errors.New("expected a list of strings")
			}
			vals = append(vals, item.Value)
		}
		return st.set(c, vals)
	case st.Repeated:
		return errors.New("expected a string or a list of strings")
	}
	return fmt.Errorf("expected a single %s", st.Type)
}

// suggest names the closest setting to a mistyped key.
func suggest(key string) string {
	best, bestD := "", 3
	for _, st := range settings {
		if st.NoFile {
			continue
		}
		if d := editDistance(key, st.Key); d < bestD {
			best, bestD = st.Key, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
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

// ApplyEnv overrides c with the settings' environment variables that getenv reports
// as set and non-empty.
func (c *Config) ApplyEnv(getenv func(string) string) error {
	var errs []error
	for _, st := range settings {
		name := st.Env()
		if name == "" || st.NoFile {
			continue
		}
		v := getenv(name)
		if v == "" {
			continue
		}
		vals := []string{v}
		if st.Repeated {
			vals = splitList(v, st.EnvSep)
		}
		if err := st.set(c, vals); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", st.Key, name, err))
		}
	}
	return errors.Join(errs...)
}

// splitList splits an environment list and drops empty entries.
func splitList(v, sep string) []string {
	var parts []string
	if sep == " " {
		parts = strings.Fields(v)
	} else {
		parts = strings.Split(v, sep)
	}
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Load builds the serve configuration with precedence flag > environment > config
// file > default. flags holds the values given on the command line, by setting key;
// getenv nil means an empty environment. The file is the config setting (flag, then
// SIGNALBOX_CONFIG). Every problem is reported, each naming its setting and source.
func Load(getenv func(string) string, flags map[string][]string) (Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	for key := range flags {
		if _, ok := LookupSetting(key); !ok {
			return Config{}, fmt.Errorf("unknown setting %q", key)
		}
	}
	cfg := Default()
	cfg.ConfigFile = getenv("SIGNALBOX_CONFIG")
	if v := flags["config"]; len(v) > 0 {
		cfg.ConfigFile = v[len(v)-1]
	}
	if cfg.ConfigFile != "" {
		if err := cfg.LoadFile(cfg.ConfigFile); err != nil {
			return Config{}, err
		}
	}
	var errs []error
	if err := cfg.ApplyEnv(getenv); err != nil {
		errs = append(errs, err)
	}
	for _, st := range settings {
		vals, ok := flags[st.Key]
		if !ok || st.NoFile {
			continue
		}
		if err := st.Set(&cfg, vals); err != nil {
			errs = append(errs, fmt.Errorf("%s (--%s): %w", st.Key, st.FlagName(), err))
		}
	}
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("invalid configuration:\n%w", errors.Join(errs...))
	}
	if cfg.EmulatorSettings != "" {
		rules, err := LoadEmulatorSettings(cfg.EmulatorSettings)
		if err != nil {
			return Config{}, fmt.Errorf("invalid configuration:\nemulator-settings: %w", err)
		}
		cfg.Upstreams = append(cfg.Upstreams, rules...)
	}
	if err := cfg.readKeyFile(); err != nil {
		return Config{}, fmt.Errorf("invalid configuration:\n%w", err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}

// memoryBudget is the effective MemoryBudget in bytes (0 = unlimited).
func (c *Config) memoryBudget() int64 {
	switch c.MemoryBudget {
	case 0:
		return transport.DefaultBudget()
	case -1:
		return 0
	}
	return int64(c.MemoryBudget)
}

// readKeyFile fills AccessKeys from AccessKeyFile, when one is set.
func (c *Config) readKeyFile() error {
	if c.AccessKeyFile == "" {
		return nil
	}
	if len(c.AccessKeys) > 0 {
		return errors.New("access-key-file: give access-key or access-key-file, not both")
	}
	keys, err := ReadKeyFile(c.AccessKeyFile)
	if err != nil {
		return fmt.Errorf("access-key-file: %w", err)
	}
	c.AccessKeys = keys
	return nil
}

// ReadKeyFile reads access keys from path: one per line, primary first; blank lines
// and lines starting with '#' are skipped. The keys themselves never appear in errors.
func ReadKeyFile(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var keys []string
	for line := range strings.SplitSeq(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		keys = append(keys, line)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s holds no key", path)
	}
	return keys, nil
}

// MinAccessKeyLength is the length below which an access key is accepted with a
// warning: a short HMAC key can be guessed from one token offline. Azure's and the
// generated keys have 44 characters.
const MinAccessKeyLength = 32

// WarnShortKeys logs one warning per key shorter than MinAccessKeyLength, naming its
// position and length, never the key.
func WarnShortKeys(log *slog.Logger, keys []string) {
	for i, k := range keys {
		if len(k) < MinAccessKeyLength {
			log.Warn("access key is short: anyone holding one token can try to guess it offline; use at least 32 random characters",
				slog.Int("key", i+1), slog.Int("length", len(k)))
		}
	}
}
