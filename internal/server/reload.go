package server

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
)

// reloadable names the Config fields Reload applies while every connection stays up.
// The rest (listen address, upstream rules, timeouts, queue sizes...) is fixed for the
// life of the process: connections, sessions and buffers were built with it.
var reloadable = map[string]bool{
	"ConfigFile":               true,
	"AccessKeys":               true,
	"AccessKeyFile":            true,
	"LogLevel":                 true, // applied by the command line, which owns the logger
	"AllowedOrigins":           true,
	"TrustedProxies":           true,
	"MaxConnectionsPerAddress": true,
	"MaxConnectionsPerUser":    true,
	"NegotiateRate":            true,
	"NegotiateBurst":           true,
	"MaxPendingNegotiations":   true,
	"MaxGroupsPerConnection":   true,
}

// ReloadResult says what a Reload did, by setting name. It never holds a key.
type ReloadResult struct {
	// Changed are the settings now in effect with a new value; the access keys are
	// described by count ("access-key (2 keys, was 1)").
	Changed []string
	// NeedRestart are settings whose new value is ignored until the next start.
	NeedRestart []string
}

// Reload applies next's reloadable settings (see reloadable) without dropping any
// connection: the access keys (a token signed with a key still configured keeps
// working; connections established with a removed key stay up, and their next
// long-polling or send request is checked with the keys configured then), the origin
// policy, the trusted proxies and the per-address and per-user limits. next without
// access keys keeps the current ones (the generated or state-file key). An invalid
// next changes nothing.
func (s *Server) Reload(next Config) (ReloadResult, error) {
	var res ReloadResult
	cur := s.live.Load()
	if len(next.AccessKeys) == 0 {
		next.AccessKeys = cur.cfg.AccessKeys
	}
	if err := next.Validate(); err != nil {
		return res, fmt.Errorf("server: reload: %w", err)
	}
	merged := cur.cfg
	mv, cv, nv := reflect.ValueOf(&merged).Elem(), reflect.ValueOf(cur.cfg), reflect.ValueOf(next)
	for i := range cv.NumField() {
		name := cv.Type().Field(i).Name
		old, now := cv.Field(i), nv.Field(i)
		if reflect.DeepEqual(old.Interface(), now.Interface()) {
			continue
		}
		if !reloadable[name] {
			// A setting the command line fills at start (node id, generated key) and
			// the file leaves empty has not changed.
			if !now.IsZero() {
				res.NeedRestart = append(res.NeedRestart, settingName(name))
			}
			continue
		}
		mv.Field(i).Set(now)
		switch name {
		case "ConfigFile":
		case "AccessKeys":
			res.Changed = append(res.Changed, fmt.Sprintf("access-key (%d keys, was %d)", now.Len(), old.Len()))
		default:
			res.Changed = append(res.Changed, settingName(name))
		}
	}
	live, err := newLiveSettings(merged, cur.gate)
	if err != nil {
		return ReloadResult{}, err
	}
	s.setLive(live)
	if s.upstream != nil && !slices.Equal(merged.AccessKeys, cur.cfg.AccessKeys) {
		s.upstream.SetAccessKeys(merged.AccessKeys)
	}
	return res, nil
}

var (
	wordStart    = regexp.MustCompile(`([a-z0-9])([A-Z])`)
	acronymStart = regexp.MustCompile(`([A-Z]+)([A-Z][a-z])`)
)

// settingName turns a Config field name into its setting name (MaxConnectionsPerUser
// -> max-connections-per-user, NodeID -> node-id).
func settingName(field string) string {
	switch field {
	case "AccessKeys":
		return "access-key"
	}
	s := acronymStart.ReplaceAllString(field, "$1-$2")
	return strings.ToLower(wordStart.ReplaceAllString(s, "$1-$2"))
}
