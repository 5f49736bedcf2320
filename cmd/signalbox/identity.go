package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/signalbox-io/signalbox/internal/identity"
)

// identityCommand is `signalbox identity`: a local managed identity for development
// (docs/identity.md). The behaviour lives in internal/identity.
func (a *app) identityCommand() *cobra.Command {
	var listen, header, alg, logLevel string
	var lifetime time.Duration
	cmd := &cobra.Command{
		Use:   "identity [--listen HOST:PORT] [--header VALUE]",
		Short: "Serve a local managed identity (IDENTITY_ENDPOINT / IDENTITY_HEADER) and the issuer documents serve --identity-issuer trusts",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			err := identity.Run(cmd.Context(), identity.RunOptions{
				Listen: listen, Header: header, Algorithm: alg, TokenLifetime: lifetime,
				Logger: newLogger(a.stderr, logLevel),
			}, a.stdout)
			if err != nil {
				return runError{err}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", identity.DefaultListen, "HOST:PORT to listen on")
	f.StringVar(&header, "header", "", "the IDENTITY_HEADER secret; generated when absent")
	f.StringVar(&alg, "algorithm", "RS256", "token signing algorithm: RS256 or ES256")
	f.DurationVar(&lifetime, "token-lifetime", identity.DefaultTokenLifetime, "lifetime of the tokens issued")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}
