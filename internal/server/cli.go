package server

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/signalbox-io/signalbox/auth"
)

// Exit codes of the command line.
const (
	ExitOK     = 0
	ExitError  = 1 // a runtime failure (cannot listen, ...)
	ExitConfig = 2 // bad flags or configuration
)

// CLI is the signalbox command line. cmd/signalbox only fills it and calls Run.
type CLI struct {
	Version string
	Stdout  io.Writer
	Stderr  io.Writer
	Getenv  func(string) string // nil = no environment
	// Ready, if set, is called with the server's endpoint once it accepts requests
	// (tests use it instead of polling the health endpoint).
	Ready func(endpoint string)
}

const usage = `usage: signalbox <command> [flags]

commands:
  serve     run the service (signalbox serve -h for flags)
  token     print a client (or REST) access token
  send      send a message through the REST API (signalbox send -h)
  bench     run load scenarios against a child server (signalbox bench -h)
  version   print the version
`

// Run executes the command in args (without the program name) and returns the exit
// code. ctx ends the serve command gracefully.
func (c CLI) Run(ctx context.Context, args []string) int {
	if c.Stdout == nil {
		c.Stdout = io.Discard
	}
	if c.Stderr == nil {
		c.Stderr = io.Discard
	}
	if c.Getenv == nil {
		c.Getenv = func(string) string { return "" }
	}
	if len(args) == 0 {
		fmt.Fprint(c.Stderr, usage)
		return ExitConfig
	}
	switch args[0] {
	case "serve":
		return c.serve(ctx, args[1:])
	case "token":
		return c.token(args[1:])
	case "send":
		return c.sendCmd(ctx, args[1:])
	case "bench":
		return c.benchCmd(ctx, args[1:])
	case "version", "--version", "-version":
		v := c.Version
		if v == "" {
			v = "dev"
		}
		fmt.Fprintln(c.Stdout, "signalbox", v)
		return ExitOK
	case "help", "-h", "--help":
		fmt.Fprint(c.Stdout, usage)
		return ExitOK
	}
	fmt.Fprintf(c.Stderr, "signalbox: unknown command %q\n%s", args[0], usage)
	return ExitConfig
}

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// serveFlags are the serve flags; only the ones given on the command line override.
type serveFlags struct {
	fs                                          *flag.FlagSet
	listen, publicURL, redisURL, nodeID, logLvl string
	config                                      string
	accessKeys, upstreams, origins              multiFlag
}

func newServeFlags(stderr io.Writer) *serveFlags {
	f := &serveFlags{fs: flag.NewFlagSet("serve", flag.ContinueOnError)}
	fs := f.fs
	fs.SetOutput(stderr)
	d := Default()
	fs.StringVar(&f.listen, "listen", d.Listen, "HOST:PORT to listen on (env "+EnvListen+")")
	fs.Var(&f.accessKeys, "access-key", "access key, repeatable: primary then secondary (env "+EnvAccessKey+", comma-separated); generated when absent")
	fs.Var(&f.upstreams, "upstream", "upstream URL template with {hub} {category} {event}, repeatable (env "+EnvUpstream+", space-separated)")
	fs.StringVar(&f.publicURL, "public-url", "", "URL clients are told to use (env "+EnvPublicURL+")")
	fs.StringVar(&f.redisURL, "redis-url", "", "redis://HOST:PORT/DB for cluster mode (env "+EnvRedisURL+")")
	fs.StringVar(&f.nodeID, "node-id", "", "node id in a cluster; generated when absent (env "+EnvNodeID+")")
	fs.StringVar(&f.config, "config", "", "YAML config file; keys are the flag names (env "+EnvConfig+")")
	fs.StringVar(&f.logLvl, "log-level", d.LogLevel, "debug, info, warn or error (env "+EnvLogLevel+")")
	fs.Var(&f.origins, "allowed-origin", "browser origin allowed to call the service, repeatable: \"*\", scheme://host[:port] or https://*.example.com (env "+EnvAllowedOrigins+", comma-separated; config key allowed-origins); default any origin")
	return f
}

// LoadConfig builds the serve configuration from args, the environment and the config
// file, with precedence flag > environment > file > default.
func LoadConfig(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	f := newServeFlags(stderr)
	if err := f.fs.Parse(args); err != nil {
		return Config{}, err
	}
	if f.fs.NArg() > 0 {
		return Config{}, fmt.Errorf("serve: unexpected argument %q", f.fs.Arg(0))
	}
	cfg := Default()
	path := getenv(EnvConfig)
	if f.config != "" {
		path = f.config
	}
	if path != "" {
		if err := cfg.LoadFile(path); err != nil {
			return Config{}, err
		}
	}
	cfg.ApplyEnv(getenv)
	f.fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "listen":
			cfg.Listen = f.listen
		case "access-key":
			cfg.AccessKeys = StringList(f.accessKeys)
		case "upstream":
			cfg.Upstream = StringList(f.upstreams)
		case "public-url":
			cfg.PublicURL = f.publicURL
		case "redis-url":
			cfg.RedisURL = f.redisURL
		case "node-id":
			cfg.NodeID = f.nodeID
		case "log-level":
			cfg.LogLevel = f.logLvl
		case "allowed-origin":
			cfg.AllowedOrigins = StringList(f.origins)
		}
	})
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "warn", "warning":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

