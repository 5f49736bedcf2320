package server

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// admission applies the per-client-address and per-user limits of new connections:
// the negotiate rate of an address (a token bucket), and how many connections an
// address and a user may hold. Its maps hold only addresses and users with live
// connections or a bucket that is not full, so they stay bounded by the traffic.
type admission struct {
	mu      sync.Mutex
	addrs   map[string]*addrState
	users   map[string]int // by hub + "\x00" + user id
	pending int            // negotiated connections no transport attached to yet
	rate    float64        // negotiations per second per address; <= 0 = unlimited
	burst   int
	now     func() time.Time
}

type addrState struct {
	tokens float64
	last   time.Time
	conns  int
}

func newAdmission() *admission {
	return &admission{addrs: make(map[string]*addrState), users: make(map[string]int), now: time.Now}
}

// clientAddr is the address the limits apply to: the IP of the TCP peer, unless the
// peer is a trusted proxy; then the right-most X-Forwarded-For entry that is not a
// trusted proxy (entries to its left are whatever the client wrote). Without trusted
// proxies the header is ignored, since any client can set it.
func clientAddr(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if len(trusted) == 0 || !inPrefixes(host, trusted) {
		return host
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			hop := strings.TrimSpace(parts[j])
			if hop == "" {
				continue
			}
			if !inPrefixes(hop, trusted) {
				return hop
			}
			host = hop
		}
	}
	return host
}

func inPrefixes(ip string, prefixes []netip.Prefix) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parsePrefixes parses trusted-proxies entries: IP addresses or CIDR prefixes.
func parsePrefixes(entries []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, e := range entries {
		if p, err := netip.ParsePrefix(e); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(e)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %q is not an IP address or CIDR prefix", i+1, e)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// setRate sets the negotiate rate per address (per second; <= 0 = unlimited) and burst.
func (a *admission) setRate(rate float64, burst int) {
	a.mu.Lock()
	a.rate, a.burst = rate, max(burst, 1)
	a.mu.Unlock()
}

// allowNegotiate takes one token of addr's bucket.
func (a *admission) allowNegotiate(addr string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.rate <= 0 {
		return true
	}
	now := a.now()
	st := a.addrs[addr]
	if st == nil {
		a.sweepLocked(now)
		st = &addrState{tokens: float64(a.burst), last: now}
		a.addrs[addr] = st
	}
	st.tokens = min(float64(a.burst), st.tokens+now.Sub(st.last).Seconds()*a.rate)
	st.last = now
	if st.tokens < 1 {
		return false
	}
	st.tokens--
	return true
}

// sweepLocked forgets addresses without connections whose bucket has refilled, once the
// map has grown, so that a scan of many source addresses cannot grow it for ever.
func (a *admission) sweepLocked(now time.Time) {
	if len(a.addrs) < 4096 {
		return
	}
	for k, st := range a.addrs {
		if st.conns == 0 && a.refilledLocked(st, now) {
			delete(a.addrs, k)
		}
	}
}

// refilledLocked reports whether st's bucket is full again (forgetting it changes
// nothing).
func (a *admission) refilledLocked(st *addrState, now time.Time) bool {
	return a.rate <= 0 || st.tokens+now.Sub(st.last).Seconds()*a.rate >= float64(a.burst)
}

// limitError is why a connection is refused: the HTTP status and the client's text.
type limitError struct {
	status int
	text   string
}

// admit counts a new connection of addr and user against the limits (0 = unlimited);
// release undoes it. pendingMax bounds connections negotiated but not started.
func (a *admission) admit(addr, userKey string, perAddr, perUser, pendingMax int) *limitError {
	a.mu.Lock()
	defer a.mu.Unlock()
	if pendingMax > 0 && a.pending >= pendingMax {
		return &limitError{http.StatusTooManyRequests, "Too many negotiated connections are waiting for a transport; try again later."}
	}
	st := a.addrs[addr]
	if perAddr > 0 && st != nil && st.conns >= perAddr {
		return &limitError{http.StatusTooManyRequests, "The connection limit per client address (" + strconv.Itoa(perAddr) + ") has been reached."}
	}
	if perUser > 0 && userKey != "" && a.users[userKey] >= perUser {
		return &limitError{http.StatusTooManyRequests, "The connection limit per user (" + strconv.Itoa(perUser) + ") has been reached."}
	}
	if st == nil {
		now := a.now()
		a.sweepLocked(now)
		st = &addrState{tokens: float64(a.burst), last: now}
		a.addrs[addr] = st
	}
	st.conns++
	if userKey != "" {
		a.users[userKey]++
	}
	a.pending++
	return nil
}

// started moves a connection out of the pending count.
func (a *admission) started() {
	a.mu.Lock()
	a.pending--
	a.mu.Unlock()
}

// release forgets a connection admitted by admit; wasPending when it never started.
func (a *admission) release(addr, userKey string, wasPending bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if wasPending {
		a.pending--
	}
	if st := a.addrs[addr]; st != nil {
		st.conns--
		if st.conns <= 0 && a.refilledLocked(st, a.now()) {
			delete(a.addrs, addr) // nothing left to remember: no connection, a full bucket
		}
	}
	if userKey != "" {
		if n := a.users[userKey] - 1; n > 0 {
			a.users[userKey] = n
		} else {
			delete(a.users, userKey)
		}
	}
}
