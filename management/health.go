package management

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/signalbox-io/signalbox/auth"
)

// Start begins background work, which runs until Close: health checks when there is more
// than one endpoint (with one endpoint its state does not matter: it is always used), and
// for identity-based endpoints the fetching and periodic refresh of client-token signing
// keys, so that negotiations do not wait for them. ctx only bounds Start itself.
func (c *Client) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return ErrClosed
	case c.started:
		return fmt.Errorf("management: client already started")
	}
	c.started = true
	var loops []func(context.Context)
	if len(c.eps) > 1 {
		for _, es := range c.eps {
			loops = append(loops, func(ctx context.Context) { c.healthLoop(ctx, es) })
		}
		c.watching.Store(true)
	}
	for _, es := range c.eps {
		if es.ep.AccessKey == "" {
			loops = append(loops, func(ctx context.Context) { c.keyLoop(ctx, es) })
		}
	}
	if len(loops) == 0 {
		return nil
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	c.cancel, c.done = cancel, done
	var wg sync.WaitGroup
	for _, loop := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop(loopCtx)
		}()
	}
	go func() {
		wg.Wait()
		close(done)
	}()
	return nil
}

// Close stops background work and waits for it to end. It is safe to call more than once.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	cancel, done := c.cancel, c.done
	c.cancel = nil
	c.mu.Unlock()
	c.watching.Store(false)
	if cancel != nil {
		cancel()
		<-done
	}
	return nil
}

// healthLoop checks one endpoint every Interval (measured from the start of the previous
// check, so a slow check does not stretch the worst case) and at once when a failed call
// asks for it.
func (c *Client) healthLoop(ctx context.Context, es *endpointState) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-es.recheck:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		}
		start := time.Now()
		c.checkOne(ctx, es)
		t.Reset(max(c.health.Interval-time.Since(start), 0))
	}
}

// suspect marks es offline after a failed call and asks its health loop to check it. Only
// while the loops run (Start was called, several endpoints): a lone endpoint is always used,
// and without the loops nothing would bring it back.
func (c *Client) suspect(es *endpointState, cause error) {
	if !c.watching.Load() {
		return
	}
	if es.settle(es.observe(), false) {
		c.log.Warn("SignalR endpoint marked offline after a failed call; a health check follows", "endpoint", es.ep.String(), "error", cause)
	}
	select {
	case es.recheck <- struct{}{}:
	default:
	}
}

// keyLoop keeps the signing key of an identity-based endpoint fresh.
func (c *Client) keyLoop(ctx context.Context, es *endpointState) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		next := c.keyRefresh
		if _, _, err := c.signingKey(ctx, es); err != nil {
			if ctx.Err() != nil {
				return
			}
			c.log.Warn("fetching SignalR signing key failed", "endpoint", es.ep.String(), "error", err)
			next = min(next, keyRetryAfter)
		}
		t.Reset(next)
	}
}

// CheckHealth checks every endpoint once, concurrently, and updates its online state:
// an endpoint is online when HEAD {ServerEndpoint}api/health answers 2xx.
func (c *Client) CheckHealth(ctx context.Context) {
	var wg sync.WaitGroup
	for _, es := range c.eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.checkOne(ctx, es)
		}()
	}
	wg.Wait()
}

// checkOne probes es and records the answer.
func (c *Client) checkOne(ctx context.Context, es *endpointState) {
	n := es.observe()
	online := c.probe(ctx, es)
	if ctx.Err() != nil {
		return // cancelled, not an answer about the endpoint
	}
	if es.settle(n, online) {
		if online {
			c.log.Info("SignalR endpoint is online", "endpoint", es.ep.String())
		} else {
			c.log.Warn("SignalR endpoint is offline", "endpoint", es.ep.String())
		}
	}
}

// observe numbers an observation of es that starts now.
func (es *endpointState) observe() uint64 {
	es.obsMu.Lock()
	defer es.obsMu.Unlock()
	es.obsNext++
	return es.obsNext
}

// settle records online as what observation n found, unless a later observation was
// recorded already (a check that started after it answered first). It reports whether
// the state changed.
func (es *endpointState) settle(n uint64, online bool) bool {
	es.obsMu.Lock()
	defer es.obsMu.Unlock()
	if n < es.obsSeen {
		return false
	}
	es.obsSeen = n
	return es.online.Swap(online) != online
}

// probe reports whether es answers its health check, retrying as configured.
func (c *Client) probe(ctx context.Context, es *endpointState) bool {
	for attempt := 0; ; attempt++ {
		err := c.probeOnce(ctx, es)
		if err == nil {
			return true
		}
		c.log.Debug("SignalR health check failed", "endpoint", es.ep.String(), "attempt", attempt+1, "error", err)
		if attempt >= c.health.Retries || !sleep(ctx, c.health.RetryDelay) {
			return false
		}
	}
}

func (c *Client) probeOnce(ctx context.Context, es *endpointState) error {
	ctx, cancel := context.WithTimeout(ctx, c.health.Timeout)
	defer cancel()
	const path = "/api/health"
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, es.url(path, APIVersion, nil), nil)
	if err != nil {
		return err
	}
	// Only key endpoints sign health checks (as the SDK); an Entra token here would make
	// a credential outage look like a service outage.
	if es.ep.AccessKey != "" {
		tok, err := auth.NewToken(es.ep.AccessKey, auth.TokenOptions{
			Audience: auth.RESTAudience(es.ep.AudienceBase, path+"?api-version="+APIVersion),
			Claims:   []auth.Claim{{Type: "nameid", Value: c.nameID}},
			Now:      c.now,
		})
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// sleep waits d or until ctx ends; false means ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
