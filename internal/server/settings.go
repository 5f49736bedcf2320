package server

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Setting is one serve setting declared once: its config-file key, command-line flag,
// environment variable, default and documentation. The command line binds its flags
// from Settings, Load reads the file and the environment through it, Default applies
// its defaults, and docs/configuration.md is generated from it (TestConfigurationDoc).
//
// Adding a setting is a field in Config plus one line in the settings table.
type Setting struct {
	// Key is the YAML key; the flag is --Key unless Flag says otherwise, and the
	// environment variable is SIGNALBOX_ followed by Key in upper case with '_'
	// for '-'.
	Key string
	// Flag is the flag name when it differs from Key; "-" means the setting has no
	// flag and no environment variable (structured, file only).
	Flag string
	// Default is the value as it would be typed on the command line.
	Default string
	Doc     string
	// Type names the value in help and docs: string, duration, int, bool, list.
	Type string
	// Repeated settings take the flag several times, a YAML list, and an environment
	// value split at EnvSep.
	Repeated bool
	EnvSep   string
	// NoFile marks a setting that is not a config-file key (the --config path itself).
	NoFile bool

	set    func(c *Config, vals []string) error
	decode func(c *Config, n *yaml.Node) error // structured file value; nil: scalars through set
}

// FlagName is the command-line flag, without dashes ("" when there is none).
func (s Setting) FlagName() string {
	switch s.Flag {
	case "-":
		return ""
	case "":
		return s.Key
	}
	return s.Flag
}

// Env is the environment variable ("" when there is none).
func (s Setting) Env() string {
	if s.Flag == "-" {
		return ""
	}
	return "SIGNALBOX_" + strings.ToUpper(strings.ReplaceAll(s.Key, "-", "_"))
}

// Set parses vals (one value unless Repeated) into c.
func (s Setting) Set(c *Config, vals []string) error {
	if s.set == nil {
		return fmt.Errorf("%s cannot be set from text", s.Key)
	}
	return s.set(c, vals)
}

