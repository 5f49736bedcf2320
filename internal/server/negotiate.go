package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/internal/rawquery"
	"github.com/signalbox-io/signalbox/internal/transport"
)

// maxNegotiateVersion is the highest negotiate protocol version the server speaks.
const maxNegotiateVersion = 1

// hubPattern is the Azure hub name rule.
var hubPattern = regexp.MustCompile("^[A-Za-z][A-Za-z0-9_`,.\\[\\]]{0,127}$")

// ValidHubName reports whether name is a hub name the service accepts.
func ValidHubName(name string) bool { return hubPattern.MatchString(name) }

type transportInfo struct {
	Transport       string   `json:"transport"`
	TransferFormats []string `json:"transferFormats"`
}

// availableTransports is offered to every client: Azure does not let the server
// restrict transports.
var availableTransports = []transportInfo{
	{"WebSockets", []string{"Text", "Binary"}},
	{"ServerSentEvents", []string{"Text"}},
	{"LongPolling", []string{"Text", "Binary"}},
}

// negotiateResponse is the shape of a negotiate response (appendNegotiateResponse
// writes it).
type negotiateResponse struct {
	NegotiateVersion    int             `json:"negotiateVersion"`
	ConnectionID        string          `json:"connectionId"`
	ConnectionToken     string          `json:"connectionToken,omitempty"`
	AvailableTransports []transportInfo `json:"availableTransports"`
	// UseStatefulReconnect is only ever true, and only when the client asked: the
	// JavaScript client fails a negotiation that claims it unasked.
	UseStatefulReconnect bool `json:"useStatefulReconnect,omitempty"`
}

// queryValues returns the values of the query key name, matched case-insensitively as
// ASP.NET Core matches query keys.
func queryValues(raw, name string) []string {
	var out []string
	rawquery.Each(raw, name, true, func(v string) { out = append(out, v) })
	return out
}

// hubFromQuery returns the lower-cased hub of the request, or an HTTP status and
// message when it is missing, repeated or invalid.
func (s *Server) hubFromQuery(rawQuery string) (string, int, string) {
	hubs := queryValues(rawQuery, "hub")
	switch {
	case len(hubs) == 1 && hubs[0] == TraceHub && s.tracing():
		return TraceHub, 0, ""
	case len(hubs) == 0 || hubs[0] == "":
		return "", http.StatusBadRequest, "The 'hub' query parameter is required."
	case len(hubs) > 1:
		return "", http.StatusBadRequest, "The 'hub' query parameter must be given only once."
	case !hubPattern.MatchString(hubs[0]):
		return "", http.StatusBadRequest, "Invalid hub name."
	}
	return strings.ToLower(hubs[0]), 0, ""
}

// tokenTooLong answers a token longer than max-token-size (limit characters).
func tokenTooLong(w http.ResponseWriter, limit int) {
	textError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("The access token is longer than %d characters.", limit))
}

// authorize validates the request's client token for hub and writes the error
// response when it fails.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, hubName string) (*auth.Principal, bool) {
	endpoint := "connect"
	if strings.HasPrefix(r.URL.Path, "/client/negotiate") {
		endpoint = "negotiate"
	}
	tok := auth.TokenFromRequest(r)
	limit := s.limits().MaxTokenSize
	if len(tok) > limit {
		s.authFailed(r, endpoint, fmt.Errorf("%d characters, more than %d: %w", len(tok), limit, auth.ErrTokenTooLong))
		tokenTooLong(w, limit)
		return nil, false
	}
	if tok == "" {
		s.authFailed(r, endpoint, auth.ErrNoToken)
		w.Header().Set("WWW-Authenticate", "Bearer")
		textError(w, http.StatusUnauthorized, "An access token is required.")
		return nil, false
	}
	p, err := s.gateNow().ValidateClient(tok, hubName)
	if err != nil {
		s.authFailed(r, endpoint, err)
		if errors.Is(err, auth.ErrTokenTooLong) {
			tokenTooLong(w, limit)
			return nil, false
		}
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		// The reason (expired, audience, signature) helps users and reveals no secret.
		textError(w, http.StatusUnauthorized, "Unauthorized: "+err.Error())
		return nil, false
	}
	if p == nil {
		p = &auth.Principal{}
	}
	return p, true
}

