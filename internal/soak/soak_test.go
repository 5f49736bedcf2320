package soak

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/client"
	"github.com/signalbox-io/signalbox/protocol"
)

// Environment of the soak run.
const (
	envDuration = "SIGNALBOX_SOAK"       // traffic duration, e.g. 3m; unset = skip
	envConns    = "SIGNALBOX_SOAK_CONNS" // connections (default 2000)
	envBin      = "SIGNALBOX_BIN"        // the server binary (default: built here)
	envOut      = "SIGNALBOX_SOAK_OUT"   // file to write the figures to as JSON
)

// Bounds of "back to baseline" (T9): goroutines +10, open files +5, heap in use
// +10 % (and 4 MiB, the granularity of the runtime's spans), each within its wait.
const (
	slackGoroutines = 10
	slackFDs        = 5
	goroutineWait   = 60 * time.Second
	// The heap is measured after garbage collections that started once the connections
	// were gone (goroutines and files back): one that ran while 10,000 of them were still
	// being torn down sees them live. It takes two: what the last connections gave back to
	// a sync.Pool (net/http's bufio readers and writers of the SSE and long-polling
	// connections, the transport's read buffers) outlives the first collection in the
	// pool's victim cache. An idle server collects when the runtime forces one, at most
	// 2 minutes apart; the heap passes at the first collection if it can.
	heapWait = 270 * time.Second
	// heapSlack is what the server keeps by design once every client left: the
	// verified-token caches (auth: 1,024 client and 4,096 REST tokens of about 1 KiB,
	// kept until the tokens expire or the keys rotate), plus 4 MiB of runtime
	// granularity.
	heapSlack = 4096*2<<10 + 4<<20
)

// figures is what a run reports.
type figures struct {
	Connections         int     `json:"connections"`
	Duration            string  `json:"duration"`
	WebSockets          int     `json:"websockets"`
	SSE                 int     `json:"sse"`
	LongPolling         int     `json:"long_polling"`
	MessagePack         int     `json:"messagepack"`
	ConnectSeconds      float64 `json:"connect_seconds"`
	Broadcasts          int     `json:"broadcasts"`
	GroupSends          int     `json:"group_sends"`
	Deliveries          int64   `json:"deliveries"`
	Missing             int64   `json:"missing_deliveries"`
	Late                int64   `json:"late_deliveries"` // arrived after their 3-second window
	P50ms               float64 `json:"broadcast_p50_ms"`
	P99ms               float64 `json:"broadcast_p99_ms"`
	Reconnects          int64   `json:"churn_reconnects"`
	UnexpectedCloses    int64   `json:"unexpected_closes"`
	RSSPeakBytes        float64 `json:"server_rss_peak_bytes"`
	HeapPerConnBytes    float64 `json:"server_heap_per_conn_bytes"`
	BaselineGoroutines  float64 `json:"baseline_goroutines"`
	PeakGoroutines      float64 `json:"peak_goroutines"`
	AfterGoroutines     float64 `json:"after_goroutines"`
	BaselineFDs         float64 `json:"baseline_fds"`
	PeakFDs             float64 `json:"peak_fds"`
	AfterFDs            float64 `json:"after_fds"`
	BaselineHeapAlloc   float64 `json:"baseline_heap_alloc_bytes"`
	AfterHeapAlloc      float64 `json:"after_gc_heap_alloc_bytes"`
	BaselineHeapInUse   float64 `json:"baseline_heap_inuse_bytes"`
	PeakHeapInUse       float64 `json:"peak_heap_inuse_bytes"`
	AfterHeapInUse      float64 `json:"after_heap_inuse_bytes"`
	BackToBaselineSecs  float64 `json:"back_to_baseline_seconds"`
	GoroutinesRecovered bool    `json:"goroutines_recovered"`
	FDsRecovered        bool    `json:"fds_recovered"`
	HeapRecovered       bool    `json:"heap_recovered"`
	GCAfterLeave        bool    `json:"gc_after_clients_left"`
	GCsAfterLeave       int     `json:"collections_before_the_heap_reading"` // counted from when goroutines and files were back
}