// settings is the table. Keep it in the order the documentation lists them.
var settings = []Setting{
	text("config", "", "YAML configuration file; its keys are the setting names below", func(c *Config) *string { return &c.ConfigFile }).noFile(),
	text("listen", "localhost:8888", "HOST:PORT to listen on", func(c *Config) *string { return &c.Listen }),
	list("access-key", ",", "access key, repeatable: primary then secondary; when absent a stable key is kept in a local state file", func(c *Config) *StringList { return &c.AccessKeys }),
	list("upstream", " ", "upstream URL template with {hub} {category} {event} that receives every event, repeatable", func(c *Config) *StringList { return &c.Upstream }),
	text("emulator-settings", "", "the Azure SignalR emulator's settings.json: its UpstreamSettings.Templates are tried after upstream and upstreams", func(c *Config) *string { return &c.EmulatorSettings }),
	rules("upstreams", "upstream rules (file only): a list of {url, hub, category, event}; patterns are \"*\", a name or a comma-separated list; tried after the bare upstream templates"),
	text("public-url", "", "URL clients are told to use (connection string, tokens); default http://LISTEN", func(c *Config) *string { return &c.PublicURL }),
	text("tls-cert", "", "PEM certificate (chain) file: serve HTTPS and WSS; needs tls-key", func(c *Config) *string { return &c.TLSCert }),
	text("tls-key", "", "PEM private key file of tls-cert", func(c *Config) *string { return &c.TLSKey }),
	text("state-file", "", "file that keeps the generated access key between runs when no access-key is given; default $XDG_STATE_HOME/signalbox/state.json (~/.local/state/signalbox/state.json)", func(c *Config) *string { return &c.StateFile }),
	text("redis-url", "", "run as one node of a cluster on this Redis: redis://[user:pass@]HOST:PORT[/DB], rediss:// for TLS, ?addr=HOST:PORT for more Redis Cluster seeds, ?master_set=NAME for Sentinel (docs/cluster.md)", func(c *Config) *string { return &c.RedisURL }),
	text("redis-prefix", "signalbox", "prefix of every Redis key and channel of the cluster; nodes sharing it form one service", func(c *Config) *string { return &c.RedisPrefix }),
	text("node-id", "", "this node's id in a cluster; generated when absent", func(c *Config) *string { return &c.NodeID }),
	text("node-address", "", "base URL other nodes use to forward SSE and long-polling requests to this node; default http://LISTEN (the host name when listening on all interfaces)", func(c *Config) *string { return &c.NodeAddress }),
	duration("node-timeout", "15s", "a node that misses heartbeats this long is taken for dead: its connections vanish from the cluster", func(c *Config) *time.Duration { return &c.NodeTimeout }),
	text("log-level", "info", "debug, info, warn or error", func(c *Config) *string { return &c.LogLevel }),
	list("allowed-origins", ",", "browser origin allowed to call the service, repeatable: \"*\", scheme://host[:port] or https://*.example.com; default any origin", func(c *Config) *StringList { return &c.AllowedOrigins }).flag("allowed-origin"),
	duration("keep-alive-interval", "15s", "a connection that sent nothing for this long gets a Ping", func(c *Config) *time.Duration { return &c.KeepAliveInterval }),
	duration("client-timeout", "30s", "a client that sent nothing for this long is closed", func(c *Config) *time.Duration { return &c.ClientTimeout }),
	duration("handshake-timeout", "15s", "a connection that has not completed the handshake by then is closed", func(c *Config) *time.Duration { return &c.HandshakeTimeout }),
	duration("negotiate-timeout", "15s", "a negotiated connection no transport attached to is forgotten after this", func(c *Config) *time.Duration { return &c.NegotiateTimeout }),
	duration("poll-timeout", "90s", "how long a long-polling request waits for data", func(c *Config) *time.Duration { return &c.PollTimeout }),
	duration("write-timeout", "10s", "a client that does not read one write within this is closed", func(c *Config) *time.Duration { return &c.WriteTimeout }),
	duration("drain-timeout", "10s", "bound of the graceful drain on SIGTERM/SIGINT", func(c *Config) *time.Duration { return &c.DrainTimeout }),
	duration("upstream-timeout", "100s", "bound of one upstream HTTP call", func(c *Config) *time.Duration { return &c.UpstreamTimeout }),
	boolean("upstream-reject-connections", "false", "close a connection whose connected upstream call answers 401 or 403 (a failing connected function), as Azure Web PubSub's blocking connect event; Azure SignalR Service does not wait for connected", func(c *Config) *bool { return &c.UpstreamRejectConnections }),
	integer("max-message-size", "1048576", "largest hub message (bytes) a client may send", func(c *Config) *int { return &c.MaxMessageSize }),
	integer("send-queue-frames", "1024", "frames queued for one connection before it is closed as a slow consumer", func(c *Config) *int { return &c.SendQueueFrames }),
	integer("send-queue-bytes", "4194304", "bytes queued for one connection before it is closed as a slow consumer", func(c *Config) *int { return &c.SendQueueBytes }),
	duration("reconnect-window", "30s", "how long a stateful-reconnect connection (useStatefulReconnect, WebSockets) waits for its client after the transport is lost; upstream hears disconnected only after it (0 = stateful reconnect off)", func(c *Config) *time.Duration { return &c.ReconnectWindow }),
	integer("reconnect-buffer-bytes", "100000", "unacknowledged bytes a stateful-reconnect connection keeps for replay; more messages wait for acknowledgements, up to send-queue-bytes", func(c *Config) *int { return &c.ReconnectBufferBytes }),
	integer("memory-budget", "0", "bytes all connections together may hold in unfinished inbound messages and outbound queues; a connection that would pass it is closed (0 = a quarter of the machine's or cgroup's memory, at least 64 MiB; -1 = unlimited)", func(c *Config) *int { return &c.MemoryBudget }),
	text("identity-issuer", "", "OIDC issuer URL whose Microsoft Entra-style bearer tokens are trusted on the REST API and GET /api/v1/auth/accessKey (see docs/identity.md)", func(c *Config) *string { return &c.IdentityIssuer }),
	text("identity-audience", "", "audience identity tokens must carry; default https://signalr.azure.com", func(c *Config) *string { return &c.IdentityAudience }),
	list("identity-allow", ",", "identity (object id or client id) allowed in, repeatable; others get 403; default every identity of the issuer", func(c *Config) *StringList { return &c.IdentityAllow }),
	boolean("disable-local-auth", "false", "refuse access-key tokens, as Azure's disableLocalAuth does; only identities get in (needs identity-issuer)", func(c *Config) *bool { return &c.DisableLocalAuth }),
	text("metrics-listen", "", "HOST:PORT of a separate listener for /metrics; empty serves /metrics on the main listener", func(c *Config) *string { return &c.MetricsListen }),
	duration("invoke-timeout", "30s", "how long POST .../connections/{id}/:invoke waits for the client's result (then 504)", func(c *Config) *time.Duration { return &c.InvokeTimeout }),
	integer("max-pending-invocations", "1000", ":invoke calls waiting for client results at once (more get 429)", func(c *Config) *int { return &c.MaxPendingInvocations }),
	integer("max-concurrent-broadcasts", "0", "REST broadcasts and group sends carried out at once (0 = eight per CPU the server may use, -1 = unlimited); one beyond waits up to broadcast-queue-wait for its turn, then gets 503 with Retry-After, so that an overloaded server answers every request quickly instead of letting them all pile up", func(c *Config) *int { return &c.MaxConcurrentBroadcasts }),
	duration("broadcast-queue-wait", "300ms", "how long a REST broadcast or group send waits for one of max-concurrent-broadcasts (then 503)", func(c *Config) *time.Duration { return &c.BroadcastQueueWait }),
	boolean("no-trace", "false", "turn off the live view (/_/trace) and its reserved hub _trace", func(c *Config) *bool { return &c.NoTrace }),
	integer("max-connections", "0", "concurrent client connections (0 = unlimited); negotiate answers 429 beyond", func(c *Config) *int { return &c.MaxConnections }),
	text("access-key-file", "", "file holding the access keys, one per line, primary first ('#' comments); keeps them out of the process list and is reread on reload", func(c *Config) *string { return &c.AccessKeyFile }),
	list("trusted-proxies", ",", "reverse proxies (IP or CIDR) whose X-Forwarded-For names the client address for the per-address limits; default none (the TCP peer is the client)", func(c *Config) *StringList { return &c.TrustedProxies }),
	integer("max-connections-per-address", "1000", "connections of one client IP address (0 = unlimited); negotiate answers 429 beyond", func(c *Config) *int { return &c.MaxConnectionsPerAddress }),
	integer("max-connections-per-user", "1000", "connections of one user id in one hub (0 = unlimited); negotiate answers 429 beyond", func(c *Config) *int { return &c.MaxConnectionsPerUser }),
	number("negotiate-rate", "50", "negotiations per second one client IP address may make (0 = unlimited); beyond, 429 with Retry-After", func(c *Config) *float64 { return &c.NegotiateRate }),
	integer("negotiate-burst", "100", "negotiations one client IP address may make at once before negotiate-rate applies", func(c *Config) *int { return &c.NegotiateBurst }),
	integer("max-pending-negotiations", "10000", "connections negotiated but not yet started by a transport (0 = unlimited); negotiate answers 429 beyond", func(c *Config) *int { return &c.MaxPendingNegotiations }),
	integer("max-handshake-size", "4096", "largest handshake request (bytes); a larger one is answered with a handshake error", func(c *Config) *int { return &c.MaxHandshakeSize }),
	integer("max-groups-per-connection", "1000", "groups one connection may be added to by the REST API, and persistent group memberships one user may have (0 = unlimited); a group add beyond is answered 409", func(c *Config) *int { return &c.MaxGroupsPerConnection }),
	integer("max-token-size", "4096", "longest access token (characters) accepted; 413 on the client endpoints, 401 on the REST API beyond", func(c *Config) *int { return &c.MaxTokenSize }),
	integer("max-argument-depth", "64", "how deeply message arguments may nest arrays and objects (1-500); REST answers 400, a client invocation gets a Completion error", func(c *Config) *int { return &c.MaxArgumentDepth }),
	integer("max-header-bytes", "16384", "largest request line and headers of an HTTP request (bytes); 431 beyond", func(c *Config) *int { return &c.MaxHeaderBytes }),
	integer("upstream-max-in-flight", "1000", "upstream calls in progress, all hubs; an invocation beyond fails at once (upstream overloaded)", func(c *Config) *int { return &c.UpstreamMaxInFlight }),
	integer("upstream-max-in-flight-per-hub", "500", "upstream calls in progress for one hub; an invocation beyond fails at once", func(c *Config) *int { return &c.UpstreamMaxInFlightPerHub }),
	integer("upstream-max-in-flight-per-event", "250", "upstream calls in progress for one event of one hub (per upstream rule); an invocation beyond waits for upstream-slot-wait, then fails", func(c *Config) *int { return &c.UpstreamMaxInFlightPerEvent }),
	duration("upstream-slot-wait", "50ms", "how long an invocation may wait for one of upstream-max-in-flight-per-event (at most that many wait; beyond, or after this, it fails as overloaded); 0 = no wait", func(c *Config) *time.Duration { return &c.UpstreamSlotWait }),
	integer("upstream-max-conns-per-host", "0", "HTTP connections to one upstream host (0 = as many as upstream-max-in-flight)", func(c *Config) *int { return &c.UpstreamMaxConnsPerHost }),
}

