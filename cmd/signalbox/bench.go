package main

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/signalbox-io/signalbox/internal/bench"
)

func (a *app) benchCommand() *cobra.Command {
	var o bench.Options
	var asJSON, quiet, floorServer, connectWorker, publishWorker, upstreamWorker, short bool
	var scenarios string
	cmd := &cobra.Command{
		Use:   "bench [flags]",
		Short: "Run load scenarios against a child server",
		Long: `Starts a signalbox server as a child process, connects WebSocket clients over loopback and
measures each scenario: broadcast (REST broadcast fan-out, compared to a raw WebSocket floor),
upstream (invocations answered by the bench's function app, a process of its own), rest (REST send-to-user),
idle (memory per connection), connect (connection rate and a reconnect storm) and cluster
(the broadcast of one node, then the same clients and load through --nodes nodes on
--redis-url with the clients spread over them and REST to the first; reports the ratio).
--scenario all runs the performance table of docs/performance.md instead: every row with its
own preset load (--clients, --rate and --duration do not apply) and its goal beside it;
--short runs each row for 5 s (about 3 minutes in all). Progress goes to stderr, results to
stdout.`,
		Args: noArgs,
	}
	fs := cmd.Flags()
	fs.BoolVar(&asJSON, "json", false, "print one JSON object per scenario per line")
	fs.StringVar(&scenarios, "scenario", "broadcast,idle", "comma-separated scenarios: "+strings.Join(bench.Scenarios, ", ")+", or all")
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
	fs.StringVar(&o.RedisURL, "redis-url", "redis://127.0.0.1:6379/0", "cluster scenario: the Redis of the nodes (keys under a prefix of the run's own)")
	fs.IntVar(&o.Nodes, "nodes", 3, "cluster scenario: nodes, clients spread over them, REST calls to the first")
	fs.StringVar(&o.ServerURL, "server-url", "", "run against this server instead of a child process")
	fs.StringVar(&o.AccessKey, "access-key", "", "access key of --server-url")
	fs.IntVar(&o.ServerPID, "server-pid", 0, "process id of --server-url, to measure its CPU and RSS")
	fs.IntVar(&o.ClientsPerProcess, "clients-per-process", bench.DefaultClientsPerProcess, "connect scenario: more clients than this are spread over worker processes of the bench (each process has its own open-file limit)")
	fs.BoolVar(&o.NoFloor, "no-floor", false, "skip the raw floor measurement")
	fs.BoolVar(&short, "short", false, "with --scenario all: 5 s per row instead of 20 s")
	fs.BoolVar(&quiet, "quiet", false, "no progress messages on stderr")
	fs.BoolVar(&floorServer, "floor-server", false, "internal: run the raw floor server")
	_ = fs.MarkHidden("floor-server")
	fs.BoolVar(&connectWorker, "connect-worker", false, "internal: run a share of the connect scenario's clients")
	_ = fs.MarkHidden("connect-worker")
	fs.BoolVar(&publishWorker, "publish-worker", false, "internal: run the open-loop broadcast's publisher")
	_ = fs.MarkHidden("publish-worker")
	fs.BoolVar(&upstreamWorker, "upstream-worker", false, "internal: run the upstream scenario's function app")
	_ = fs.MarkHidden("upstream-worker")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		if floorServer {
			if err := bench.ServeFloor(ctx, a.stdin, a.stdout); err != nil {
				return failed("bench: %w", err)
			}
			return nil
		}
		if connectWorker || publishWorker || upstreamWorker {
			// Its log goes to the bench, which shows the last of it when the worker fails.
			log := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			serve := bench.ServeConnectWorker
			switch {
			case publishWorker:
				serve = bench.ServePublishWorker
			case upstreamWorker:
				serve = bench.ServeUpstreamWorker
			}
			if err := serve(ctx, a.stdin, a.stdout, log); err != nil {
				return failed("bench: %w", err)
			}
			return nil
		}
		if o.Warmup == 0 {
			o.Warmup = -1 // explicit 0: none
		}
		if !quiet {
			o.Logger = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
		}
		var results []*bench.Result
		emit := func(r *bench.Result) error {
			if asJSON {
				if err := bench.WriteJSON(a.stdout, r); err != nil {
					return failed("bench: %w", err)
				}
			}
			results = append(results, r)
			return nil
		}
		writeTable := func() error {
			if asJSON {
				return nil
			}
			if err := bench.WriteTable(a.stdout, results); err != nil {
				return failed("bench: %w", err)
			}
			return nil
		}
		if scenarios == "all" {
			o.Scenario = bench.Broadcast
			if err := o.Validate(); err != nil {
				return fmt.Errorf("bench: %s", strings.TrimPrefix(err.Error(), "bench: "))
			}
			if err := bench.RunSuite(ctx, o, short, emit); err != nil {
				_ = writeTable()
				return failed("bench: %s", strings.TrimPrefix(err.Error(), "bench: "))
			}
			return writeTable()
		}
		list := strings.Split(scenarios, ",")
		for _, s := range list {
			o := o
			o.Scenario = strings.TrimSpace(s)
			if err := o.Validate(); err != nil {
				return fmt.Errorf("bench: %s", strings.TrimPrefix(err.Error(), "bench: "))
			}
		}
		for _, s := range list {
			o := o
			o.Scenario = strings.TrimSpace(s)
			r, err := bench.Run(ctx, o)
			if err != nil {
				return failed("bench: %s: %s", o.Scenario, strings.TrimPrefix(err.Error(), "bench: "))
			}
			if err := emit(r); err != nil {
				return err
			}
		}
		return writeTable()
	}
	return cmd
}