func TestSoak(t *testing.T) {
	d := os.Getenv(envDuration)
	if d == "" {
		t.Skip("set " + envDuration + "=3m (make soak) to run the soak test")
	}
	duration, err := time.ParseDuration(d)
	if err != nil {
		t.Fatalf("%s: %v", envDuration, err)
	}
	conns := 2000
	if v := os.Getenv(envConns); v != "" {
		if conns, err = strconv.Atoi(v); err != nil || conns < 10 {
			t.Fatalf("%s: %q", envConns, v)
		}
	}
	srv := startServer(t)
	f := figures{Connections: conns, Duration: duration.String()}
	srv.metrics(t)          // the first scrape allocates what every later one reuses
	time.Sleep(time.Second) // let the server settle before the baseline
	base := srv.metrics(t)
	f.BaselineGoroutines, f.BaselineFDs, f.BaselineHeapInUse = base.goroutines, base.fds, base.heapInUse

	ctx, cancel := context.WithTimeout(context.Background(), duration+10*time.Minute)
	defer cancel()
	pool := &clientPool{srv: srv, hub: "soak"}
	t0 := time.Now()
	if err := pool.connect(ctx, conns, &f); err != nil {
		t.Fatal(err)
	}
	f.ConnectSeconds = time.Since(t0).Seconds()
	t.Logf("%d connections (%d WebSocket, %d SSE, %d long polling; %d MessagePack) in %.1fs",
		conns, f.WebSockets, f.SSE, f.LongPolling, f.MessagePack, f.ConnectSeconds)

	peak := srv.metrics(t)
	pool.traffic(ctx, t, duration, &f, func() {
		m := srv.metrics(t)
		peak.goroutines, peak.fds = max(peak.goroutines, m.goroutines), max(peak.fds, m.fds)
		peak.heapInUse, peak.rss = max(peak.heapInUse, m.heapInUse), max(peak.rss, m.rss)
	})
	f.PeakGoroutines, f.PeakFDs, f.PeakHeapInUse, f.RSSPeakBytes = peak.goroutines, peak.fds, peak.heapInUse, peak.rss
	f.HeapPerConnBytes = (peak.heapInUse - base.heapInUse) / float64(conns)
	f.UnexpectedCloses = pool.unexpected.Load()

	pool.closeAll()
	tEnd := time.Now()
	var after sample
	liveAfter := -1.0 // the smallest heap seen after a collection that ran once the connections were gone
	var tGone time.Time
	var gcAtGone float64 // collections counted when goroutines and files were back
	deadline := tEnd.Add(goroutineWait)
	for {
		after = srv.metrics(t)
		f.GoroutinesRecovered = after.goroutines <= base.goroutines+slackGoroutines
		f.FDsRecovered = after.fds <= base.fds+slackFDs
		if tGone.IsZero() && f.GoroutinesRecovered && f.FDsRecovered {
			tGone, gcAtGone = time.Now(), after.numGC
			deadline = tGone.Add(heapWait)
		}
		// The live heap is known right after a collection; what was allocated since is
		// garbage not yet collected.
		if !tGone.IsZero() && after.lastGC > float64(tGone.UnixNano())/1e9 && (liveAfter < 0 || after.heapAlloc < liveAfter) {
			liveAfter = after.heapAlloc
			f.GCsAfterLeave = int(after.numGC - gcAtGone)
		}
		f.HeapRecovered = liveAfter >= 0 && liveAfter <= base.heapAlloc*1.1+heapSlack
		if (f.GoroutinesRecovered && f.FDsRecovered && f.HeapRecovered) || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	f.BaselineHeapAlloc, f.AfterHeapAlloc = base.heapAlloc, liveAfter
	f.GCAfterLeave = liveAfter >= 0
	f.BackToBaselineSecs = time.Since(tEnd).Seconds()
	f.AfterGoroutines, f.AfterFDs, f.AfterHeapInUse = after.goroutines, after.fds, after.heapInUse
	out, _ := json.MarshalIndent(f, "", "  ")
	t.Logf("figures:\n%s", out)
	if p := os.Getenv(envOut); p != "" {
		_ = os.WriteFile(p, append(out, '\n'), 0o644)
	}

	switch {
	case f.UnexpectedCloses > 0:
		t.Errorf("%d connections closed outside the churn", f.UnexpectedCloses)
	case f.Missing > 0:
		t.Errorf("%d broadcast or group deliveries missing", f.Missing)
	case f.P99ms > 1000:
		t.Errorf("broadcast p99 %.0f ms > 1 s", f.P99ms)
	}
	if !f.GoroutinesRecovered || !f.FDsRecovered || !f.HeapRecovered {
		t.Errorf("not back to baseline %.0fs after the clients left: goroutines %.0f (baseline %.0f), fds %.0f (%.0f), live heap %.0f (%.0f; -1 = no collection seen)",
			f.BackToBaselineSecs, after.goroutines, base.goroutines, after.fds, base.fds, liveAfter, base.heapAlloc)
	}
}

// server is the signalbox child process under test.
type server struct {
	url, key string
	cmd      *exec.Cmd
	tokens   sync.Map // REST path -> token
}

func startServer(t *testing.T) *server {
	t.Helper()
	bin := os.Getenv(envBin)
	dir := t.TempDir()
	if bin == "" {
		bin = filepath.Join(dir, "signalbox")
		build := exec.Command("go", "build", "-o", bin, "../../cmd/signalbox")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var b [24]byte
	_, _ = rand.Read(b[:])
	key := hex.EncodeToString(b[:])
	cfg := filepath.Join(dir, "soak.yaml")
	// Every soak client connects from 127.0.0.1: lift the per-address limits.
	if err := os.WriteFile(cfg, []byte("max-connections-per-address: 0\nmax-connections-per-user: 0\nnegotiate-rate: 0\nmax-pending-negotiations: 0\nlog-level: warn\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--listen", addr, "--config", cfg)
	cmd.Env = append(os.Environ(), "SIGNALBOX_ACCESS_KEY="+key)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var logMu sync.Mutex
	var logTail []string
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logMu.Lock()
			logTail = append(logTail, sc.Text())
			if len(logTail) > 50 {
				logTail = logTail[1:]
			}
			logMu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			logMu.Lock()
			t.Logf("server log tail:\n%s", strings.Join(logTail, "\n"))
			logMu.Unlock()
		}
	})
	s := &server{url: "http://" + addr, key: key, cmd: cmd}
	for deadline := time.Now().Add(15 * time.Second); ; {
		resp, err := http.Get(s.url + "/api/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not become ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sample is what the soak reads from the server's /metrics.
type sample struct{ goroutines, fds, heapInUse, rss, heapAlloc, lastGC, numGC float64 }

// metricLine matches the lines of /metrics a sample reads; fields says where each goes.
var metricLine = regexp.MustCompile(`(?m)^(signalbox_\w+) (\S+)$`)

func (m *sample) fields() map[string]*float64 {
	return map[string]*float64{
		"signalbox_go_goroutines":                    &m.goroutines,
		"signalbox_process_open_fds":                 &m.fds,
		"signalbox_go_memstats_heap_inuse_bytes":     &m.heapInUse,
		"signalbox_process_resident_memory_bytes":    &m.rss,
		"signalbox_go_memstats_heap_alloc_bytes":     &m.heapAlloc,
		"signalbox_go_memstats_last_gc_time_seconds": &m.lastGC,
		"signalbox_go_gc_duration_seconds_count":     &m.numGC,
	}
}

func (s *server) metrics(t *testing.T) sample {
	t.Helper()
	// Uncompressed: a gzip writer for the answer would be part of what is measured.
	req, _ := http.NewRequest(http.MethodGet, s.url+"/metrics", nil)
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	var m sample
	fields := m.fields()
	for _, g := range metricLine.FindAllStringSubmatch(b.String(), -1) {
		if dst, ok := fields[g[1]]; ok {
			*dst, _ = strconv.ParseFloat(g[2], 64)
		}
	}
	if m.goroutines == 0 {
		t.Fatal("metrics: no signalbox_go_goroutines")
	}
	return m
}

// restSend posts a message to path (":send" or "groups/G/:send") of the hub.
func (s *server) restSend(ctx context.Context, hub, path string, args ...any) error {
	p := "/api/hubs/" + hub + "/" + path
	// One token per path for the whole run, as an SDK reuses its tokens.
	tok, ok := s.tokens.Load(p)
	if !ok {
		t, err := auth.NewToken(s.key, auth.TokenOptions{Audience: auth.RESTAudience(s.url, p)})
		if err != nil {
			return err
		}
		tok, _ = s.tokens.LoadOrStore(p, t)
	}
	body, _ := json.Marshal(map[string]any{"target": "tick", "arguments": args})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+p, strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok.(string))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST %s: %d", p, resp.StatusCode)
	}
	return nil
}

// clientPool holds the soak's connections.
type clientPool struct {
	srv        *server
	hub        string
	mu         sync.Mutex
	clients    []*soakClient
	next       atomic.Int64
	unexpected atomic.Int64
	closing    atomic.Bool
}

type soakClient struct {
	conn    *client.Conn
	group   int
	leaving atomic.Bool // closed by the churn, not a failure
	got     sync.Map    // message id -> receive time (unix ns)
}

const groups = 10

// dial opens connection number n: 80 % WebSockets, 10 % SSE, 10 % long polling; 30 %
// of the WebSockets and long polling speak MessagePack.
func (p *clientPool) dial(ctx context.Context, n int, f *figures) (*soakClient, error) {
	opts := &client.Options{
		AccessToken: func(context.Context) (string, error) {
			return auth.NewToken(p.srv.key, auth.TokenOptions{Audience: auth.ClientAudience(p.srv.url, p.hub), UserID: "u" + strconv.Itoa(n)})
		},
		MessageBuffer: 1024,
	}
	switch n % 10 {
	case 8:
		opts.Transport = client.ServerSentEvents
	case 9:
		opts.Transport = client.LongPolling
	}
	if opts.Transport != client.ServerSentEvents && n%10 < 3 || n%10 == 9 && n%20 == 9 {
		opts.Protocol = protocol.MessagePack()
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := client.Dial(dctx, auth.ClientURL(p.srv.url, p.hub), opts)
	if err != nil {
		return nil, fmt.Errorf("dial %d: %w", n, err)
	}
	sc := &soakClient{conn: conn, group: n % groups}
	conn.On("tick", func(args []protocol.Value) {
		var id string
		if len(args) > 0 && args[0].Decode(&id) == nil {
			sc.got.Store(id, time.Now().UnixNano())
		}
	})
	go func() {
		<-conn.Done()
		if !sc.leaving.Load() && !p.closing.Load() {
			p.unexpected.Add(1)
		}
	}()
	if f != nil {
		switch opts.Transport {
		case client.ServerSentEvents:
			f.SSE++
		case client.LongPolling:
			f.LongPolling++
		default:
			f.WebSockets++
		}
		if opts.Protocol != nil {
			f.MessagePack++
		}
	}
	if err := p.join(ctx, sc); err != nil {
		conn.Close()
		return nil, err
	}
	return sc, nil
}

// join adds the connection to its group through the REST API.
func (p *clientPool) join(ctx context.Context, sc *soakClient) error {
	path := "/api/hubs/" + p.hub + "/groups/g" + strconv.Itoa(sc.group) + "/connections/" + sc.conn.ID()
	tok, err := auth.NewToken(p.srv.key, auth.TokenOptions{Audience: auth.RESTAudience(p.srv.url, path)})
	if err != nil {
		return err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, p.srv.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("join group: %d", resp.StatusCode)
	}
	return nil
}

// connect opens n connections, at most 100 dials at once (about 500 per second here).
func (p *clientPool) connect(ctx context.Context, n int, f *figures) error {
	sem := make(chan struct{}, 100)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			mu.Lock()
			fig := f
			mu.Unlock()
			sc, err := p.dialCounted(ctx, i, fig, &mu)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			p.clients = append(p.clients, sc)
		}()
	}
	wg.Wait()
	p.next.Store(int64(n))
	return firstErr
}