// Settings returns the table of every serve setting.
func Settings() []Setting { return append([]Setting(nil), settings...) }

// LookupSetting returns the setting with key.
func LookupSetting(key string) (Setting, bool) {
	for _, s := range settings {
		if s.Key == key {
			return s, true
		}
	}
	return Setting{}, false
}

func (s Setting) flag(name string) Setting { s.Flag = name; return s }
func (s Setting) noFile() Setting          { s.NoFile = true; return s }

// scalar builds a single-valued setting from a parser.
func scalar[T any](typ, key, def, doc string, parse func(string) (T, error), field func(*Config) *T) Setting {
	return Setting{Key: key, Default: def, Doc: doc, Type: typ, set: func(c *Config, vals []string) error {
		v, err := parse(vals[len(vals)-1])
		if err != nil {
			return err
		}
		*field(c) = v
		return nil
	}}
}

func text(key, def, doc string, field func(*Config) *string) Setting {
	return scalar("string", key, def, doc, func(s string) (string, error) { return s, nil }, field)
}

func duration(key, def, doc string, field func(*Config) *time.Duration) Setting {
	return scalar("duration", key, def, doc, func(s string) (time.Duration, error) {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration such as 15s or 1m30s", s)
		}
		return d, nil
	}, field)
}

func integer(key, def, doc string, field func(*Config) *int) Setting {
	return scalar("int", key, def, doc, func(s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err != nil {
			return 0, fmt.Errorf("%q is not a whole number", s)
		}
		return n, nil
	}, field)
}

