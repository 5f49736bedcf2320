package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/signalbox-io/signalbox/functions"
	"github.com/signalbox-io/signalbox/management"
)

// hubName is the hub the trigger serves and the outputs address.
const hubName = "chat"

// FailText is what fail() returns as its error; clients must see it.
const FailText = "fail was called"

// BannedText is the error of the connected handler for users whose id starts with
// "banned": the trigger answers 403 with it.
const BannedText = "user is banned"

// event is one trigger call as the tests see it.
type event struct {
	Seq          int               `json:"seq"`
	Time         time.Time         `json:"time"`
	Category     string            `json:"category"`
	Event        string            `json:"event"`
	Hub          string            `json:"hub"`
	ConnectionID string            `json:"connectionId"`
	UserID       string            `json:"userId"`
	Error        string            `json:"error"`
	InvocationID string            `json:"invocationId"`
	Arguments    []json.RawMessage `json:"arguments"`
	Query        map[string]string `json:"query"`
	Claims       map[string]string `json:"claims"`
}

// events records trigger calls in arrival order.
type events struct {
	mu   sync.Mutex
	list []event
}

func (e *events) add(ic *functions.InvocationContext) {
	ev := event{
		Time: time.Now(), Category: ic.Category, Event: ic.Event, Hub: ic.Hub,
		ConnectionID: ic.ConnectionID, UserID: ic.UserID, Error: ic.Error,
		InvocationID: ic.InvocationID, Query: ic.Query, Claims: ic.Claims,
		Arguments: []json.RawMessage{},
	}
	for i, a := range ic.Arguments {
		b, err := a.JSON()
		if err != nil {
			b, _ = json.Marshal(fmt.Sprintf("<argument %d: %v>", i, err))
		}
		ev.Arguments = append(ev.Arguments, b)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	ev.Seq = len(e.list)
	e.list = append(e.list, ev)
}

func (e *events) snapshot(connID string) []event {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := []event{}
	for _, ev := range e.list {
		if connID == "" || ev.ConnectionID == connID {
			out = append(out, ev)
		}
	}
	return out
}

// app holds the bindings and what the trigger saw.
type app struct {
	svc *functions.Service
	log *slog.Logger
	ev  events
}

func newApp(svc *functions.Service, log *slog.Logger) (http.Handler, error) {
	a := &app{svc: svc, log: log}
	trigger, err := svc.NewTrigger(&functions.TriggerOptions{Logger: log})
	if err != nil {
		return nil, err
	}
	trigger.HandleConnected(hubName, func(ic *functions.InvocationContext) error {
		a.ev.add(ic)
		if strings.HasPrefix(ic.UserID, "banned") {
			return errors.New(BannedText)
		}
		return nil
	})
	trigger.HandleDisconnected(hubName, func(ic *functions.InvocationContext) {
		a.ev.add(ic)
	})
	trigger.HandleMessage(hubName, "echo", func(ic *functions.InvocationContext, x json.RawMessage) json.RawMessage {
		a.ev.add(ic)
		return x
	})
	trigger.HandleMessage(hubName, "add", func(ic *functions.InvocationContext, x, y int) int {
		a.ev.add(ic)
		return x + y
	}, functions.ParameterNames("a", "b"))
	trigger.HandleMessage(hubName, "fail", func(ic *functions.InvocationContext) error {
		a.ev.add(ic)
		return errors.New(FailText)
	})

	mux := http.NewServeMux()
	mux.Handle(functions.TriggerPath, trigger)
	mux.Handle("/api/negotiate", svc.NegotiateHandler(hubName, &functions.NegotiateOptions{
		UserID: func(r *http.Request) string {
			if u := r.URL.Query().Get("userId"); u != "" {
				return u
			}
			return r.Header.Get(functions.DefaultUserIDHeader)
		},
		// App Service authentication's header; its claims below are copied (unvalidated, as
		// the extension does) into the client token and come back in the trigger's Claims.
		IDTokenHeader: "X-MS-TOKEN-AAD-ID-TOKEN",
		ClaimTypeList: []string{"name", "email", "aud"},
		Logger:        log,
	}))
	mux.HandleFunc("POST /api/negotiation", a.negotiation)
	mux.HandleFunc("GET /api/endpoints", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, svc.Endpoints())
	})
	mux.HandleFunc("POST /api/send", a.send)
	mux.HandleFunc("POST /api/group", a.group)
	mux.HandleFunc("POST /api/output", a.output)
	mux.HandleFunc("GET /api/events", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.ev.snapshot(r.URL.Query().Get("connectionId")))
	})
	mux.HandleFunc("GET /api/ready", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	})
	return mux, nil
}

