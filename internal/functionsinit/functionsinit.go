// Package functionsinit writes a Go custom-handler function app for the Azure Functions
// host (`signalbox functions init`): host.json, a function.json per function, the
// handler's main.go (the template directory, which the module also compiles, so the
// template cannot rot) and a local.settings.json pointing at a Signalbox service.
package functionsinit

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

//go:embed template/host.json template/negotiate/function.json template/broadcast/function.json template/main.go
var files embed.FS

// Options say what to write.
type Options struct {
	// ConnectionString goes into local.settings.json as AzureSignalRConnectionString.
	ConnectionString string
	// Force overwrites files that exist.
	Force bool
}

// Write writes the app into dir and returns the paths written, relative to dir.
// Existing files are an error unless Force is set: nothing is written then.
func Write(dir string, o Options) ([]string, error) {
	out := map[string][]byte{}
	err := fs.WalkDir(files, "template", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := files.ReadFile(path)
		if err != nil {
			return err
		}
		out[strings.TrimPrefix(path, "template/")] = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	settings, err := json.MarshalIndent(map[string]any{
		"IsEncrypted": false,
		"Values": map[string]string{
			"FUNCTIONS_WORKER_RUNTIME":     "custom",
			"AzureWebJobsStorage":          "UseDevelopmentStorage=true",
			"AzureSignalRConnectionString": o.ConnectionString,
		},
		"Host": map[string]any{"CORS": "*"},
	}, "", "  ")
	if err != nil {
		return nil, err
	}
	out["local.settings.json"] = append(settings, '\n')

	var names []string
	var exist []string
	for name := range out {
		names = append(names, name)
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			exist = append(exist, name)
		}
	}
	if len(exist) > 0 && !o.Force {
		return nil, fmt.Errorf("%s already holds %s (--force overwrites)", dir, strings.Join(sorted(exist), ", "))
	}
	for _, name := range sorted(names) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		mode := os.FileMode(0o644)
		if name == "local.settings.json" {
			mode = 0o600 // it holds the access key
		}
		if err := os.WriteFile(p, out[name], mode); err != nil {
			return nil, errors.Join(fmt.Errorf("writing %s", p), err)
		}
	}
	return sorted(names), nil
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}
