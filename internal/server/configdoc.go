package server

import (
	"fmt"
	"strings"
)

// ConfigurationDoc renders docs/configuration.md from the settings table; a test
// keeps the file equal to it.
func ConfigurationDoc() string {
	var b strings.Builder
	b.WriteString(`# Configuration of ` + "`signalbox serve`" + `

Generated from the settings table (` + "`internal/server/settings.go`" + `) by
` + "`go test ./internal/server -run TestConfigurationDoc -update`" + `; do not edit by hand.

Every setting is a flag, an environment variable and a key of the YAML file given with ` + "`--config`" + `.
Precedence: flag > environment > config file > default. Flags are written ` + "`--name value`" + ` or
` + "`--name=value`" + ` and may stand anywhere on the command line; ` + "`--`" + ` ends the flags. A repeatable
setting takes its flag several times, a YAML list, and an environment value separated as shown.
Unknown keys and bad values are start-up errors that name the setting and where it came from.

| key | flag | environment | type | default | description |
|---|---|---|---|---|---|
`)
	for _, s := range settings {
		key := "`" + s.Key + "`"
		if s.NoFile {
			key = "(not a file key)"
		}
		flag, env := "", ""
		if f := s.FlagName(); f != "" {
			flag = "`--" + f + "`"
		}
		if e := s.Env(); e != "" {
			env = "`" + e + "`"
			if s.Repeated {
				sep := "comma"
				if s.EnvSep == " " {
					sep = "space"
				}
				env += " (" + sep + "-separated)"
			}
		}
		def := ""
		if s.Default != "" {
			def = "`" + s.Default + "`"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", key, flag, env, s.Type, def, strings.ReplaceAll(s.Doc, "|", "\\|"))
	}
	b.WriteString(`
Example file:

` + "```yaml" + `
listen: 0.0.0.0:8888
access-key: [primary-key, secondary-key]
upstream: http://localhost:7071/runtime/webhooks/signalr
upstreams:
  - url: http://localhost:7072/api/{event}
    hub: chat
    category: messages
    event: "broadcast, echo"
keep-alive-interval: 15s
` + "```" + `
`)
	return b.String()
}