// dialCounted is dial with the figures updated under mu.
func (p *clientPool) dialCounted(ctx context.Context, n int, f *figures, mu *sync.Mutex) (*soakClient, error) {
	var local figures
	sc, err := p.dial(ctx, n, &local)
	mu.Lock()
	f.WebSockets += local.WebSockets
	f.SSE += local.SSE
	f.LongPolling += local.LongPolling
	f.MessagePack += local.MessagePack
	mu.Unlock()
	return sc, err
}

// traffic runs for d: a broadcast every second, a group send every 200 ms, a client
// send every 50 ms from a rotating connection, and 5 reconnects per second. Each
// broadcast is checked at every connection present for its whole delivery window.
func (p *clientPool) traffic(ctx context.Context, t *testing.T, d time.Duration, f *figures, sampleMetrics func()) {
	end := time.Now().Add(d)
	var lat []float64
	type sent struct {
		id    string
		at    time.Time
		group int // -1 = broadcast
		to    []*soakClient
	}
	var pending []sent
	// A delivery not seen within its window is looked for again at the end, so a late
	// one (the server was slow) is told apart from a lost one.
	type miss struct {
		sc *soakClient
		s  *sent
	}
	var misses []miss
	received := func(sc *soakClient, s *sent) bool {
		v, ok := sc.got.LoadAndDelete(s.id)
		if !ok {
			return false
		}
		f.Deliveries++
		if s.group < 0 {
			lat = append(lat, float64(time.Unix(0, v.(int64)).Sub(s.at))/float64(time.Millisecond))
		}
		return true
	}
	check := func(s *sent) {
		for _, sc := range s.to {
			if sc.leaving.Load() {
				continue
			}
			if !received(sc, s) {
				misses = append(misses, miss{sc, s})
			}
		}
	}
	bcast := time.NewTicker(time.Second)
	group := time.NewTicker(200 * time.Millisecond)
	churn := time.NewTicker(200 * time.Millisecond)
	sendTick := time.NewTicker(50 * time.Millisecond)
	metricsTick := time.NewTicker(5 * time.Second)
	defer func() { bcast.Stop(); group.Stop(); churn.Stop(); sendTick.Stop(); metricsTick.Stop() }()
	seq, rr := 0, 0
	members := func(g int) []*soakClient {
		p.mu.Lock()
		defer p.mu.Unlock()
		out := make([]*soakClient, 0, len(p.clients))
		for _, sc := range p.clients {
			if g < 0 || sc.group == g {
				out = append(out, sc)
			}
		}
		return out
	}
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			t.Fatal("soak context ended")
		case <-bcast.C:
			seq++
			s := sent{id: "b" + strconv.Itoa(seq), at: time.Now(), group: -1, to: members(-1)}
			if err := p.srv.restSend(ctx, p.hub, ":send", s.id); err != nil {
				t.Errorf("broadcast: %v", err)
			}
			f.Broadcasts++
			pending = append(pending, s)
		case <-group.C:
			seq++
			g := seq % groups
			s := sent{id: "g" + strconv.Itoa(seq), at: time.Now(), group: g, to: members(g)}
			if err := p.srv.restSend(ctx, p.hub, "groups/g"+strconv.Itoa(g)+"/:send", s.id); err != nil {
				t.Errorf("group send: %v", err)
			}
			f.GroupSends++
			pending = append(pending, s)
		case <-sendTick.C:
			p.mu.Lock()
			sc := p.clients[rr%len(p.clients)]
			p.mu.Unlock()
			rr++
			_ = sc.conn.Send(ctx, "x", rr) // no upstream: the service drops it, the transport carries it
		case <-churn.C:
			p.mu.Lock()
			i := int(p.next.Load()) % len(p.clients)
			old := p.clients[i]
			old.leaving.Store(true)
			p.mu.Unlock()
			old.conn.Close()
			sc, err := p.dial(ctx, int(p.next.Add(1)), nil)
			if err != nil {
				t.Errorf("churn: %v", err)
				continue
			}
			p.mu.Lock()
			p.clients[i] = sc
			p.mu.Unlock()
			f.Reconnects++
		case <-metricsTick.C:
			sampleMetrics()
		}
		// Deliveries get 3 s; the connections that joined meanwhile are not expected.
		for len(pending) > 0 && time.Since(pending[0].at) > 3*time.Second {
			check(&pending[0])
			pending = pending[1:]
		}
	}
	time.Sleep(3 * time.Second)
	for i := range pending {
		check(&pending[i])
	}
	time.Sleep(3 * time.Second)
	for _, m := range misses {
		if received(m.sc, m.s) {
			f.Late++
		} else {
			f.Missing++
		}
	}
	slices.Sort(lat)
	if n := len(lat); n > 0 {
		f.P50ms, f.P99ms = lat[n/2], lat[n*99/100]
	}
}

func (p *clientPool) closeAll() {
	p.closing.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	var wg sync.WaitGroup
	for _, sc := range p.clients {
		wg.Add(1)
		go func() { defer wg.Done(); sc.conn.Close() }()
	}
	wg.Wait()
	p.clients = nil
}
