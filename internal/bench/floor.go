package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/signalbox-io/signalbox/protocol"
)

// floorLifetime bounds a floor server that lost its parent without noticing.
const floorLifetime = 15 * time.Minute

// ServeFloor runs the raw floor server of `signalbox bench --floor-server`: a bare
// coder/websocket server on a loopback port (printed as "listening ADDR" on stdout)
// that accepts connections on /ws and, on POST /run?duration=D&protocol=P&payload=N,
// writes the same SignalR invocation frame over and over to every connection, one
// WebSocket write per frame and one goroutine per connection, for D. With &rate=R
// (messages/s) it writes at that rate instead: R times a second, one loop writes a
// frame stamped with the time of that round to every connection, one write each (the
// paced floor). It returns when stdin reaches EOF (the bench process ended), ctx
// ends, or after 15 minutes.
func ServeFloor(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, floorLifetime)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("bench: floor server: %w", err)
	}
	fs := &floorServer{conns: map[*websocket.Conn]struct{}{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", fs.accept)
	mux.HandleFunc("POST /run", fs.run)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		cancel()
	}()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if _, err := fmt.Fprintf(stdout, "listening %s\n", ln.Addr()); err != nil {
		cancel()
	}
	<-ctx.Done()
	fs.closeAll()
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	_ = srv.Shutdown(sctx)
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("bench: floor server: %w", err)
	}
	return nil
}

type floorServer struct {
	mu    sync.Mutex
	conns map[*websocket.Conn]struct{}
}

func (fs *floorServer) accept(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	fs.mu.Lock()
	fs.conns[c] = struct{}{}
	fs.mu.Unlock()
	// Nothing is read from clients; CloseRead handles their close frame.
	<-c.CloseRead(r.Context()).Done()
	fs.mu.Lock()
	delete(fs.conns, c)
	fs.mu.Unlock()
	_ = c.CloseNow()
}

func (fs *floorServer) closeAll() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for c := range fs.conns {
		_ = c.CloseNow()
	}
}

// floorFrame is the message the floor writes: the same shape as the bench's
// broadcast messages.
func floorFrame(p protocol.Protocol, payload int) ([]byte, error) {
	inv := &protocol.Invocation{Target: target, Arguments: []protocol.Value{
		protocol.JSONValue([]byte(strconv.FormatInt(time.Now().UnixNano(), 10))),
		protocol.JSONValue([]byte("0")),
		protocol.JSONValue([]byte(`"` + strings.Repeat("x", payload) + `"`)),
	}}
	return p.AppendFrame(nil, inv)
}

func (fs *floorServer) run(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d, err1 := time.ParseDuration(q.Get("duration"))
	payload, err2 := strconv.Atoi(q.Get("payload"))
	proto, ok := protocol.Lookup(q.Get("protocol"))
	var rate float64
	var err3 error
	if v := q.Get("rate"); v != "" {
		rate, err3 = strconv.ParseFloat(v, 64)
	}
	if err := errors.Join(err1, err2, err3); err != nil || !ok || d <= 0 || d > 10*time.Minute || payload < 0 || payload > 512<<10 ||
		rate < 0 || rate > 1e5 {
		http.Error(w, "bad duration, payload, protocol or rate", http.StatusBadRequest)
		return
	}
	frame, err := floorFrame(proto, payload)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	typ := websocket.MessageText
	if proto.Binary() {
		typ = websocket.MessageBinary
	}
	fs.mu.Lock()
	conns := make([]*websocket.Conn, 0, len(fs.conns))
	for c := range fs.conns {
		conns = append(conns, c)
	}
	fs.mu.Unlock()
	ctx, cancel := context.WithTimeout(r.Context(), d)
	defer cancel()
	var written atomic.Int64
	writers := conns // one goroutine each, unless paced
	if rate > 0 {
		written.Store(writePaced(ctx, conns, typ, rate, func() ([]byte, error) { return floorFrame(proto, payload) }))
		writers = nil
	}
	var wg sync.WaitGroup
	for _, c := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var n int64
			for ctx.Err() == nil {
				if err := c.Write(ctx, typ, frame); err != nil {
					break
				}
				n++
			}
			written.Add(n)
		}()
	}
	wg.Wait()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]int64{"written": written.Load(), "conns": int64(len(conns))})
}

