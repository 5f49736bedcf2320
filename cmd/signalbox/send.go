package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/signalbox-io/signalbox/connection"
	"github.com/signalbox-io/signalbox/management"
)

// sendOptions are the flags of `signalbox send`.
type sendOptions struct {
	endpoint, key, connStr string
	hub, target            string
	user, group, conn      string
	argsFile               string
	timeout                time.Duration
}

func (a *app) sendCommand() *cobra.Command {
	var o sendOptions
	cmd := &cobra.Command{
		Use:   "send --hub HUB --target METHOD [--user U | --group G | --connection C] [ARG...]",
		Short: "Send a message through the REST API and print what was sent",
		Long: `Send one message through the REST API (to everyone in the hub, or to one user, group or
connection) and print what was sent.

Each ARG is a JSON value (42, true, null, "text", {"a":1}, [1,2]); a word that is not
valid JSON is sent as a string. --arguments-file FILE (or - for standard input) reads
the arguments instead, as one JSON array. Flags may come before or after the
arguments; "--" ends the flags, so that an argument may start with '-'.`,
		Example: `  signalbox send --hub chat --target newMessage hello --user bob
  echo '["hello", {"from": "cli"}]' | signalbox send --hub chat --target newMessage --arguments-file -`,
		RunE: func(cmd *cobra.Command, args []string) error { return a.send(cmd, o, args) },
	}
	fs := cmd.Flags()
	fs.StringVar(&o.endpoint, "endpoint", "", "service endpoint (default SIGNALBOX_PUBLIC_URL or "+defaultEndpoint+")")
	fs.StringVar(&o.key, "access-key", "", "access key (default: the first of SIGNALBOX_ACCESS_KEY)")
	fs.StringVar(&o.connStr, "connection-string", "", "Endpoint=...;AccessKey=...; instead of --endpoint and --access-key")
	fs.StringVar(&o.hub, "hub", "", "hub name")
	fs.StringVar(&o.target, "target", "", "client method to invoke")
	fs.StringVar(&o.user, "user", "", "send to this user")
	fs.StringVar(&o.group, "group", "", "send to this group")
	fs.StringVar(&o.conn, "connection", "", "send to this connection id")
	fs.StringVar(&o.argsFile, "arguments-file", "", "read the arguments as one JSON array from this file (- = standard input)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "request timeout")
	return cmd
}

func (a *app) send(cmd *cobra.Command, o sendOptions, args []string) error {
	var e connection.Endpoint
	if o.connStr != "" {
		if o.endpoint != "" || o.key != "" {
			return errors.New("send: give --connection-string or --endpoint and --access-key, not both")
		}
		var err error
		if e, err = connection.NewEndpoint("", connection.Primary, o.connStr, nil); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		if e.AccessKey == "" {
			return errors.New("send: the connection string has no AccessKey")
		}
	}
	key := o.key
	if key == "" && o.connStr == "" {
		key = a.firstKey()
	}
	recipients := 0
	for _, v := range []string{o.user, o.group, o.conn} {
		if v != "" {
			recipients++
		}
	}
	switch {
	case key == "" && o.connStr == "":
		return errors.New("send: --access-key (or --connection-string, or SIGNALBOX_ACCESS_KEY) is required")
	case o.hub == "" || o.target == "":
		return errors.New("send: --hub and --target are required")
	case recipients > 1:
		return errors.New("send: give at most one of --user, --group, --connection")
	case o.timeout <= 0:
		return errors.New("send: --timeout must be positive")
	case o.argsFile != "" && len(args) > 0:
		return errors.New("send: give the arguments on the command line or in --arguments-file, not both")
	}
	arguments, err := a.sendArguments(o.argsFile, args)
	if err != nil {
		return err
	}
	if o.connStr == "" {
		ep := a.endpointOr(o.endpoint)
		if e, err = connection.NewEndpoint("", connection.Primary, "Endpoint="+ep+";AccessKey="+key+";Version=1.0;", nil); err != nil {
			return fmt.Errorf("send: %w", err)
		}
	}
	mc, err := management.NewClient([]connection.Endpoint{e}, &management.ClientOptions{Timeout: o.timeout})
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	defer mc.Close()
	ctx := cmd.Context()
	var to string
	switch {
	case o.user != "":
		to = fmt.Sprintf("user %q", o.user)
		err = mc.SendToUser(ctx, o.hub, o.user, o.target, arguments, nil)
	case o.group != "":
		to = fmt.Sprintf("group %q", o.group)
		err = mc.SendToGroup(ctx, o.hub, o.group, o.target, arguments, nil)
	case o.conn != "":
		to = fmt.Sprintf("connection %q", o.conn)
		err = mc.SendToConnection(ctx, o.hub, o.conn, o.target, arguments, nil)
	default:
		to = "everyone"
		err = mc.SendToAll(ctx, o.hub, o.target, arguments, nil)
	}
	if err != nil {
		return failed("send: %w", err)
	}
	parts := make([]string, len(arguments))
	for i, a := range arguments {
		parts[i] = string(a)
	}
	fmt.Fprintf(a.stdout, "sent %s(%s) to %s in hub %q at %s\n", o.target, strings.Join(parts, ", "), to, o.hub, e.Endpoint)
	return nil
}

// sendArguments reads the message arguments: from the file (a JSON array), or one
// JSON value per command-line word, a word that is not JSON being a string.
func (a *app) sendArguments(file string, args []string) ([]json.RawMessage, error) {
	if file != "" {
		var data []byte
		var err error
		if file == "-" {
			data, err = io.ReadAll(io.LimitReader(a.stdin, 16<<20))
		} else {
			data, err = os.ReadFile(file)
		}
		if err != nil {
			return nil, fmt.Errorf("send: --arguments-file: %w", err)
		}
		var arguments []json.RawMessage
		dec := json.NewDecoder(bytes.NewReader(data))
		if err := dec.Decode(&arguments); err != nil {
			return nil, fmt.Errorf("send: --arguments-file %s: want one JSON array of the arguments: %w", file, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("send: --arguments-file %s: want one JSON array of the arguments, found more after it", file)
		}
		for i, arg := range arguments {
			var compact bytes.Buffer
			if err := json.Compact(&compact, arg); err == nil {
				arguments[i] = compact.Bytes()
			}
		}
		return arguments, nil
	}
	arguments := make([]json.RawMessage, 0, len(args))
	for _, s := range args {
		if json.Valid([]byte(s)) {
			var compact bytes.Buffer
			_ = json.Compact(&compact, []byte(s))
			arguments = append(arguments, compact.Bytes())
			continue
		}
		q, _ := json.Marshal(s)
		arguments = append(arguments, q)
	}
	return arguments, nil
}
