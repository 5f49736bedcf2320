package main

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/signalbox-io/signalbox/internal/functionsinit"
)

func (a *app) functionsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "functions",
		Short: "Function apps that use Signalbox through the Azure Functions host",
	}
	var endpoint, key string
	var force bool
	initCmd := &cobra.Command{
		Use:   "init [DIR]",
		Short: "Write a Go custom-handler function app (host.json, function.json, local.settings.json, main.go)",
		Long: `Write a Go custom handler for the Azure Functions host into DIR (default: the current
directory): host.json, negotiate/function.json (httpTrigger + signalRConnectionInfo),
broadcast/function.json (signalRTrigger + signalR output), main.go, and a
local.settings.json whose AzureSignalRConnectionString points at Signalbox with the key
'signalbox serve' uses (--access-key, SIGNALBOX_ACCESS_KEY, else the state file's).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			if key == "" {
				key = a.firstKey()
			}
			if key == "" {
				path, err := a.defaultStateFile()
				if err != nil {
					return failed("functions init: %w", err)
				}
				k, created, err := stableKey(path)
				if err != nil {
					return failed("functions init: the state file: %w", err)
				}
				if created {
					newLogger(a.stderr, "info").Info("generated an access key and kept it in the state file; signalbox serve uses it", slog.String("path", path))
				}
				key = k
			}
			ep := strings.TrimRight(a.endpointOr(endpoint), "/")
			written, err := functionsinit.Write(dir, functionsinit.Options{
				ConnectionString: "Endpoint=" + ep + ";AccessKey=" + key + ";Version=1.0;",
				Force:            force,
			})
			if err != nil {
				return failed("functions init: %w", err)
			}
			for _, f := range written {
				fmt.Fprintln(a.stdout, "wrote", filepath.Join(dir, f))
			}
			fmt.Fprintf(a.stdout, `
Next:
  signalbox serve --upstream 'http://localhost:7071/runtime/webhooks/signalr'
  cd %s && go mod init example.com/app && go get github.com/signalbox-io/signalbox && go build -o handler .
  func start
The Functions host checks the upstream's ?code= key when it is not run locally: add
?code=<signalr_extension system key> to the --upstream URL there.
`, dir)
			return nil
		},
	}
	fs := initCmd.Flags()
	fs.StringVar(&endpoint, "endpoint", "", "Signalbox endpoint for the connection string (default SIGNALBOX_PUBLIC_URL or "+defaultEndpoint+")")
	fs.StringVar(&key, "access-key", "", "access key for the connection string (default: SIGNALBOX_ACCESS_KEY, else the state file's)")
	fs.BoolVar(&force, "force", false, "overwrite files that exist")
	cmd.AddCommand(initCmd)
	return cmd
}