// writePaced is the paced floor: rate times a second, until ctx ends, it writes a
// new frame (stamped now) to every connection from one loop, one write each, and
// returns the writes that succeeded. A tick missed while a round was still writing
// is dropped. The writes do not use ctx: coder/websocket closes a connection whose
// write is cut by its context, and the saturated run after this one needs them all.
func writePaced(ctx context.Context, conns []*websocket.Conn, typ websocket.MessageType, rate float64, frame func() ([]byte, error)) int64 {
	t := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer t.Stop()
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	var n int64
	for {
		select {
		case <-ctx.Done():
			return n
		case <-t.C:
		}
		f, err := frame()
		if err != nil {
			return n
		}
		for _, c := range conns {
			if c.Write(wctx, typ, f) == nil {
				n++
			}
		}
	}
}

// floorResult is the raw floor measured in this run.
type floorResult struct {
	deliveriesPerS   float64
	cpuUsPerDelivery float64
	// The paced floor (Options.Rate > 0 only): the same writes at the scenario's
	// rate, as the server gets them, instead of as fast as they go.
	pacedDeliveriesPerS   float64
	pacedCPUUsPerDelivery float64
	pacedLatency          *Histogram
}

// runFloor starts the floor server, connects n readers that decode every message
// as the bench's clients do, and measures deliveries/s over o.FloorDuration.
func runFloor(ctx context.Context, o *Options, proto protocol.Protocol, n int) (*floorResult, error) {
	lw := &lineWriter{ch: make(chan string, 1)}
	argv := append(append([]string(nil), o.ServerCmd...), "bench", "--floor-server")
	c, err := startChild(argv, o.ServerEnv, lw)
	if err != nil {
		return nil, err
	}
	defer func() { _ = c.stop() }()
	line, err := firstLine(ctx, c, lw)
	if err != nil {
		return nil, err
	}
	addr, ok := strings.CutPrefix(line, "listening ")
	if !ok {
		return nil, fmt.Errorf("bench: floor server said %q", line)
	}
	o.Logger.Info("measuring the raw floor", slog.Int("connections", n), slog.Duration("for", o.FloorDuration))

	counts := make([]counter, n)
	// The readers record latencies while timed is set (the paced run: its frames carry
	// the time they were written; the saturated run's are all stamped alike).
	var rec Recorder
	var timed atomic.Bool
	// JSON is read by raw clients, as the bench's own clients read it (rawClient): the
	// floor's readers must not cost more per delivery than the server's, or the
	// floor's writes would batch behind slow readers and the server's not. Their
	// deliveries go to rv, whose phase each run starts.
	var rv *receiver
	var raws []*rawClient
	var rawMu sync.Mutex
	if !proto.Binary() {
		rv = newReceiver()
		defer func() {
			for _, c := range raws {
				_ = c.Close()
			}
		}()
	}
	rctx, stopReaders := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stopReaders()
		wg.Wait()
	}()
	hc := newHTTPClient(o.ConnectConcurrency)
	hc.Timeout = o.FloorDuration + time.Minute
	defer hc.CloseIdleConnections()
	jobs := make(chan int)
	var dialErr lastError
	var dialers sync.WaitGroup
	for range min(o.ConnectConcurrency, n) {
		dialers.Add(1)
		go func() {
			defer dialers.Done()
			for i := range jobs {
				dctx, cancel := context.WithTimeout(rctx, 30*time.Second)
				if rv != nil {
					c, err := dialRawFloor(dctx, addr)
					cancel()
					if err != nil {
						dialErr.Store(err)
						continue
					}
					rawMu.Lock()
					raws = append(raws, c)
					rawMu.Unlock()
					go c.readLoop(rv, i)
					continue
				}
				ws, _, err := websocket.Dial(dctx, "ws://"+addr+"/ws", &websocket.DialOptions{HTTPClient: hc})
				cancel()
				if err != nil {
					dialErr.Store(err)
					continue
				}
				ws.SetReadLimit(-1)
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer ws.CloseNow()
					floorRead(rctx, ws, proto, &counts[i], func(sent time.Time) {
						if timed.Load() {
							rec.Record(i, time.Since(sent))
						}
					})
				}()
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	dialers.Wait()
	if err := dialErr.Load(); err != nil {
		return nil, fmt.Errorf("bench: connecting to the floor server: %w", err)
	}
	sum := func() int64 {
		if rv != nil {
			return rv.cur.Load().delivered.Load()
		}
		var s int64
		for i := range counts {
			s += counts[i].Load()
		}
		return s
	}

	// run has the floor server write for o.FloorDuration (at rate messages/s, or as
	// fast as it goes when rate is 0) and returns deliveries/s and CPU per delivery.
	run := func(rate float64) (perS, cpuUs float64, err error) {
		u := fmt.Sprintf("http://%s/run?duration=%s&protocol=%s&payload=%d", addr, o.FloorDuration, proto.Name(), o.Payload)
		if rate > 0 {
			u += "&rate=" + strconv.FormatFloat(rate, 'f', -1, 64)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
		if err != nil {
			return 0, 0, fmt.Errorf("bench: floor: %w", err)
		}
		before, err := ReadProc(c.pid())
		if err != nil {
			return 0, 0, err
		}
		if rv != nil {
			rv.begin(0) // the floor numbers every message 0
		}
		n0 := sum()
		res, err := hc.Do(req)
		if err != nil {
			return 0, 0, fmt.Errorf("bench: floor run: %w", err)
		}
		var written struct {
			Written int64 `json:"written"`
		}
		_ = json.NewDecoder(res.Body).Decode(&written)
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		done := time.Now()
		if rate > 0 {
			// The last round may still be on its way to the readers (bounded: a round
			// is one message per connection).
			deadline := time.Now().Add(3 * time.Second)
			for sum()-n0 < written.Written && time.Now().Before(deadline) && sleepCtx(ctx, 10*time.Millisecond) {
			}
		}
		n1 := sum()
		after, err := ReadProc(c.pid())
		if err != nil {
			return 0, 0, err
		}
		if res.StatusCode != http.StatusOK {
			return 0, 0, fmt.Errorf("bench: floor run: HTTP %d", res.StatusCode)
		}
		got := n1 - n0
		if got <= 0 {
			return 0, 0, errors.New("bench: the floor delivered nothing")
		}
		return float64(got) / done.Sub(before.At).Seconds(),
			float64((after.CPU - before.CPU).Nanoseconds()) / 1000 / float64(got), nil
	}
	fr := &floorResult{}
	if o.Rate > 0 {
		// Paced first: the saturated run ends with every socket full and its writers
		// cut by the deadline (coder/websocket then closes those connections).
		o.Logger.Info("measuring the paced floor", slog.Float64("rate", o.Rate), slog.Duration("for", o.FloorDuration))
		timed.Store(true)
		fr.pacedDeliveriesPerS, fr.pacedCPUUsPerDelivery, err = run(o.Rate)
		timed.Store(false)
		if err != nil {
			return nil, err
		}
		fr.pacedLatency = rec.Snapshot()
		if rv != nil {
			fr.pacedLatency = rv.cur.Load().rec.Snapshot()
		}
	}
	if fr.deliveriesPerS, fr.cpuUsPerDelivery, err = run(0); err != nil {
		return nil, err
	}
	return fr, nil
}

// floorRead decodes every message of ws and counts the invocations whose stamp
// parses, the same work a bench client does per delivery; seen gets each stamp.
func floorRead(ctx context.Context, ws *websocket.Conn, proto protocol.Protocol, count *counter, seen func(sent time.Time)) {
	dec := protocol.NewDecoder(proto, 1<<20)
	var buf []byte
	for {
		_, r, err := ws.Reader(ctx)
		if err != nil {
			return
		}
		buf = buf[:0]
		for {
			if len(buf) == cap(buf) {
				buf = append(buf, 0)[:len(buf)]
			}
			k, err := r.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+k]
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return
			}
		}
		dec.Write(buf)
		for {
			m, err := dec.Next()
			if err != nil || m == nil {
				if err != nil {
					return
				}
				break
			}
			if inv, ok := m.(*protocol.Invocation); ok {
				if sent, _, err := stamp(inv.Arguments); err == nil {
					count.Add(1)
					seen(sent)
				}
			}
		}
	}
}
