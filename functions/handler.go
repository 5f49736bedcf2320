package functions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/signalbox-io/signalbox/protocol"
)

// MessageFunc is the untyped form of a message handler: it reads ic.Arguments itself and
// returns the invocation's result (nil for none).
type MessageFunc func(ctx context.Context, ic *InvocationContext) (any, error)

// ConnectionFunc is the form of a connected/disconnected handler. An error from a connected
// handler makes the trigger answer 403 with the error's text. Azure SignalR Service does
// not wait for the connected call, so there the client stays connected and can invoke;
// Signalbox closes the connection when started with --upstream-reject-connections (see the
// package doc). Errors of disconnected handlers are logged and otherwise ignored.
type ConnectionFunc func(ctx context.Context, ic *InvocationContext) error

// HandlerOption configures one registration.
type HandlerOption func(*handlerConfig)

type handlerConfig struct {
	paramNames []string
}

// ParameterNames names the invocation's arguments in order, like parameterNames in
// function.json: an invocation must then carry exactly len(names) arguments ("The function
// accept N arguments but message provided M." otherwise), and InvocationContext.Parameter
// finds an argument by name. With a typed handler the names must match its argument count.
func ParameterNames(names ...string) HandlerOption {
	return func(c *handlerConfig) { c.paramNames = append([]string(nil), names...) }
}

// ArgumentCountError is the error of an invocation whose argument count does not fit the
// handler; its text is the extension's, and it is what the invoking client receives.
type ArgumentCountError struct {
	Want, Got int
	// AtLeast is set for variadic handlers, where Want is a minimum.
	AtLeast bool
}

func (e *ArgumentCountError) Error() string {
	if e.AtLeast {
		return fmt.Sprintf("The function accept at least %d arguments but message provided %d.", e.Want, e.Got)
	}
	return fmt.Sprintf("The function accept %d arguments but message provided %d.", e.Want, e.Got)
}

// ArgumentBindingError is the error of an invocation argument that cannot be converted to
// its parameter's type. The invoking client gets the extension's text, "Exception binding
// parameter 'NAME'" (NAME from ParameterNames, else arg0, arg1, ... by position); the Go
// detail (Err) is only logged.
type ArgumentBindingError struct {
	Index int    // position in the invocation's arguments
	Name  string // parameter name
	Type  reflect.Type
	Err   error
}

// ClientText is what the invoking client receives.
func (e *ArgumentBindingError) ClientText() string {
	return fmt.Sprintf("Exception binding parameter '%s'", e.Name)
}

func (e *ArgumentBindingError) Error() string {
	return fmt.Sprintf("%s: cannot convert argument %d to %s: %v", e.ClientText(), e.Index, e.Type, e.Err)
}

// Unwrap returns the conversion error.
func (e *ArgumentBindingError) Unwrap() error { return e.Err }

var (
	ctxType   = reflect.TypeFor[context.Context]()
	icType    = reflect.TypeFor[*InvocationContext]()
	errorType = reflect.TypeFor[error]()
)

// compiled is a handler reduced to one calling convention.
type compiled struct {
	call   MessageFunc
	params map[string]int // lower-cased parameter name -> argument index
	names  []string       // ParameterNames as given, for error texts
	// fixed is the exact argument count required, -1 for any; min applies to variadic handlers.
	fixed, min int
}

// compile turns a handler of any supported shape into a MessageFunc. Supported shapes:
// parameters [context.Context] [*InvocationContext] T1 … Tn (the last may be variadic) and
// results (), (error), (R) or (R, error). Connection handlers take no typed parameters.
func compile(fn any, connection bool, cfg handlerConfig) (*compiled, error) {
	c := &compiled{fixed: -1, names: cfg.paramNames}
	if len(cfg.paramNames) > 0 {
		c.params = make(map[string]int, len(cfg.paramNames))
		for i, n := range cfg.paramNames {
			k := strings.ToLower(n)
			if _, dup := c.params[k]; dup || n == "" {
				return nil, errors.New("Elements in ParameterNames should be ignore case unique.")
			}
			c.params[k] = i
		}
		c.fixed = len(cfg.paramNames)
	}
	switch f := fn.(type) {
	case nil:
		return nil, errors.New("handler is nil")
	case MessageFunc:
		c.call = f
		return c, nil
	case func(context.Context, *InvocationContext) (any, error):
		c.call = f
		return c, nil
	case ConnectionFunc:
		c.call = func(ctx context.Context, ic *InvocationContext) (any, error) { return nil, f(ctx, ic) }
		return c, nil
	case func(context.Context, *InvocationContext) error:
		c.call = func(ctx context.Context, ic *InvocationContext) (any, error) { return nil, f(ctx, ic) }
		return c, nil
	}
	return compileReflect(reflect.ValueOf(fn), connection, c)
}

