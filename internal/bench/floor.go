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
// WebSocket write per frame and one goroutine per connection, for D. It returns
// when stdin reaches EOF (the bench process ended), ctx ends, or after 15 minutes.
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
	if err := errors.Join(err1, err2); err != nil || !ok || d <= 0 || d > 10*time.Minute || payload < 0 || payload > 512<<10 {
		http.Error(w, "bad duration, payload or protocol", http.StatusBadRequest)
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
	var wg sync.WaitGroup
	for _, c := range conns {
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

// floorResult is the raw floor measured in this run.
type floorResult struct {
	deliveriesPerS   float64
	cpuUsPerDelivery float64
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
					floorRead(rctx, ws, proto, &counts[i])
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
		var s int64
		for i := range counts {
			s += counts[i].Load()
		}
		return s
	}

	u := fmt.Sprintf("http://%s/run?duration=%s&protocol=%s&payload=%d", addr, o.FloorDuration, proto.Name(), o.Payload)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return nil, fmt.Errorf("bench: floor: %w", err)
	}
	before, err := ReadProc(c.pid())
	if err != nil {
		return nil, err
	}
	n0 := sum()
	res, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("bench: floor run: %w", err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	n1 := sum()
	after, err := ReadProc(c.pid())
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("bench: floor run: HTTP %d", res.StatusCode)
	}
	got := n1 - n0
	if got <= 0 {
		return nil, errors.New("bench: the floor delivered nothing")
	}
	return &floorResult{
		deliveriesPerS:   float64(got) / after.At.Sub(before.At).Seconds(),
		cpuUsPerDelivery: float64((after.CPU - before.CPU).Nanoseconds()) / 1000 / float64(got),
	}, nil
}

// floorRead decodes every message of ws and counts the invocations whose stamp
// parses, the same work a bench client does per delivery.
func floorRead(ctx context.Context, ws *websocket.Conn, proto protocol.Protocol, count *counter) {
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
				if _, _, err := stamp(inv.Arguments); err == nil {
					count.Add(1)
				}
			}
		}
	}
}
