package functions

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
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
// not events (so a hub can embed helpers such as *Service), unless the hub declares a method
// of the same name itself; list other non-event methods in
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
	name, err := hubName(hub, opts)
	if err != nil {
		return err
	}
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

// hubName is HubOptions.Name or the hub's type name, lower-cased.
func hubName(hub any, opts *HubOptions) (string, error) {
	if hub == nil {
		return "", errors.New("functions: RegisterHub: nil hub")
	}
	if opts != nil && opts.Name != "" {
		return strings.ToLower(opts.Name), nil
	}
	base := reflect.TypeOf(hub)
	for base.Kind() == reflect.Pointer {
		base = base.Elem()
	}
	if base.Name() == "" {
		return "", fmt.Errorf("functions: RegisterHub: %s has no type name; set HubOptions.Name", reflect.TypeOf(hub))
	}
	return strings.ToLower(base.Name()), nil
}

// promotedMethods names the methods typ gets from embedded fields, leaving out the ones typ
// declares itself (which shadow the embedded ones and are events).
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
				if name := ft.Method(j).Name; !declares(st, name) {
					out[name] = true
				}
			}
		}
	}
	return out
}

// declares reports whether the named struct type st declares method name itself, with a
// value or a pointer receiver. reflect shows promoted and declared methods alike; only the
// promoted ones (and pointer forms of value methods) are compiler-generated wrappers, whose
// code has no source position.
func declares(st reflect.Type, name string) bool {
	for _, t := range []reflect.Type{st, reflect.PointerTo(st)} {
		m, ok := t.MethodByName(name)
		if !ok {
			continue
		}
		if f := runtime.FuncForPC(m.Func.Pointer()); f != nil {
			if file, _ := f.FileLine(f.Entry()); file != "<autogenerated>" {
				return true
			}
		}
	}
	return false
}
