package restapi

import (
	"net/http"
	"reflect"
	"runtime"
	"strings"
)

// routes lists every path shape after /api[/v1]/hubs/{hub}. Both prefixes serve
// all of them: the current (:send) shapes and the legacy v1 shapes are aliases.
// Literal segments match case-insensitively.
func routes() []route {
	exists := func(fn opFunc) map[string]op {
		return map[string]op{http.MethodHead: {fn: fn, status: http.StatusOK}, http.MethodGet: {fn: fn, status: http.StatusOK}}
	}
	post := func(fn opFunc, status int) map[string]op {
		return map[string]op{http.MethodPost: {fn: fn, status: status}}
	}
	return []route{
		// Sends (rows 1-4); the legacy shapes have no :send segment.
		{segs: []string{":send"}, methods: post(opSendAll, http.StatusAccepted)},
		{segs: []string{}, methods: post(opSendAll, http.StatusAccepted)},
		{segs: []string{"users", "{user}", ":send"}, methods: post(opSendUser, http.StatusAccepted)},
		{segs: []string{"connections", "{conn}", ":send"}, methods: post(opSendConnection, http.StatusAccepted)},
		{segs: []string{"groups", "{group}", ":send"}, methods: post(opSendGroup, http.StatusAccepted)},

		// Closes (rows 10-12) and token generation (row 19).
		{segs: []string{":closeConnections"}, methods: post(opCloseAll, http.StatusNoContent)},
		{segs: []string{"groups", "{group}", ":closeConnections"}, methods: post(opCloseGroup, http.StatusNoContent)},
		{segs: []string{"users", "{user}", ":closeConnections"}, methods: post(opCloseUser, http.StatusNoContent)},
		{segs: []string{":generateToken"}, methods: post(opGenerateToken, 0)},

		// Client results, streams and commands (rows 20-23, REST 2024-12-01).
		{segs: []string{"connections", "{conn}", ":invoke"}, methods: post(opInvoke, 0)},
		{segs: []string{"connections", "{conn}", "streams", "{stream}", ":send"}, methods: post(opStreamSend, http.StatusAccepted)},
		{segs: []string{"connections", "{conn}", "streams", "{stream}", ":complete"}, methods: post(opStreamComplete, http.StatusAccepted)},
		{segs: []string{":execute"}, methods: post(opExecute, http.StatusAccepted)},

		// Connections (rows 3 legacy, 5, 9, 15).
		{segs: []string{"connections", "{conn}"}, methods: with(exists(opConnectionExists), map[string]op{
			http.MethodPost:   {fn: opSendConnection, status: http.StatusAccepted},
			http.MethodDelete: {fn: opCloseConnection, status: http.StatusOK, legacyStatus: http.StatusAccepted},
		})},
		{segs: []string{"connections", "{conn}", "groups"}, methods: map[string]op{
			http.MethodDelete: {fn: opLeaveAllGroups, status: http.StatusOK},
		}},

		// Users (rows 2 legacy, 6, 8, 16-18).
		{segs: []string{"users", "{user}"}, methods: with(exists(opUserExists), map[string]op{
			http.MethodPost: {fn: opSendUser, status: http.StatusAccepted},
		})},
		{segs: []string{"users", "{user}", "groups", "{group}"}, methods: with(exists(opUserInGroup), map[string]op{
			http.MethodPut:    {fn: opAddUserToGroup, status: http.StatusOK},
			http.MethodDelete: {fn: opRemoveUserFromGroup, status: http.StatusNoContent},
		})},
		{segs: []string{"users", "{user}", "groups"}, methods: map[string]op{
			http.MethodDelete: {fn: opRemoveUserFromAllGroups, status: http.StatusNoContent, legacyStatus: http.StatusOK},
		}},

		// Groups (rows 4 legacy, 7, 13, 14, 24, and the legacy user-group shapes).
		{segs: []string{"groups", "{group}"}, methods: with(exists(opGroupExists), map[string]op{
			http.MethodPost: {fn: opSendGroup, status: http.StatusAccepted},
		})},
		{segs: []string{"groups", "{group}", "connections", "{conn}"}, methods: map[string]op{
			http.MethodPut:    {fn: opAddConnectionToGroup, status: http.StatusOK},
			http.MethodDelete: {fn: opRemoveConnectionFromGroup, status: http.StatusOK},
		}},
		{segs: []string{"groups", "{group}", "connections"}, methods: map[string]op{
			http.MethodGet: {fn: opListGroupConnections, status: 0},
		}},
		{segs: []string{"groups", "{group}", "users", "{user}"}, methods: with(exists(opUserInGroup), map[string]op{
			http.MethodPut:    {fn: opAddUserToGroup, status: http.StatusOK, legacyStatus: http.StatusAccepted},
			http.MethodDelete: {fn: opRemoveUserFromGroup, status: http.StatusNoContent, legacyStatus: http.StatusAccepted},
		})},
	}
}

func with(a, b map[string]op) map[string]op {
	for k, v := range b {
		a[k] = v
	}
	return a
}

// opName is the name of an operation in metrics: its function's name without the
// "op" prefix, first letter lowered (opSendAll -> sendAll). Computed once in New.
func opName(fn opFunc) string {
	full := runtime.FuncForPC(reflect.ValueOf(fn).Pointer()).Name()
	n := strings.TrimPrefix(full[strings.LastIndexByte(full, '.')+1:], "op")
	if n == "" {
		return unknownOperation
	}
	return strings.ToLower(n[:1]) + n[1:]
}