func compileReflect(fv reflect.Value, connection bool, c *compiled) (*compiled, error) {
	ft := fv.Type()
	if ft.Kind() != reflect.Func || fv.IsNil() {
		return nil, fmt.Errorf("handler must be a func, not %s", ft)
	}
	in := 0
	wantCtx := in < ft.NumIn() && ft.In(in) == ctxType
	if wantCtx {
		in++
	}
	wantIC := in < ft.NumIn() && ft.In(in) == icType
	if wantIC {
		in++
	}
	typed := make([]reflect.Type, 0, ft.NumIn()-in)
	for i := in; i < ft.NumIn(); i++ {
		t := ft.In(i)
		if t == ctxType || t == icType {
			return nil, fmt.Errorf("handler %s: context.Context and *InvocationContext must come first, in that order", ft)
		}
		switch t.Kind() {
		case reflect.Chan, reflect.Func, reflect.UnsafePointer:
			return nil, fmt.Errorf("handler %s: parameter %d of type %s cannot be decoded from an argument", ft, i, t)
		}
		typed = append(typed, t)
	}
	if connection && len(typed) > 0 {
		return nil, fmt.Errorf("handler %s: connection events carry no arguments", ft)
	}
	hasResult, hasErr := false, false
	switch ft.NumOut() {
	case 0:
	case 1:
		if ft.Out(0) == errorType {
			hasErr = true
		} else {
			hasResult = true
		}
	case 2:
		if ft.Out(1) != errorType || ft.Out(0) == errorType {
			return nil, fmt.Errorf("handler %s: two results must be (T, error)", ft)
		}
		hasResult, hasErr = true, true
	default:
		return nil, fmt.Errorf("handler %s: at most two results, (T, error)", ft)
	}
	variadic := ft.IsVariadic()
	if len(typed) > 0 {
		if c.params != nil && !variadic && len(c.params) != len(typed) {
			return nil, fmt.Errorf("handler %s: %d parameter names for %d typed parameters", ft, len(c.params), len(typed))
		}
		if c.params != nil && variadic && len(c.params) < len(typed)-1 {
			// Every invocation would fail the count check: exactly len(names) arguments, but
			// at least len(typed)-1.
			return nil, fmt.Errorf("handler %s: %d parameter names for at least %d typed parameters", ft, len(c.params), len(typed)-1)
		}
		if variadic {
			c.min = len(typed) - 1
		} else if c.fixed < 0 {
			c.fixed = len(typed)
		}
	}
	c.call = func(ctx context.Context, ic *InvocationContext) (any, error) {
		args := make([]reflect.Value, 0, ft.NumIn()+len(ic.Arguments))
		if wantCtx {
			args = append(args, reflect.ValueOf(&ctx).Elem())
		}
		if wantIC {
			args = append(args, reflect.ValueOf(ic))
		}
		for i, t := range typed {
			if variadic && i == len(typed)-1 {
				et := t.Elem()
				for j := i; j < len(ic.Arguments); j++ {
					v, err := decodeArg(ic.Arguments[j], et, j, c.names)
					if err != nil {
						return nil, err
					}
					args = append(args, v)
				}
				break
			}
			v, err := decodeArg(ic.Arguments[i], t, i, c.names)
			if err != nil {
				return nil, err
			}
			args = append(args, v)
		}
		out := fv.Call(args)
		var result any
		var err error
		if hasResult {
			result = out[0].Interface()
		}
		if hasErr {
			if e := out[len(out)-1]; !e.IsNil() {
				err = e.Interface().(error)
			}
		}
		return result, err
	}
	return c, nil
}

// decodeArg converts argument i into a new value of type t; names are the parameter names
// given with ParameterNames, if any.
func decodeArg(v protocol.Value, t reflect.Type, i int, names []string) (reflect.Value, error) {
	p := reflect.New(t)
	fail := func(err error) (reflect.Value, error) {
		name := fmt.Sprintf("arg%d", i)
		if i < len(names) {
			name = names[i]
		}
		return reflect.Value{}, &ArgumentBindingError{Index: i, Name: name, Type: t, Err: err}
	}
	switch t {
	case reflect.TypeFor[protocol.Value]():
		p.Elem().Set(reflect.ValueOf(v))
		return p.Elem(), nil
	case reflect.TypeFor[json.RawMessage]():
		b, err := v.JSON()
		if err != nil {
			return fail(err)
		}
		p.Elem().SetBytes(append(json.RawMessage(nil), b...))
		return p.Elem(), nil
	}
	if v.IsZero() {
		return p.Elem(), nil
	}
	if err := v.Decode(p.Interface()); err != nil {
		return fail(err)
	}
	return p.Elem(), nil
}

// checkArgs applies the argument-count rule before the handler runs.
func (c *compiled) checkArgs(n int) error {
	if c.fixed >= 0 && n != c.fixed {
		return &ArgumentCountError{Want: c.fixed, Got: n}
	}
	if n < c.min {
		return &ArgumentCountError{Want: c.min, Got: n, AtLeast: true}
	}
	return nil
}