func (c CLI) serve(ctx context.Context, args []string) int {
	cfg, err := LoadConfig(args, c.Getenv, c.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err != nil {
		fmt.Fprintln(c.Stderr, "signalbox:", err)
		return ExitConfig
	}
	log := newLogger(c.Stderr, cfg.LogLevel)
	generated := len(cfg.AccessKeys) == 0
	if generated {
		cfg.AccessKeys = StringList{GenerateAccessKey()}
	}
	if cfg.NodeID == "" {
		cfg.NodeID = "node-" + newID()[:8]
	}
	if cfg.RedisURL != "" {
		log.Warn("cluster mode is not implemented yet: redis-url is ignored and this node runs alone",
			slog.String("node", cfg.NodeID))
	}
	srv, err := New(cfg, log)
	if err != nil {
		fmt.Fprintln(c.Stderr, "signalbox:", err)
		return ExitConfig
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		fmt.Fprintln(c.Stderr, "signalbox:", err)
		_ = srv.Shutdown(context.Background())
		return ExitError
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	// Serve sets the endpoint before it accepts; wait for it without polling.
	endpoint := endpointOf(srv, cfg, ln)
	if generated {
		fmt.Fprintf(c.Stdout, "Endpoint=%s;AccessKey=%s;Version=1.0;\n", endpoint, cfg.AccessKeys[0])
	}
	log.Info("signalbox listening", slog.String("endpoint", endpoint), slog.String("listen", ln.Addr().String()), slog.String("node", cfg.NodeID),
		slog.Int("accessKeys", len(cfg.AccessKeys)), slog.Int("upstreamRules", len(cfg.Rules())))
	if c.Ready != nil {
		c.Ready(endpoint)
	}

	select {
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(c.Stderr, "signalbox:", err)
			_ = srv.Shutdown(context.Background())
			return ExitError
		}
		return ExitOK
	case <-ctx.Done():
	}
	log.Info("draining", slog.Duration("timeout", cfg.DrainTimeout))
	dctx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
	defer cancel()
	if err := srv.Shutdown(dctx); err != nil {
		log.Warn("drain incomplete", slog.Any("error", err))
	}
	<-serveErr
	log.Info("stopped")
	return ExitOK
}

// endpointOf is the connection-string endpoint: the public URL, or the listen address
// as typed (port 0 replaced by the bound port).
func endpointOf(_ *Server, cfg Config, ln net.Listener) string {
	if cfg.PublicURL != "" {
		return strings.TrimRight(cfg.PublicURL, "/")
	}
	return "http://" + listenEndpoint(cfg.Listen, ln.Addr())
}

func (c CLI) token(args []string) int {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	key := fs.String("access-key", "", "access key (default: the first of "+EnvAccessKey+")")
	hubName := fs.String("hub", "", "hub the client token is for")
	user := fs.String("user", "", "user id (asrs.s.uid)")
	endpoint := fs.String("endpoint", "", "service endpoint the audience names (default "+EnvPublicURL+" or http://localhost:8888)")
	lifetime := fs.Duration("lifetime", time.Hour, "token lifetime")
	restPath := fs.String("rest", "", "mint a REST API token for this request path (e.g. /api/hubs/chat/:send) instead of a client token")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitConfig
	}
	k := *key
	if k == "" {
		k, _, _ = strings.Cut(c.Getenv(EnvAccessKey), ",")
		k = strings.TrimSpace(k)
	}
	ep := *endpoint
	if ep == "" {
		ep = c.Getenv(EnvPublicURL)
	}
	if ep == "" {
		ep = "http://localhost:8888"
	}
	switch {
	case k == "":
		fmt.Fprintln(c.Stderr, "signalbox token: --access-key is required")
		return ExitConfig
	case *restPath == "" && *hubName == "":
		fmt.Fprintln(c.Stderr, "signalbox token: --hub (or --rest PATH) is required")
		return ExitConfig
	case *restPath == "" && !hubPattern.MatchString(*hubName):
		fmt.Fprintf(c.Stderr, "signalbox token: invalid hub name %q\n", *hubName)
		return ExitConfig
	case *lifetime <= 0:
		fmt.Fprintln(c.Stderr, "signalbox token: --lifetime must be positive")
		return ExitConfig
	}
	aud := auth.ClientAudience(ep, *hubName)
	if *restPath != "" {
		aud = auth.RESTAudience(ep, *restPath)
	}
	tok, err := auth.NewToken(k, auth.TokenOptions{Audience: aud, Lifetime: *lifetime, UserID: *user})
	if err != nil {
		fmt.Fprintln(c.Stderr, "signalbox token:", err)
		return ExitError
	}
	fmt.Fprintln(c.Stdout, tok)
	return ExitOK
}
