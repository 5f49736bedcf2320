package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/internal/server"
)

// defaultEndpoint is where token and send talk to when neither a flag nor
// SIGNALBOX_PUBLIC_URL says otherwise.
const defaultEndpoint = "http://localhost:8888"

// firstKey is the primary key of SIGNALBOX_ACCESS_KEY.
func (a *app) firstKey() string {
	k, _, _ := strings.Cut(a.getenv("SIGNALBOX_ACCESS_KEY"), ",")
	return strings.TrimSpace(k)
}

func (a *app) endpointOr(flag string) string {
	if flag != "" {
		return flag
	}
	if v := a.getenv("SIGNALBOX_PUBLIC_URL"); v != "" {
		return v
	}
	return defaultEndpoint
}

func (a *app) tokenCommand() *cobra.Command {
	var key, hubName, user, endpoint, restPath string
	var lifetime time.Duration
	cmd := &cobra.Command{
		Use:   "token --hub HUB [--user ID] | --rest PATH",
		Short: "Print a client (or REST API) access token",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if key == "" {
				key = a.firstKey()
			}
			ep := a.endpointOr(endpoint)
			switch {
			case key == "":
				return errors.New("token: --access-key (or SIGNALBOX_ACCESS_KEY) is required")
			case restPath == "" && hubName == "":
				return errors.New("token: --hub (or --rest PATH) is required")
			case restPath == "" && !server.ValidHubName(hubName) && hubName != server.TraceHub:
				return fmt.Errorf("token: invalid hub name %q", hubName)
			case lifetime <= 0:
				return errors.New("token: --lifetime must be positive")
			}
			aud := auth.ClientAudience(ep, hubName)
			if restPath != "" {
				aud = auth.RESTAudience(ep, restPath)
			}
			tok, err := auth.NewToken(key, auth.TokenOptions{Audience: aud, Lifetime: lifetime, UserID: user})
			if err != nil {
				return failed("token: %w", err)
			}
			fmt.Fprintln(a.stdout, tok)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&key, "access-key", "", "access key (default: the first of SIGNALBOX_ACCESS_KEY)")
	fs.StringVar(&hubName, "hub", "", "hub the client token is for")
	fs.StringVar(&user, "user", "", "user id (asrs.s.uid)")
	fs.StringVar(&endpoint, "endpoint", "", "service endpoint the audience names (default SIGNALBOX_PUBLIC_URL or "+defaultEndpoint+")")
	fs.DurationVar(&lifetime, "lifetime", time.Hour, "token lifetime")
	fs.StringVar(&restPath, "rest", "", "mint a REST API token for this request path (e.g. /api/hubs/chat/:send) instead of a client token")
	return cmd
}
