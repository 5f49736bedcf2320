package identity

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// DefaultListen is where `signalbox identity` listens unless told otherwise.
const DefaultListen = "localhost:8889"

// RunOptions configures Run.
type RunOptions struct {
	// Listen is HOST:PORT; empty means DefaultListen. Port 0 picks a free port.
	Listen string
	// Header is the IDENTITY_HEADER secret; empty means a generated one.
	Header string
	// Algorithm is RS256 (default) or ES256.
	Algorithm string
	// TokenLifetime defaults to DefaultTokenLifetime.
	TokenLifetime time.Duration
	// Logger nil discards.
	Logger *slog.Logger
}

// Run is `signalbox identity`: it listens, prints IDENTITY_ENDPOINT=, IDENTITY_HEADER=
// and ISSUER= lines on stdout, and serves the Provider until ctx ends.
func Run(ctx context.Context, opts RunOptions, stdout io.Writer) error {
	listen := opts.Listen
	if listen == "" {
		listen = DefaultListen
	}
	header := opts.Header
	if header == "" {
		var b [24]byte
		_, _ = rand.Read(b[:])
		header = base64.RawURLEncoding.EncodeToString(b[:])
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", listen)
	if err != nil {
		return fmt.Errorf("identity: listen: %w", err)
	}
	issuer := "http://" + hostPort(listen, ln.Addr())
	p, err := NewProvider(issuer, header, &ProviderOptions{Algorithm: opts.Algorithm, TokenLifetime: opts.TokenLifetime, Logger: log})
	if err != nil {
		_ = ln.Close()
		return err
	}
	sys := SystemAssigned()
	log.Info("identity: serving a local managed identity", "issuer", issuer,
		"systemAssignedObjectId", sys.ObjectID, "systemAssignedClientId", sys.ClientID)
	fmt.Fprintf(stdout, "IDENTITY_ENDPOINT=%s%s\nIDENTITY_HEADER=%s\nISSUER=%s\n", issuer, TokenPath, header, issuer)

	srv := &http.Server{Handler: p.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("identity: serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("identity: shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("identity: serve: %w", err)
	}
	return nil
}

// hostPort is the listen address as written, with an empty host made localhost and
// port 0 replaced by the bound port.
func hostPort(listen string, addr net.Addr) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return addr.String()
	}
	if _, p, err := net.SplitHostPort(addr.String()); err == nil {
		port = p
	}
	if host == "" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
