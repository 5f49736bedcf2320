package server

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/signalbox-io/signalbox/connection"
	"github.com/signalbox-io/signalbox/internal/bench"
	"github.com/signalbox-io/signalbox/management"
)

// benchCmd is `signalbox bench`: load scenarios against a child server (see
// package bench).
func (c CLI) benchCmd(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	fs.Usage = func() {
		fmt.Fprintln(c.Stderr, "usage: signalbox bench [flags]")
		fmt.Fprintln(c.Stderr, "Starts a signalbox server as a child process, connects WebSocket clients over loopback and")
		fmt.Fprintln(c.Stderr, "measures each scenario: broadcast (REST broadcast fan-out, compared to a raw WebSocket floor),")
		fmt.Fprintln(c.Stderr, "upstream (invocations answered by an in-process function app), rest (REST send-to-user) and")
		fmt.Fprintln(c.Stderr, "idle (memory per connection). Progress goes to stderr, results to stdout.")
		fs.PrintDefaults()
	}
	var o bench.Options
	asJSON := fs.Bool("json", false, "print one JSON object per scenario per line")
	scenarios := fs.String("scenario", "broadcast,idle", "comma-separated scenarios: "+strings.Join(bench.Scenarios, ", ")+", or all")
	fs.IntVar(&o.Clients, "clients", 1000, fmt.Sprintf("WebSocket clients (at most %d)", bench.MaxClients))
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "measured window of each scenario")
	fs.DurationVar(&o.Warmup, "warmup", 2*time.Second, "warm-up before the window (0 = none)")
	fs.Float64Var(&o.Rate, "rate", 0, "open loop: broadcast messages/s or REST requests/s; 0 = closed loop (what the server sustains)")
	fs.IntVar(&o.Window, "window", 8, "closed-loop broadcast: messages outstanding until every client has them")
	fs.IntVar(&o.Callers, "callers", 32, "closed-loop rest: concurrent request loops")
	fs.DurationVar(&o.TargetP99, "target-p99", 0, "closed-loop broadcast: search the window (1, 2, 4, ...) for the most deliveries/s with p99 within this (e.g. 50ms)")
	fs.IntVar(&o.Payload, "payload", 64, "bytes of the string argument of each message")
	fs.StringVar(&o.Protocol, "protocol", "json", "hub protocol of the clients: json or messagepack")
	fs.StringVar(&o.Transport, "transport", "websockets", "transport of the clients: websockets, sse or longpolling (the floor is always WebSockets)")
	fs.StringVar(&o.ServerURL, "server-url", "", "run against this server instead of a child process")
	fs.StringVar(&o.AccessKey, "access-key", "", "access key of --server-url")
	fs.IntVar(&o.ServerPID, "server-pid", 0, "process id of --server-url, to measure its CPU and RSS")
	fs.BoolVar(&o.NoFloor, "no-floor", false, "skip the raw floor measurement")
	quiet := fs.Bool("quiet", false, "no progress messages on stderr")
	floorServer := fs.Bool("floor-server", false, "internal: run the raw floor server")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitConfig
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(c.Stderr, "signalbox bench: unexpected argument %q\n", fs.Arg(0))
		return ExitConfig
	}
	if *floorServer {
		if err := bench.ServeFloor(ctx, os.Stdin, c.Stdout); err != nil {
			fmt.Fprintln(c.Stderr, "signalbox bench:", err)
			return ExitError
		}
		return ExitOK
	}
	if o.Warmup == 0 {
		o.Warmup = -1 // explicit 0: none
	}
	if !*quiet {
		o.Logger = slog.New(slog.NewTextHandler(c.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	list := strings.Split(*scenarios, ",")
	if *scenarios == "all" {
		list = bench.Scenarios
	}
	for _, s := range list {
		o := o
		o.Scenario = strings.TrimSpace(s)
		if err := o.Validate(); err != nil {
			fmt.Fprintln(c.Stderr, "signalbox bench:", strings.TrimPrefix(err.Error(), "bench: "))
			return ExitConfig
		}
	}
	var results []*bench.Result
	for _, s := range list {
		o := o
		o.Scenario = strings.TrimSpace(s)
		r, err := bench.Run(ctx, o)
		if err != nil {
			fmt.Fprintf(c.Stderr, "signalbox bench: %s: %s\n", o.Scenario, strings.TrimPrefix(err.Error(), "bench: "))
			return ExitError
		}
		if *asJSON {
			if err := bench.WriteJSON(c.Stdout, r); err != nil {
				return ExitError
			}
		}
		results = append(results, r)
	}
	if !*asJSON {
		if err := bench.WriteTable(c.Stdout, results); err != nil {
			return ExitError
		}
	}
	return ExitOK
}

// sendCmd is `signalbox send`: one REST API message through package management.
func (c CLI) sendCmd(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	fs.Usage = func() {
		fmt.Fprintln(c.Stderr, "usage: signalbox send --hub H --target T [--user U | --group G | --connection C] [ARG...]")
		fmt.Fprintln(c.Stderr, "each ARG is a JSON value; anything that is not valid JSON is sent as a string")
		fs.PrintDefaults()
	}
	endpoint := fs.String("endpoint", "", "service endpoint (default "+EnvPublicURL+" or http://localhost:8888)")
	key := fs.String("access-key", "", "access key (default: the first of "+EnvAccessKey+")")
	connStr := fs.String("connection-string", "", "Endpoint=...;AccessKey=...; instead of --endpoint and --access-key")
	hubName := fs.String("hub", "", "hub name")
	target := fs.String("target", "", "client method to invoke")
	user := fs.String("user", "", "send to this user")
	group := fs.String("group", "", "send to this group")
	conn := fs.String("connection", "", "send to this connection id")
	timeout := fs.Duration("timeout", 30*time.Second, "request timeout")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitConfig
	}
	var e connection.Endpoint
	if *connStr != "" {
		if *endpoint != "" || *key != "" {
			fmt.Fprintln(c.Stderr, "signalbox send: give --connection-string or --endpoint and --access-key, not both")
			return ExitConfig
		}
		var err error
		if e, err = connection.NewEndpoint("", connection.Primary, *connStr, nil); err != nil {
			fmt.Fprintln(c.Stderr, "signalbox send:", err)
			return ExitConfig
		}
		if e.AccessKey == "" {
			fmt.Fprintln(c.Stderr, "signalbox send: the connection string has no AccessKey")
			return ExitConfig
		}
	}
	k := *key
	if k == "" && *connStr == "" {
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
	recipients := 0
	for _, v := range []string{*user, *group, *conn} {
		if v != "" {
			recipients++
		}
	}
	switch {
	case k == "" && *connStr == "":
		fmt.Fprintln(c.Stderr, "signalbox send: --access-key (or --connection-string) is required")
		return ExitConfig
	case *hubName == "" || *target == "":
		fmt.Fprintln(c.Stderr, "signalbox send: --hub and --target are required")
		return ExitConfig
	case recipients > 1:
		fmt.Fprintln(c.Stderr, "signalbox send: give at most one of --user, --group, --connection")
		return ExitConfig
	case *timeout <= 0:
		fmt.Fprintln(c.Stderr, "signalbox send: --timeout must be positive")
		return ExitConfig
	}
	arguments := make([]json.RawMessage, 0, fs.NArg())
	for _, a := range fs.Args() {
		if json.Valid([]byte(a)) {
			arguments = append(arguments, json.RawMessage(a))
			continue
		}
		s, _ := json.Marshal(a)
		arguments = append(arguments, s)
	}
	if *connStr == "" {
		var err error
		if e, err = connection.NewEndpoint("", connection.Primary, "Endpoint="+ep+";AccessKey="+k+";Version=1.0;", nil); err != nil {
			fmt.Fprintln(c.Stderr, "signalbox send:", err)
			return ExitConfig
		}
	}
	mc, err := management.NewClient([]connection.Endpoint{e}, &management.ClientOptions{Timeout: *timeout})
	if err != nil {
		fmt.Fprintln(c.Stderr, "signalbox send:", err)
		return ExitConfig
	}
	defer mc.Close()
	switch {
	case *user != "":
		err = mc.SendToUser(ctx, *hubName, *user, *target, arguments, nil)
	case *group != "":
		err = mc.SendToGroup(ctx, *hubName, *group, *target, arguments, nil)
	case *conn != "":
		err = mc.SendToConnection(ctx, *hubName, *conn, *target, arguments, nil)
	default:
		err = mc.SendToAll(ctx, *hubName, *target, arguments, nil)
	}
	if err != nil {
		fmt.Fprintln(c.Stderr, "signalbox send:", err)
		return ExitError
	}
	return ExitOK
}