func boolean(key, def, doc string, field func(*Config) *bool) Setting {
	return scalar("bool", key, def, doc, func(s string) (bool, error) {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return false, fmt.Errorf("%q is not true or false", s)
		}
		return b, nil
	}, field)
}

func number(key, def, doc string, field func(*Config) *float64) Setting {
	return scalar("number", key, def, doc, func(s string) (float64, error) {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number", s)
		}
		return f, nil
	}, field)
}

// list is a repeatable setting; the environment variable separates values with sep.
func list(key, sep, doc string, field func(*Config) *StringList) Setting {
	return Setting{Key: key, Doc: doc, Type: "list", Repeated: true, EnvSep: sep, set: func(c *Config, vals []string) error {
		*field(c) = append(StringList(nil), vals...)
		return nil
	}}
}

// rules is the structured upstreams list of the file.
func rules(key, doc string) Setting {
	return Setting{Key: key, Flag: "-", Doc: doc, Type: "list of rules", decode: func(c *Config, n *yaml.Node) error {
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			c.Upstreams = nil
			return nil
		}
		if n.Kind != yaml.SequenceNode {
			return fmt.Errorf("line %d: expected a list of {url, hub, category, event}", n.Line)
		}
		var out []UpstreamRule
		for _, item := range n.Content {
			if item.Kind != yaml.MappingNode {
				return fmt.Errorf("line %d: expected {url, hub, category, event}", item.Line)
			}
			var r UpstreamRule
			for i := 0; i+1 < len(item.Content); i += 2 {
				k, v := item.Content[i], item.Content[i+1]
				var dst *string
				switch k.Value {
				case "url":
					dst = &r.URL
				case "hub":
					dst = &r.Hub
				case "category":
					dst = &r.Category
				case "event":
					dst = &r.Event
				default:
					return fmt.Errorf("line %d: unknown key %q in an upstream rule (url, hub, category, event)", k.Line, k.Value)
				}
				if v.Kind != yaml.ScalarNode {
					return fmt.Errorf("line %d: %s must be a string", v.Line, k.Value)
				}
				*dst = v.Value
			}
			out = append(out, r)
		}
		c.Upstreams = out
		return nil
	}}
}
