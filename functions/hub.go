package functions

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// HubOptions configures RegisterHub.
type HubOptions struct {
	// Name is the hub name; default the type's name, lower-cased (type Chat -> "chat").
	Name string
	// Ignore names exported methods (case-insensitive) that are not events.
	Ignore []string
	// ParameterNames optionally names the arguments of a method, keyed by method name
	// (case-insensitive); see the ParameterNames handler option.
	ParameterNames map[string][]string
}

// RegisterHub registers a class-based hub, the Go form of the extension's ServerlessHub:
// every exported method of hub becomes a handler. OnConnected and OnDisconnected
// (case-insensitive) handle the connection events; any other method name is a message event
// (clients invoke it by name, case-insensitively). Methods take the shapes Register accepts:
// an optional context.Context, an optional *InvocationContext, then one typed parameter per
// argument; results (), (error), (R) or (R, error).
//
// Pass a pointer to get pointer-receiver methods. Methods promoted from embedded fields are
// not events (so a hub can embed helpers such as *Service); list other non-event methods in
// HubOptions.Ignore. Either every method is registered or, on error, none.
func RegisterHub(t *Trigger, hub any, opts *HubOptions) error {
	if t == nil {
		return errors.New("functions: RegisterHub: nil trigger")
	}
	if hub == nil {
		return errors.New("functions: RegisterHub: nil hub")
	}
	var o HubOptions
	if opts != nil {
		o = *opts
	}
	v := reflect.ValueOf(hub)
	typ := v.Type()
	name := o.Name
	if name == "" {
		base := typ
		for base.Kind() == reflect.Pointer {
			base = base.Elem()
		}
		if base.Name() == "" {
			return fmt.Errorf("functions: RegisterHub: %s has no type name; set HubOptions.Name", typ)
		}
		name = base.Name()
	}
	name = strings.ToLower(name)
	ignore := map[string]bool{}
	for _, n := range o.Ignore {
		ignore[strings.ToLower(n)] = true
	}
	promoted := promotedMethods(typ)
	params := map[string][]string{}
	for k, p := range o.ParameterNames {
		params[strings.ToLower(k)] = p
	}

	var routes []*route
	seen := map[routeKey]string{}
	for i := 0; i < typ.NumMethod(); i++ {
		m := typ.Method(i)
		lower := strings.ToLower(m.Name)
		if !m.IsExported() || ignore[lower] || promoted[m.Name] {
			continue
		}
		key := routeKey{hub: name, category: CategoryMessages, event: lower}
		switch lower {
		case "onconnected":
			key.category, key.event = CategoryConnections, EventConnected
		case "ondisconnected":
			key.category, key.event = CategoryConnections, EventDisconnected
		}
		if prev, dup := seen[key]; dup {
			return fmt.Errorf("functions: RegisterHub %s: methods %s and %s are the same event", name, prev, m.Name)
		}
		seen[key] = m.Name
		var cfg handlerConfig
		if p, ok := params[lower]; ok {
			ParameterNames(p...)(&cfg)
		}
		c, err := compile(v.Method(i).Interface(), key.category == CategoryConnections, cfg)
		if err != nil {
			return fmt.Errorf("functions: RegisterHub %s: method %s: %w", name, m.Name, err)
		}
		routes = append(routes, &route{routeKey: key, c: c})
	}
	if len(routes) == 0 {
		return fmt.Errorf("functions: RegisterHub %s: %s has no exported methods", name, typ)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range routes {
		if _, dup := t.handlers[r.routeKey]; dup {
			return fmt.Errorf("functions: Duplicated key parameter hub: %s, category: %s, event: %s", r.hub, r.category, r.event)
		}
	}
	for _, r := range routes {
		t.handlers[r.routeKey] = r
	}
	return nil
}

// promotedMethods names the methods typ gets from embedded fields.
func promotedMethods(typ reflect.Type) map[string]bool {
	out := map[string]bool{}
	st := typ
	for st.Kind() == reflect.Pointer {
		st = st.Elem()
	}
	if st.Kind() != reflect.Struct {
		return out
	}
	for i := 0; i < st.NumField(); i++ {
		f := st.Field(i)
		if !f.Anonymous {
			continue
		}
		for _, ft := range []reflect.Type{f.Type, reflect.PointerTo(f.Type)} {
			for j := 0; j < ft.NumMethod(); j++ {
				out[ft.Method(j).Name] = true
			}
		}
	}
	return out
}
