package upstream

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/signalbox-io/signalbox/internal/redact"
)

// Categories and connection events as the Functions extension names them.
const (
	CategoryConnections = "connections"
	CategoryMessages    = "messages"
	EventConnected      = "connected"
	EventDisconnected   = "disconnected"
)

// ParseRules turns bare URL templates (the --upstream flag) into rules whose patterns all
// match everything, keeping their order.
func ParseRules(templates []string) []Rule {
	rules := make([]Rule, 0, len(templates))
	for _, t := range templates {
		rules = append(rules, Rule{URLTemplate: t, HubPattern: "*", CategoryPattern: "*", EventPattern: "*"})
	}
	return rules
}

// pattern is one compiled hub, category or event pattern.
type pattern struct {
	any   bool
	names []string
}

func compilePattern(p string) pattern {
	p = strings.TrimSpace(p)
	if p == "" || p == "*" {
		return pattern{any: true}
	}
	var pt pattern
	for item := range strings.SplitSeq(p, ",") {
		item = strings.TrimSpace(item)
		switch item {
		case "":
			continue
		case "*":
			return pattern{any: true}
		}
		pt.names = append(pt.names, item)
	}
	// A pattern of only commas and spaces names nothing; treating it as "*" would silently
	// widen a rule, so it matches nothing instead.
	return pt
}

func (p pattern) match(name string) bool {
	if p.any {
		return true
	}
	for _, n := range p.names {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// rule is a compiled Rule.
type rule struct {
	template                string
	hub, category, event    pattern
	hasHub, hasCat, hasEvnt bool
}

var placeholderReplacer = strings.NewReplacer("{hub}", "", "{category}", "", "{event}", "")

func compileRule(i int, r Rule) (rule, error) {
	t := strings.TrimSpace(r.URLTemplate)
	if t == "" {
		return rule{}, fmt.Errorf("upstream rule %d: empty URL template", i+1)
	}
	// Any brace left once the known placeholders are removed is a typo or an unsupported
	// reference (such as a Key Vault secret); sending it verbatim would only fail later.
	if rest := placeholderReplacer.Replace(t); strings.ContainsAny(rest, "{}") {
		return rule{}, fmt.Errorf("upstream rule %d: URL template %q has an unknown placeholder (supported: {hub}, {category}, {event})", i+1, redact.URL(t))
	}
	sample := strings.NewReplacer("{hub}", "hub", "{category}", "messages", "{event}", "event").Replace(t)
	u, err := url.Parse(sample)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return rule{}, fmt.Errorf("upstream rule %d: URL template %q is not a valid URL: %w", i+1, redact.URL(t), err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return rule{}, fmt.Errorf("upstream rule %d: URL template %q must be an absolute http:// or https:// URL", i+1, redact.URL(t))
	}
	if u.Host == "" {
		return rule{}, fmt.Errorf("upstream rule %d: URL template %q has no host", i+1, redact.URL(t))
	}
	return rule{
		template: t,
		hub:      compilePattern(r.HubPattern),
		category: compilePattern(r.CategoryPattern),
		event:    compilePattern(r.EventPattern),
		hasHub:   strings.Contains(t, "{hub}"),
		hasCat:   strings.Contains(t, "{category}"),
		hasEvnt:  strings.Contains(t, "{event}"),
	}, nil
}

func (r *rule) match(hub, category, event string) bool {
	return r.hub.match(hub) && r.category.match(category) && r.event.match(event)
}

func (r *rule) url(hub, category, event string) string {
	if !r.hasHub && !r.hasCat && !r.hasEvnt {
		return r.template
	}
	// "." and ".." (an invocation target is client input) would be dot segments, which
	// servers resolve: the signed request would reach the template's parent path.
	if (r.hasHub && isDotSegment(hub)) || (r.hasEvnt && isDotSegment(event)) {
		return ""
	}
	// Escape per position: in the path a value is one segment; in the query it is one
	// value, so '&', '=', '#' and '+' must be escaped too, or a target such as
	// "x&code=evil" would add parameters to the signed request.
	path, query, hasQuery := strings.Cut(r.template, "?")
	path = strings.NewReplacer(
		"{hub}", url.PathEscape(hub),
		"{category}", url.PathEscape(category),
		"{event}", url.PathEscape(event),
	).Replace(path)
	if !hasQuery {
		return path
	}
	return path + "?" + strings.NewReplacer(
		"{hub}", url.QueryEscape(hub),
		"{category}", url.QueryEscape(category),
		"{event}", url.QueryEscape(event),
	).Replace(query)
}

func isDotSegment(v string) bool { return v == "." || v == ".." }

// resolve returns the URL of the first rule that matches, or "" when none does (or
// when it does but the event cannot be placed in its URL).
func resolve(rules []rule, hub, category, event string) (target, part string) {
	for i := range rules {
		if rules[i].match(hub, category, event) {
			return rules[i].url(hub, category, event), partKey(i, hub, category, event)
		}
	}
	return "", ""
}

// partKey names the isolation unit of a call: the rule it goes through, its hub and its
// event. Calls of one unit share Options.MaxInFlightPerEvent slots.
func partKey(rule int, hub, category, event string) string {
	return strconv.Itoa(rule) + "\x00" + hub + "\x00" + category + "\x00" + strings.ToLower(event)
}

// redactURL drops everything that may hold a secret (query such as ?code=, user info,
// fragment) so the URL can be logged.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.IndexAny(raw, "?#"); i >= 0 {
			return raw[:i]
		}
		return raw
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment, u.User = "", false, "", "", nil
	return u.String()
}
