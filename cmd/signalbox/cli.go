package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes of the command line.
const (
	exitOK     = 0
	exitError  = 1 // a runtime failure (cannot listen, the request failed, ...)
	exitConfig = 2 // bad flags, arguments or configuration
)

// app is one run of the command line; tests fill it with buffers and call run.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string // nil = empty environment
	// ready, if set, is called with the endpoint once serve accepts requests (tests
	// wait on it instead of polling).
	ready func(endpoint string)
	// metricsReady, if set, is called with the address of the metrics-listen listener.
	metricsReady func(addr string)
	// hup, if set, replaces SIGHUP as the reload trigger (tests).
	hup chan os.Signal
}

// runError is a failure after the arguments were understood: exit code 1.
type runError struct{ err error }

func (e runError) Error() string { return e.err.Error() }
func (e runError) Unwrap() error { return e.err }

func failed(format string, args ...any) error { return runError{fmt.Errorf(format, args...)} }

// run executes args (without the program name) and returns the exit code. ctx ends
// serve gracefully.
func (a *app) run(ctx context.Context, args []string) int {
	if a.stdin == nil {
		a.stdin = strings.NewReader("")
	}
	if a.stdout == nil {
		a.stdout = io.Discard
	}
	if a.stderr == nil {
		a.stderr = io.Discard
	}
	if a.getenv == nil {
		a.getenv = func(string) string { return "" }
	}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(a.stderr, "signalbox:", err)
	var re runError
	if errors.As(err, &re) {
		return exitError
	}
	if cmd != nil {
		fmt.Fprintf(a.stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return exitConfig
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "signalbox",
		Short: "A self-hosted SignalR service compatible with Azure SignalR Service (serverless mode)",
		Long: `Signalbox speaks the ASP.NET Core SignalR protocol to clients and the Azure SignalR Service
serverless contract (REST API, upstream, negotiate) to function apps.

Flags may stand anywhere on the command line; "--" ends them.`,
		Version:       versionString(),
		SilenceErrors: true,
		SilenceUsage:  true,
		// Without a command: the usage, and a non-zero exit for scripts.
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SetOut(a.stderr)
			_ = cmd.Usage()
			return errors.New("no command given")
		},
	}
	root.SetVersionTemplate("signalbox {{.Version}}\n")
	root.SetFlagErrorFunc(flagError)
	root.AddCommand(a.serveCommand(), a.tokenCommand(), a.sendCommand(), a.benchCommand(), a.identityCommand(), a.versionCommand(), a.healthCommand(), a.functionsCommand(), a.demoCommand())
	return root
}

// flagError explains the usual cause of an unknown shorthand: a negative number or
// other argument starting with '-' that was meant as a message argument.
func flagError(_ *cobra.Command, err error) error {
	if strings.Contains(err.Error(), "shorthand") {
		return fmt.Errorf("%w (put \"--\" before arguments that start with '-')", err)
	}
	return err
}

// noArgs rejects positional arguments: a stray word is a mistake, never ignored.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%s: unexpected argument %q", cmd.Name(), args[0])
	}
	return nil
}
