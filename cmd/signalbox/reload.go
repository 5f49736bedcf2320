package main

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/signalbox-io/signalbox/internal/server"
)

// reloadPoll is how often serve looks at the config file and the access-key file
// for changes. Polling needs no platform watcher and sees a file replaced by a rename
// (how editors and Kubernetes secrets update files) as well as one rewritten.
const reloadPoll = time.Second

// watchReload reloads the configuration on SIGHUP and whenever the config file or the
// access-key file changes, until ctx ends. A configuration that does not load or does
// not validate is logged and the running one kept.
func (a *app) watchReload(ctx context.Context, srv *server.Server, cfg server.Config, load func() (server.Config, error), level *slog.LevelVar, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	if a.hup != nil {
		hup = a.hup
	} else {
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
	}
	files := func(c server.Config) []string { return []string{c.ConfigFile, c.AccessKeyFile} }
	watched := files(cfg)
	seen := fingerprint(watched)
	tick := time.NewTicker(reloadPoll)
	defer tick.Stop()
	for {
		var why string
		select {
		case <-ctx.Done():
			return
		case <-hup:
			why = "SIGHUP"
		case <-tick.C:
			now := fingerprint(watched)
			if now == seen {
				continue
			}
			seen, why = now, "file changed"
		}
		next, err := load()
		if err != nil {
			log.Error("configuration reload failed; the running configuration stays", slog.String("trigger", why), slog.Any("error", err))
			continue
		}
		res, err := srv.Reload(next)
		if err != nil {
			log.Error("configuration reload failed; the running configuration stays", slog.String("trigger", why), slog.Any("error", err))
			continue
		}
		level.Set(parseLevel(next.LogLevel))
		server.WarnShortKeys(log, next.AccessKeys)
		watched = files(next)
		seen = fingerprint(watched)
		log.Info("configuration reloaded", slog.String("trigger", why),
			slog.String("changed", strings.Join(res.Changed, ", ")),
			slog.String("needsRestart", strings.Join(res.NeedRestart, ", ")))
	}
}

// fingerprint summarises the contents of files ("" entries skipped; a missing file
// counts as empty), so that a change of any of them is seen.
func fingerprint(files []string) [32]byte {
	h := sha256.New()
	for _, f := range files {
		if f == "" {
			continue
		}
		data, _ := os.ReadFile(f)
		h.Write([]byte(f))
		h.Write([]byte{0})
		sum := sha256.Sum256(data)
		h.Write(sum[:])
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}
