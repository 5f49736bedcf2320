package restapi

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/signalbox-io/signalbox/internal/hub"
)

func (h *handler) payload(w http.ResponseWriter, r *http.Request) (*hub.Payload, error) {
	return readPayload(w, r, h.opts.MaxBodyBytes, h.opts.MaxArgumentDepth)
}

func opSendAll(h *handler, w http.ResponseWriter, r *http.Request, req *request) error {
	p, err := h.payload(w, r)
	if err != nil {
		return err
	}
	return h.fanOut(r, p, func() error {
		return h.opts.Hubs.SendAll(r.Context(), req.hub, p, excludedIDs(req.values()))
	})
}

func opSendUser(h *handler, w http.ResponseWriter, r *http.Request, req *request) error {
	p, err := h.payload(w, r)
	if err != nil {
		return err
	}
	return unavailable(h.opts.Hubs.SendUser(r.Context(), req.hub, req.user, p))
}

// opSendConnection succeeds for an absent connection too, as the service does.
func opSendConnection(h *handler, w http.ResponseWriter, r *http.Request, req *request) error {
	p, err := h.payload(w, r)
	if err != nil {
		return err
	}
	return unavailable(h.opts.Hubs.SendConnection(r.Context(), req.hub, req.conn, p))
}

func opSendGroup(h *handler, w http.ResponseWriter, r *http.Request, req *request) error {
	p, err := h.payload(w, r)
	if err != nil {
		return err
	}
	return h.fanOut(r, p, func() error {
		return h.opts.Hubs.SendGroup(r.Context(), req.hub, req.group, p, excludedIDs(req.values()))
	})
}

func opConnectionExists(h *handler, _ http.ResponseWriter, r *http.Request, req *request) error {
	if ok, err := h.opts.Hubs.ConnectionExists(r.Context(), req.hub, req.conn); err != nil || !ok {
		if err != nil {
			return unavailable(err)
		}
		return newErr(errConnectionNotExisted, "connection does not exist")
	}
	return nil
}

func opUserExists(h *handler, _ http.ResponseWriter, r *http.Request, req *request) error {
	if ok, err := h.opts.Hubs.UserExists(r.Context(), req.hub, req.user); err != nil || !ok {
		if err != nil {
			return unavailable(err)
		}
		return newErr(errUserNotExisted, "user has no connection")
	}
	return nil
}

func opGroupExists(h *handler, _ http.ResponseWriter, r *http.Request, req *request) error {
	if ok, err := h.opts.Hubs.GroupExists(r.Context(), req.hub, req.group); err != nil || !ok {
		if err != nil {
			return unavailable(err)
		}
		return newErr(errGroupNotExisted, "group has no connection")
	}
	return nil
}

func opUserInGroup(h *handler, _ http.ResponseWriter, r *http.Request, req *request) error {
	if ok, err := h.opts.Hubs.UserInGroup(r.Context(), req.hub, req.user, req.group); err != nil || !ok {
		if err != nil {
			return unavailable(err)
		}
		return newErr(errUserNotInGroup, "user is not in the group")
	}
	return nil
}

func opCloseConnection(h *handler, _ http.ResponseWriter, r *http.Request, req *request) error {
	if ok, err := h.opts.Hubs.CloseConnection(r.Context(), req.hub, req.conn, req.values().Get("reason")); err != nil || !ok {
		if err != nil {
			return unavailable(err)
		}
		return newErr(errConnectionNotExisted, "connection does not exist")
	}
	return nil
}

func opCloseAll(h *handler, _ http.ResponseWriter, r *http.Request, req *request) error {
	return unavailable(h.opts.Hubs.CloseAll(r.Context(), req.hub, excludedIDs(req.values()), req.values().Get("reason")))
}

func opCloseGroup(h *handler, _ http.ResponseWriter, r *http.Request, req *request) error {
	return unavailable(h.opts.Hubs.CloseGroup(r.Context(), req.hub, req.group, excludedIDs(req.values()), req.values().Get("reason")))
}

func opCloseUser(h *handler, _ http.ResponseWriter, r *http.Request, req *request) error {
	return unavailable(h.opts.Hubs.CloseUser(r.Context(), req.hub, req.user, excludedIDs(req.values()), req.values().Get("reason")))
}

func opAddConnectionToGroup(h *handler, _ http.ResponseWriter, r *http.Request, req *request) error {
	if ok, err := h.opts.Hubs.AddToGroup(r.Context(), req.hub, req.group, req.conn); err != nil || !ok {
		if err != nil {
			return groupAddFailed(err)
		}
		return newErr(errConnectionNotExistedError, "connection does not exist")
	}
	return nil
}

// opRemoveConnectionFromGroup is idempotent: removing a connection that already
// left (the usual race with a disconnect) is not an error for the SDK to surface.
func opRemoveConnectionFromGroup(h *handler, _ http.ResponseWriter, r *http.Request, req *request) error {
	return unavailable(h.opts.Hubs.RemoveFromGroup(r.Context(), req.hub, req.group, req.conn))
}

func opLeaveAllGroups(h *handler, _ http.ResponseWriter, r *http.Request, req *request) error {
	return unavailable(h.opts.Hubs.RemoveFromAllGroups(r.Context(), req.hub, req.conn))
}

