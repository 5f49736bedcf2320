package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/signalbox-io/signalbox/internal/server"
)

// settingFlag binds one row of the settings table to a flag. Values are checked as
// they are parsed, so `--client-timeout soon` fails at once and names the flag.
type settingFlag struct {
	st   server.Setting
	vals []string
}

func (f *settingFlag) String() string {
	if len(f.vals) == 0 {
		return f.st.Default
	}
	return strings.Join(f.vals, ",")
}

func (f *settingFlag) Set(v string) error {
	var scratch server.Config
	if err := f.st.Set(&scratch, []string{v}); err != nil {
		return err
	}
	if f.st.Repeated {
		f.vals = append(f.vals, v)
	} else {
		f.vals = []string{v}
	}
	return nil
}

func (f *settingFlag) Type() string {
	if f.st.Repeated {
		return "string"
	}
	return f.st.Type
}

// bindSettings adds a flag for every setting of the table to fs and returns a
// function that reports the ones given, by setting key.
func bindSettings(fs *pflag.FlagSet) func() map[string][]string {
	var bound []*settingFlag
	for _, st := range server.Settings() {
		name := st.FlagName()
		if name == "" {
			continue
		}
		f := &settingFlag{st: st}
		usage := st.Doc + " (env " + st.Env()
		if st.Repeated {
			usage = st.Doc + " (repeatable; env " + st.Env() + ", " + map[string]string{",": "comma", " ": "space"}[st.EnvSep] + "-separated"
		}
		fs.Var(f, name, usage+")")
		if st.Type == "bool" {
			fs.Lookup(name).NoOptDefVal = "true" // --disable-local-auth alone means true
		}
		bound = append(bound, f)
	}
	return func() map[string][]string {
		given := map[string][]string{}
		for _, f := range bound {
			if fs.Changed(f.st.FlagName()) {
				given[f.st.Key] = f.vals
			}
		}
		return given
	}
}

func (a *app) serveCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve [flags]",
		Short: "Run the service",
		Long: `Run the service. Every setting is a flag, an environment variable and a key of the
--config YAML file; precedence flag > environment > file > default (docs/configuration.md).`,
		Args: noArgs,
	}
	cmd.RunE = a.runServe(bindSettings(cmd.Flags()), false)
	return cmd
}

// runServe is the RunE of serve and demo: it loads the configuration from the given
// flags, the environment and the file, and runs the service.
func (a *app) runServe(given func() map[string][]string, demo bool) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		flags := given()
		cfg, err := server.Load(a.getenv, flags)
		if err != nil {
			return err // a configuration error: exit 2
		}
		// A reload reads the file and the environment again; the flags stay.
		return a.serve(cmd.Context(), cfg, demo, func() (server.Config, error) { return server.Load(a.getenv, flags) })
	}
}

// serve runs the service until ctx ends; with demo, the demo function app and chat
// page run inside it (signalbox demo). reload, when not nil, builds the configuration
// again for a reload (SIGHUP, a changed file).
func (a *app) serve(ctx context.Context, cfg server.Config, demo bool, reload func() (server.Config, error)) error {
	level := new(slog.LevelVar)
	level.Set(parseLevel(cfg.LogLevel))
	log := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
	server.WarnShortKeys(log, cfg.AccessKeys)
	generated := len(cfg.AccessKeys) == 0
	if generated {
		key, err := a.defaultKey(cfg.StateFile, log)
		if err != nil {
			return err
		}
		cfg.AccessKeys = server.StringList{key}
	}
	if cfg.NodeID == "" {
		cfg.NodeID = "node-" + randomID(6)
	}
	ln, err := server.Listen(ctx, cfg.Listen)
	if err != nil {
		return failed("%w", err)
	}
	endpoint := server.EndpointFor(cfg, ln.Addr())
	opts := &server.Options{Logger: log}
	var links []string
	if demo {
		closeDemo, demoLinks, err := a.startDemo(ctx, &cfg, opts, ln.Addr(), endpoint, log)
		if err != nil {
			ln.Close()
			return err
		}
		defer closeDemo()
		links = demoLinks
	}
	srv, err := server.NewWithOptions(cfg, opts)
	if err != nil {
		ln.Close()
		return err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	if cfg.MetricsListen != "" {
		stop, err := a.serveMetrics(cfg.MetricsListen, srv, log)
		if err != nil {
			_ = srv.Shutdown(context.Background())
			<-serveErr
			return failed("metrics-listen: %w", err)
		}
		defer stop()
	}

	if generated {
		fmt.Fprintf(a.stdout, "Endpoint=%s;AccessKey=%s;Version=1.0;\n", endpoint, cfg.AccessKeys[0])
	}
	for _, l := range links {
		fmt.Fprintln(a.stdout, l)
	}
	if !cfg.NoTrace && !demo {
		log.Info("live view at "+endpoint+"/_/trace#token=TOKEN", slog.String("token", "signalbox token --hub _trace"))
	}
	log.Info("signalbox listening", slog.String("endpoint", endpoint), slog.String("listen", ln.Addr().String()), slog.String("node", cfg.NodeID),
		slog.Int("accessKeys", len(cfg.AccessKeys)), slog.Int("upstreamRules", len(cfg.Rules())))
	rctx, stopReload := context.WithCancel(ctx)
	reloaded := make(chan struct{})
	go func() {
		defer close(reloaded)
		if reload != nil {
			a.watchReload(rctx, srv, cfg, reload, level, log)
		}
	}()
	defer func() { stopReload(); <-reloaded }()
	if a.ready != nil {
		a.ready(endpoint)
	}

	select {
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			_ = srv.Shutdown(context.Background())
			return failed("%w", err)
		}
		return nil
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
	return nil
}

// defaultKey is the key of a server started without one: kept in the state file, or
// generated for this run when the file cannot be written.
func (a *app) defaultKey(path string, log *slog.Logger) (string, error) {
	if path == "" {
		var err error
		if path, err = a.defaultStateFile(); err != nil {
			log.Warn("no state file: the generated access key lasts for this run only", slog.Any("error", err))
			return generateAccessKey(), nil
		}
	}
	key, created, err := stableKey(path)
	switch {
	case err != nil && fileProblem(err):
		log.Warn("cannot keep the access key in the state file: the generated key lasts for this run only",
			slog.String("path", path), slog.Any("error", err))
		return generateAccessKey(), nil
	case err != nil:
		return "", err // a damaged state file: say so rather than change the key
	case created:
		log.Info("generated an access key and kept it in the state file (--access-key overrides it)", slog.String("path", path))
	default:
		log.Info("access key from the state file (--access-key overrides it)", slog.String("path", path))
	}
	return key, nil
}

// fileProblem tells an unwritable place from a damaged file.
func fileProblem(err error) bool {
	var pe *fs.PathError
	var le *os.LinkError
	return errors.As(err, &pe) || errors.As(err, &le)
}

// serveMetrics serves /metrics on a listener of its own (metrics-listen), so that
// it can stay off the public address; stop closes it.
func (a *app) serveMetrics(addr string, srv *server.Server, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", srv.Metrics().Handler())
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	log.Info("metrics listening", slog.String("listen", ln.Addr().String()))
	if a.metricsReady != nil {
		a.metricsReady(ln.Addr().String())
	}
	return func() { _ = hs.Close() }, nil
}

func newLogger(w interface{ Write([]byte) (int, error) }, level string) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: parseLevel(level)}))
}

func parseLevel(level string) slog.Level {
	switch strings.ToLower(level) {
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// generateAccessKey returns a random 44-character key.
func generateAccessKey() string {
	var b [33]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// randomID returns n random bytes as unpadded base64url.
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
