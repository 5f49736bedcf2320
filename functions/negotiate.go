package functions

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/signalbox-io/signalbox/management"
)

// DefaultUserIDHeader is where App Service authentication puts the signed-in user's id.
const DefaultUserIDHeader = "x-ms-client-principal-id"

// NegotiateOptions configures NegotiateHandler.
type NegotiateOptions struct {
	// UserIDHeader names the request header holding the user id; default
	// DefaultUserIDHeader. Only trust it behind a front end that sets it (App Service
	// authentication strips client-supplied values).
	UserIDHeader string
	// UserID, when set, computes the user id instead of UserIDHeader ("" = anonymous).
	UserID func(r *http.Request) string
	// IDTokenHeader names a header holding a bare JWT (e.g. X-MS-TOKEN-AAD-ID-TOKEN) whose
	// ClaimTypeList claims are copied into the token, unvalidated (see ConnectionInfoOptions).
	IDTokenHeader string
	ClaimTypeList []string
	// Lifetime of issued tokens; default 1 h.
	Lifetime time.Duration
	// Configure, when set, adjusts the options of each negotiation from its request after
	// the fields above were applied: add claims (C#'s SignalRConnectionDetail.Claims), set
	// the user id, or choose the endpoint (Endpoint, SelectEndpoint). An error refuses the
	// negotiation with 403 and the error's text.
	Configure func(r *http.Request, opts *ConnectionInfoOptions) error
	// AllowedOrigins enables CORS for browser clients on other origins: exact origins, or
	// "*" for any. The origin is echoed with Access-Control-Allow-Credentials, which the
	// SignalR JavaScript client needs (it negotiates withCredentials). Empty: no CORS
	// headers, same-origin callers only.
	AllowedOrigins []string
	// Logger receives failures; default the Service's logger.
	Logger *slog.Logger
}

// NegotiateHandler serves a negotiate function for hub: POST or GET answers 200 with
// application/json {"url":…,"accessToken":…} (only those two members, which is all the
// client SDK reads); OPTIONS answers CORS preflights. Errors: 400 for an unreadable idToken,
// 503 when no endpoint is online, 500 otherwise (details are logged, not returned). Mount it
// where the client's base URL + "/negotiate" points, e.g. /api/negotiate.
func (s *Service) NegotiateHandler(hub string, opts *NegotiateOptions) http.Handler {
	var o NegotiateOptions
	if opts != nil {
		o = *opts
	}
	if o.UserIDHeader == "" {
		o.UserIDHeader = DefaultUserIDHeader
	}
	if o.Logger == nil {
		o.Logger = s.log
	}
	return &negotiateHandler{s: s, hub: hub, o: o}
}

type negotiateHandler struct {
	s   *Service
	hub string
	o   NegotiateOptions
}

func (h *negotiateHandler) allowOrigin(origin string) bool {
	for _, o := range h.o.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

func (h *negotiateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if origin := r.Header.Get("Origin"); origin != "" && h.allowOrigin(origin) {
		hd := w.Header()
		hd.Add("Vary", "Origin")
		hd.Set("Access-Control-Allow-Origin", origin)
		hd.Set("Access-Control-Allow-Credentials", "true")
		if r.Method == http.MethodOptions {
			hd.Set("Access-Control-Allow-Methods", "POST, GET, OPTIONS")
			if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
				hd.Set("Access-Control-Allow-Headers", req)
			}
			hd.Set("Access-Control-Max-Age", "600")
		}
	}
	switch r.Method {
	case http.MethodPost, http.MethodGet:
	case http.MethodOptions:
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		w.Header().Set("Allow", "POST, GET, OPTIONS")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	opts := &ConnectionInfoOptions{ClaimTypeList: h.o.ClaimTypeList, Lifetime: h.o.Lifetime}
	if h.o.UserID != nil {
		opts.UserID = h.o.UserID(r)
	} else {
		opts.UserID = r.Header.Get(h.o.UserIDHeader)
	}
	if h.o.IDTokenHeader != "" {
		opts.IDToken = r.Header.Get(h.o.IDTokenHeader)
	}
	if opts.IDToken != "" && len(opts.ClaimTypeList) > 0 {
		if _, err := DecodeIDToken(opts.IDToken); err != nil {
			http.Error(w, "invalid id token", http.StatusBadRequest)
			return
		}
	}
	if h.o.Configure != nil {
		if err := h.o.Configure(r, opts); err != nil {
			h.o.Logger.Info("signalr negotiate refused", "hub", h.hub, "error", err)
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
	}
	info, err := h.s.ConnectionInfo(r.Context(), h.hub, opts)
	if err != nil {
		h.o.Logger.Warn("signalr negotiate failed", "hub", h.hub, "error", err)
		switch {
		case errors.Is(err, management.ErrNotConnected):
			http.Error(w, "Azure SignalR Service is not connected yet, please try again later.", http.StatusServiceUnavailable)
		case errors.Is(err, ErrAccessTokenTooLong):
			http.Error(w, ErrAccessTokenTooLong.Error(), http.StatusInternalServerError)
		default:
			http.Error(w, "negotiate failed", http.StatusInternalServerError)
		}
		return
	}
	body, err := json.Marshal(info)
	if err != nil { // cannot happen for two strings; kept so a change here cannot go unnoticed
		http.Error(w, "negotiate failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(body)
}