func opAddUserToGroup(h *handler, _ http.ResponseWriter, r *http.Request, req *request) error {
	ttl, err := ttlParam(req.values())
	if err != nil {
		return err
	}
	if err := h.opts.Hubs.AddUserToGroup(r.Context(), req.hub, req.user, req.group, ttl); err != nil {
		return groupAddFailed(err)
	}
	return nil
}

func opRemoveUserFromGroup(h *handler, _ http.ResponseWriter, r *http.Request, req *request) error {
	return unavailable(h.opts.Hubs.RemoveUserFromGroup(r.Context(), req.hub, req.user, req.group))
}

func opRemoveUserFromAllGroups(h *handler, _ http.ResponseWriter, r *http.Request, req *request) error {
	return unavailable(h.opts.Hubs.RemoveUserFromAllGroups(r.Context(), req.hub, req.user))
}

const (
	defaultTokenMinutes = 60
	// maxTokenMinutes keeps minutesToExpire*time.Minute far from overflow (about 19 years).
	maxTokenMinutes = 10_000_000
)

func opGenerateToken(h *handler, w http.ResponseWriter, r *http.Request, req *request) error {
	minutes, err := intParam(req.values(), "minutesToExpire", defaultTokenMinutes, 1, maxTokenMinutes)
	if err != nil {
		return err
	}
	if h.opts.IssueToken == nil {
		return newErr(errNotImplemented, "token generation is not configured")
	}
	token, err := h.opts.IssueToken(req.hub, req.values().Get("userId"), time.Duration(minutes)*time.Minute)
	if err != nil {
		return &apiError{kind: errInternal, msg: "cannot issue token", err: err}
	}
	return writeJSON(w, http.StatusOK, struct {
		Token string `json:"token"`
	}{token})
}

const (
	defaultPageSize = 100
	maxPageSize     = 200
)

type connectionItem struct {
	ConnectionID string `json:"connectionId"`
	UserID       string `json:"userId,omitempty"`
}

type connectionPage struct {
	Value    []connectionItem `json:"value"`
	NextLink string           `json:"nextLink,omitempty"`
}

// opListGroupConnections pages through the group's connections in id order. The
// continuation token is the last id returned (base64url), so pages stay correct
// while connections come and go; top is carried, decremented, in nextLink.
func opListGroupConnections(h *handler, w http.ResponseWriter, r *http.Request, req *request) error {
	pageSize, err := intParam(req.values(), "maxpagesize", defaultPageSize, 1, maxPageSize)
	if err != nil {
		return err
	}
	top, err := intParam(req.values(), "top", -1, 0, int(^uint(0)>>1))
	if err != nil {
		return err
	}
	after := ""
	if tok := req.values().Get("continuationToken"); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil {
			return invalid("invalid continuationToken")
		}
		after = string(b)
	}
	all, err := h.opts.Hubs.GroupConnections(r.Context(), req.hub, req.group)
	if err != nil {
		return unavailable(err)
	}
	start := sort.Search(len(all), func(i int) bool { return all[i].ConnectionID > after })
	if after == "" {
		start = 0
	}
	rest := all[start:]
	limit := pageSize
	if top >= 0 && top < limit {
		limit = top
	}
	page := rest[:min(limit, len(rest))]
	out := connectionPage{Value: make([]connectionItem, len(page))}
	for i, c := range page {
		out.Value[i] = connectionItem{ConnectionID: c.ConnectionID, UserID: c.UserID}
	}
	remainingTop := -1
	if top >= 0 {
		remainingTop = top - len(page)
	}
	if len(page) > 0 && len(rest) > len(page) && remainingTop != 0 {
		out.NextLink = nextLink(r, req.values(), page[len(page)-1].ConnectionID, remainingTop)
	}
	return writeJSON(w, http.StatusOK, out)
}

// nextLink is absolute, built from the request's scheme and host, keeping every
// query parameter except the paging ones it replaces.
func nextLink(r *http.Request, q url.Values, lastID string, remainingTop int) string {
	next := url.Values{}
	for k, v := range q {
		next[k] = v
	}
	next.Set("continuationToken", base64.RawURLEncoding.EncodeToString([]byte(lastID)))
	if remainingTop >= 0 {
		next.Set("top", strconv.Itoa(remainingTop))
	}
	scheme, host := requestOrigin(r)
	u := url.URL{Scheme: scheme, Host: host, RawPath: r.URL.EscapedPath(), Path: r.URL.Path, RawQuery: next.Encode()}
	return u.String()
}

// requestOrigin is the scheme and host the caller used. Behind a reverse proxy
// that terminates TLS, X-Forwarded-Proto / X-Forwarded-Host (first values) say
// what the caller saw; the link only goes back to the same authenticated caller.
func requestOrigin(r *http.Request) (scheme, host string) {
	scheme, host = "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if p := firstForwarded(r.Header.Get("X-Forwarded-Proto")); p == "http" || p == "https" {
		scheme = p
	}
	if h := firstForwarded(r.Header.Get("X-Forwarded-Host")); h != "" && !strings.ContainsAny(h, "/?#@ \t") {
		host = h
	}
	return scheme, host
}

func firstForwarded(v string) string {
	if i := strings.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	return strings.ToLower(strings.TrimSpace(v))
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return nil
}