// allowNegotiate applies the negotiate rate of the client's address; over it, it
// answers 429 and returns false.
func (s *Server) allowNegotiate(w http.ResponseWriter, r *http.Request) bool {
	if s.adm.allowNegotiate(s.clientAddr(r)) {
		return true
	}
	w.Header().Set("Retry-After", "1")
	textError(w, http.StatusTooManyRequests, "Too many negotiate requests from this address; try again later.")
	return false
}

// negotiate answers POST /client/negotiate?hub=...: it creates a connection and tells
// the client its ids and the transports.
func (s *Server) negotiate(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		textError(w, http.StatusMethodNotAllowed, "Method Not Allowed")
		return
	}
	if !s.allowNegotiate(w, r) {
		return
	}
	q := r.URL.RawQuery
	hubName, status, msg := s.hubFromQuery(q)
	if status != 0 {
		textError(w, status, msg)
		return
	}
	p, ok := s.authorize(w, r, hubName)
	if !ok {
		return
	}

	version := 0
	var negErr string
	if vs := queryValues(q, "negotiateVersion"); len(vs) > 0 {
		v, err := strconv.Atoi(vs[0])
		switch {
		case err != nil:
			negErr = "The client requested a non-integer protocol version."
		case v < 0:
			negErr = "The client requested version '" + vs[0] + "', but the server does not support this version."
		case v > maxNegotiateVersion:
			version = maxNegotiateVersion
		default:
			version = v
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache, no-store")
	if negErr != "" {
		_ = json.NewEncoder(w).Encode(map[string]string{"error": negErr})
		return
	}

	c, status, msg := s.newConn(hubName, p, auth.TokenFromRequest(r), s.clientAddr(r), version)
	if c == nil {
		w.Header().Del("Content-Type")
		textError(w, status, msg)
		return
	}
	token := ""
	if version >= 1 {
		token = c.token
	}
	sr := s.statefulReconnectFor(r, c)
	if sr {
		c.srAsked.Store(true)
	}
	_, _ = w.Write(appendNegotiateResponse(make([]byte, 0, 256), version, c.id, token, c.settings().transports, sr))
}

// offeredJSON is the availableTransports array of a negotiate response for each set of
// transports a token may allow (tokenSettings.transports, 0 = all), encoded once.
var offeredJSON = func() (out [8][]byte) {
	for i := range out {
		b, err := json.Marshal(tokenSettings{transports: transport.Kind(i)}.offered())
		if err != nil {
			panic(err)
		}
		out[i] = b
	}
	return out
}()

// appendNegotiateResponse appends the negotiate response of a connection, the bytes
// json.Encoder writes for negotiateResponse (a test compares them), without encoding
// the transports, which are the same for every connection, by reflection each time.
// token "" is left out, as is useStatefulReconnect when false.
func appendNegotiateResponse(b []byte, version int, id, token string, transports transport.Kind, sr bool) []byte {
	b = append(b, `{"negotiateVersion":`...)
	b = strconv.AppendInt(b, int64(version), 10)
	b = append(b, `,"connectionId":`...)
	b = appendJSONString(b, id)
	if token != "" {
		b = append(b, `,"connectionToken":`...)
		b = appendJSONString(b, token)
	}
	b = append(b, `,"availableTransports":`...)
	b = append(b, offeredJSON[transports&7]...)
	if sr {
		b = append(b, `,"useStatefulReconnect":true`...)
	}
	return append(b, "}\n"...)
}

// appendJSONString appends s as encoding/json writes a string: as it is when it holds
// nothing that encoding/json escapes (connection ids and tokens are base64url).
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