func (a *app) negotiation(w http.ResponseWriter, r *http.Request) {
	n, err := a.svc.Negotiation(r.Context(), hubName, &functions.ConnectionInfoOptions{UserID: r.URL.Query().Get("userId")})
	if err != nil {
		a.fail(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, n)
}

// sendRequest names the recipients by kind, so a test says what it means.
type sendRequest struct {
	Kind         string            `json:"kind"`
	Target       string            `json:"target"`
	Args         []json.RawMessage `json:"args"`
	UserID       string            `json:"userId"`
	GroupName    string            `json:"groupName"`
	ConnectionID string            `json:"connectionId"`
}

func (a *app) send(w http.ResponseWriter, r *http.Request) {
	var req sendRequest
	if !a.decode(w, r, &req) {
		return
	}
	m := functions.Message{Target: req.Target, Arguments: make([]any, len(req.Args))}
	for i, arg := range req.Args {
		m.Arguments[i] = arg
	}
	switch req.Kind {
	case "all":
	case "user":
		m.UserID = req.UserID
	case "group":
		m.GroupName = req.GroupName
	case "connection":
		m.ConnectionID = req.ConnectionID
	default:
		a.fail(w, http.StatusBadRequest, fmt.Errorf("unknown kind %q", req.Kind))
		return
	}
	if err := m.Validate(); err != nil {
		a.fail(w, http.StatusBadRequest, err)
		return
	}
	a.result(w, a.svc.Send(r.Context(), hubName, m))
}

func (a *app) group(w http.ResponseWriter, r *http.Request) {
	var act functions.GroupAction
	if !a.decode(w, r, &act) {
		return
	}
	if err := act.Validate(); err != nil {
		a.fail(w, http.StatusBadRequest, err)
		return
	}
	a.result(w, a.svc.Apply(r.Context(), hubName, act))
}

// endpointReport is one endpoint in the answer of /api/send and /api/group.
type endpointReport struct {
	Name         string `json:"name"`
	EndpointType string `json:"endpointType"`
	Endpoint     string `json:"endpoint"`
	Error        string `json:"error,omitempty"`
}

// result answers a send or group action: 204 when every endpoint accepted it; 200 with
// {"delivered":[…],"failed":[…]} when some did (a Functions host must not retry that: the
// endpoints that accepted would apply it twice); 422 when its endpoints name none
// configured; 502 when none accepted it.
func (a *app) result(w http.ResponseWriter, err error) {
	var de *management.DeliveryError
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.As(err, &de) && de.Partial():
		rep := struct {
			Delivered []endpointReport `json:"delivered"`
			Failed    []endpointReport `json:"failed"`
		}{Delivered: []endpointReport{}, Failed: []endpointReport{}}
		for _, ep := range de.Delivered {
			rep.Delivered = append(rep.Delivered, endpointReport{Name: ep.Name, EndpointType: ep.Type.String(), Endpoint: ep.Endpoint})
		}
		for _, f := range de.Failed {
			rep.Failed = append(rep.Failed, endpointReport{Name: f.Endpoint.Name, EndpointType: f.Endpoint.Type.String(), Endpoint: f.Endpoint.Endpoint, Error: f.Err.Error()})
		}
		a.log.Warn("delivered, but not on every endpoint", "error", err)
		writeJSON(w, http.StatusOK, rep)
	case errors.Is(err, functions.ErrNoEndpoint):
		a.fail(w, http.StatusUnprocessableEntity, err)
	default:
		a.fail(w, http.StatusBadGateway, err)
	}
}

// output takes the JSON a non-Go worker would return for a signalR output binding.
func (a *app) output(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		a.fail(w, http.StatusBadRequest, err)
		return
	}
	items, err := functions.ParseOutput(body)
	if err != nil {
		a.fail(w, http.StatusBadRequest, err)
		return
	}
	// Validation errors are the caller's (400); what the service answers is a 502.
	for _, it := range items {
		var verr error
		switch v := it.(type) {
		case *functions.Message:
			verr = v.Validate()
		case *functions.GroupAction:
			verr = v.Validate()
		}
		if verr != nil {
			a.fail(w, http.StatusBadRequest, verr)
			return
		}
	}
	// Output succeeds for items delivered to some of their endpoints (see result).
	a.result(w, a.svc.Output(r.Context(), hubName, items...))
}

func (a *app) decode(w http.ResponseWriter, r *http.Request, dst any) bool {
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(dst); err != nil {
		a.fail(w, http.StatusBadRequest, fmt.Errorf("request body: %w", err))
		return false
	}
	return true
}

func (a *app) fail(w http.ResponseWriter, status int, err error) {
	a.log.Warn("request failed", "status", status, "error", err)
	http.Error(w, err.Error(), status)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
