package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/client"
	"github.com/signalbox-io/signalbox/internal/server"
	"github.com/signalbox-io/signalbox/internal/servertest"
	"github.com/signalbox-io/signalbox/protocol"
)

const testKey = "cli-test-access-key-0123456789abcdefghijklmnop"

// result is one run of the command line.
type result struct {
	code           int
	stdout, stderr string
}

func runCLI(ctx context.Context, stdin string, env map[string]string, args ...string) result {
	var out, errb bytes.Buffer
	a := &app{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, getenv: func(k string) string { return env[k] }}
	code := a.run(ctx, args)
	return result{code, out.String(), errb.String()}
}

// service is an in-process server on a loopback port.
func service(t *testing.T) string {
	t.Helper()
	cfg := server.Default()
	cfg.AccessKeys = server.StringList{testKey}
	return servertest.Start(t, cfg)
}

// listener is a connected client of hub chat as user.
type listener struct {
	c    *client.Conn
	msgs <-chan *protocol.Invocation
}

func listen(ctx context.Context, t *testing.T, endpoint, user string) *listener {
	t.Helper()
	c, err := client.Dial(ctx, auth.ClientURL(endpoint, "chat"), &client.Options{
		AccessToken: func(context.Context) (string, error) {
			return auth.NewToken(testKey, auth.TokenOptions{Audience: auth.ClientAudience(endpoint, "chat"), UserID: user})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &listener{c: c, msgs: c.Messages()}
}

// next is the next invocation the listener receives, as target and JSON arguments.
func (l *listener) next(ctx context.Context, t *testing.T) (string, string) {
	t.Helper()
	select {
	case inv := <-l.msgs:
		var args []any
		for _, a := range inv.Arguments {
			var v any
			if err := a.Decode(&v); err != nil {
				t.Fatal(err)
			}
			args = append(args, v)
		}
		b, _ := json.Marshal(args)
		return inv.Target, string(b)
	case <-ctx.Done():
		t.Fatal("no message within the timeout")
		return "", ""
	}
}

// ready sends to user until one message arrives: Dial returns at the handshake
// answer and the connection is registered just after.
func ready(ctx context.Context, t *testing.T, endpoint string, l *listener, user string) {
	t.Helper()
	for {
		r := runCLI(ctx, "", nil, "send", "--endpoint", endpoint, "--access-key", testKey, "--hub", "chat", "--target", "ready", "--user", user)
		if r.code != 0 {
			t.Fatalf("send: %+v", r)
		}
		select {
		case <-l.msgs:
			return
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("the listener never became reachable")
		}
	}
}

// TestSendFlagsAnywhere is the regression test of issue 10: flags after the first
// message argument were taken as arguments and the message was broadcast.
func TestSendFlagsAnywhere(t *testing.T) {
	endpoint := service(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bob := listen(ctx, t, endpoint, "bob")
	eve := listen(ctx, t, endpoint, "eve")
	ready(ctx, t, endpoint, bob, "bob")
	ready(ctx, t, endpoint, eve, "eve")
	conn := []string{"--endpoint", endpoint, "--access-key", testKey}
	for i, args := range [][]string{
		append([]string{"send", "--hub", "chat", "--target", "newMessage", "--user", "bob", "hi", "42"}, conn...),
		append([]string{"send", "--hub", "chat", "--target", "newMessage", "hi", "42", "--user", "bob"}, conn...),
		append(append([]string{"send"}, conn...), "hi", "--hub", "chat", "42", "--target=newMessage", "--user", "bob", "--timeout", "3s"),
	} {
		r := runCLI(ctx, "", nil, args...)
		if r.code != 0 {
			t.Fatalf("%d: %v: %+v", i, args, r)
		}
		if want := `sent newMessage("hi", 42) to user "bob" in hub "chat"`; !strings.Contains(r.stdout, want) {
			t.Errorf("%d: stdout %q does not say %q", i, r.stdout, want)
		}
		if target, got := bob.next(ctx, t); target != "newMessage" || got != `["hi",42]` {
			t.Fatalf("%d: bob received %s%s", i, target, got)
		}
	}
	// Eve was never a recipient: the first thing she receives is a marker sent to her now.
	if r := runCLI(ctx, "", nil, append([]string{"send", "--hub", "chat", "--target", "marker", "--user", "eve"}, conn...)...); r.code != 0 {
		t.Fatal(r)
	}
	if target, _ := eve.next(ctx, t); target != "marker" {
		t.Fatalf("eve received %q before the marker: a message to bob was broadcast", target)
	}
	// A trailing flag is honoured, not dropped: an invalid --timeout after the arguments fails.
	if r := runCLI(ctx, "", nil, append([]string{"send", "--hub", "chat", "--target", "t", "hi"}, append(conn, "--timeout", "0s")...)...); r.code != exitConfig || !strings.Contains(r.stderr, "--timeout must be positive") {
		t.Fatalf("trailing --timeout 0s: %+v", r)
	}
}

// TestMisplacedFlagIsNeverAnArgument: a mistyped flag fails before anything is sent;
// a word starting with '-' is an argument only after "--".
func TestMisplacedFlagIsNeverAnArgument(t *testing.T) {
	endpoint := service(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eve := listen(ctx, t, endpoint, "eve")
	ready(ctx, t, endpoint, eve, "eve")
	conn := []string{"--endpoint", endpoint, "--access-key", testKey, "--hub", "chat"}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"--target", "newMessage", "hi", "--usr", "bob"}, "unknown flag: --usr"},
		{[]string{"--target", "newMessage", "hi", "-5"}, `put "--" before arguments`},
		{[]string{"--target", "newMessage", "hi", "--user"}, "flag needs an argument"},
	} {
		r := runCLI(ctx, "", nil, append(append([]string{"send"}, conn...), bad.args...)...)
		if r.code != exitConfig || !strings.Contains(r.stderr, bad.want) || r.stdout != "" {
			t.Errorf("send %v: %+v, want exit %d and %q", bad.args, r, exitConfig, bad.want)
		}
	}
	r := runCLI(ctx, "", nil, append(append([]string{"send"}, conn...), "--target", "literal", "--", "--user", "-5")...)
	if r.code != 0 {
		t.Fatal(r)
	}
	// Nothing of the failed commands reached eve: the first message is the one after "--".
	if target, args := eve.next(ctx, t); target != "literal" || args != `["--user",-5]` {
		t.Fatalf("eve received %s%s", target, args)
	}
}

func TestSendArgumentsFromStdinAndFile(t *testing.T) {
	endpoint := service(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ann := listen(ctx, t, endpoint, "ann")
	ready(ctx, t, endpoint, ann, "ann")
	env := map[string]string{"SIGNALBOX_ACCESS_KEY": testKey, "SIGNALBOX_PUBLIC_URL": endpoint}
	r := runCLI(ctx, "[\"hello\",\n {\"a\": [1, 2]}, 3, null]\n", env, "send", "--hub", "chat", "--target", "fromStdin", "--user", "ann", "--arguments-file", "-")
	if r.code != 0 || !strings.Contains(r.stdout, `sent fromStdin("hello", {"a":[1,2]}, 3, null) to user "ann"`) {
		t.Fatal(r)
	}
	if target, args := ann.next(ctx, t); target != "fromStdin" || args != `["hello",{"a":[1,2]},3,null]` {
		t.Fatalf("received %s%s", target, args)
	}
	file := filepath.Join(t.TempDir(), "args.json")
	if err := os.WriteFile(file, []byte(`["from a file"]`), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(ctx, "", env, "send", "--hub", "chat", "--target", "fromFile", "--user", "ann", "--arguments-file", file); r.code != 0 {
		t.Fatal(r)
	}
	if target, args := ann.next(ctx, t); target != "fromFile" || args != `["from a file"]` {
		t.Fatalf("received %s%s", target, args)
	}
	for _, bad := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{`"not an array"`, []string{"--arguments-file", "-"}, "one JSON array"},
		{`[1] [2]`, []string{"--arguments-file", "-"}, "found more"},
		{`[1]`, []string{"--arguments-file", "-", "extra"}, "not both"},
		{``, []string{"--arguments-file", filepath.Join(t.TempDir(), "missing.json")}, "no such file"},
	} {
		r := runCLI(ctx, bad.stdin, env, append([]string{"send", "--hub", "chat", "--target", "t"}, bad.args...)...)
		if r.code != exitConfig || !strings.Contains(r.stderr, bad.want) {
			t.Errorf("%v with stdin %q: %+v, want %q", bad.args, bad.stdin, r, bad.want)
		}
	}
}

func TestCommands(t *testing.T) {
	ctx := context.Background()
	if r := runCLI(ctx, "", nil); r.code != exitConfig || !strings.Contains(r.stderr, "serve") {
		t.Fatalf("no command: %+v", r)
	}
	if r := runCLI(ctx, "", nil, "frobnicate"); r.code != exitConfig || !strings.Contains(r.stderr, `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: %+v", r)
	}
	r := runCLI(ctx, "", nil, "serve", "--help")
	if r.code != 0 {
		t.Fatalf("serve --help: %+v", r)
	}
	// The help lists every setting of the table with its environment variable.
	for _, st := range server.Settings() {
		if st.FlagName() != "" && (!strings.Contains(r.stdout, "--"+st.FlagName()) || !strings.Contains(r.stdout, st.Env())) {
			t.Errorf("serve --help does not show --%s and %s", st.FlagName(), st.Env())
		}
	}
	if r := runCLI(ctx, "", nil, "serve", "--listen", "bad"); r.code != exitConfig || !strings.Contains(r.stderr, "listen") {
		t.Fatalf("bad config: %+v", r)
	}
	if r := runCLI(ctx, "", nil, "serve", "--client-timeout", "soon"); r.code != exitConfig || !strings.Contains(r.stderr, `"soon" is not a duration`) || !strings.Contains(r.stderr, "--client-timeout") {
		t.Fatalf("bad duration: %+v", r)
	}
	if r := runCLI(ctx, "", nil, "serve", "stray"); r.code != exitConfig || !strings.Contains(r.stderr, `unexpected argument "stray"`) {
		t.Fatalf("stray argument: %+v", r)
	}
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		if r := runCLI(ctx, "", nil, "completion", shell); r.code != 0 || !strings.Contains(r.stdout, "signalbox") {
			t.Fatalf("completion %s: exit %d", shell, r.code)
		}
	}

	r = runCLI(ctx, "", nil, "token", "--hub", "Chat", "--access-key", testKey, "--user", "u1", "--endpoint", "http://h:1")
	if r.code != 0 {
		t.Fatalf("token: %+v", r)
	}
	v := &auth.Validator{Keys: []string{testKey}}
	if p, err := v.ValidateClient(strings.TrimSpace(r.stdout), "chat"); err != nil || p.UserID != "u1" {
		t.Fatalf("token does not validate: %v %+v", err, p)
	}
	r = runCLI(ctx, "", map[string]string{"SIGNALBOX_ACCESS_KEY": testKey + ",second"}, "token", "--rest", "/api/hubs/chat/:send", "--endpoint", "http://h:1")
	if _, err := v.ValidateREST(strings.TrimSpace(r.stdout), "/api/hubs/chat/:send"); r.code != 0 || err != nil {
		t.Fatalf("REST token with the key from the environment: %+v %v", r, err)
	}
	if r := runCLI(ctx, "", nil, "token", "--hub", "chat"); r.code != exitConfig || !strings.Contains(r.stderr, "--access-key") {
		t.Fatalf("token without key: %+v", r)
	}
}

func TestFormatVersion(t *testing.T) {
	info := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-12-03T08:00:00Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	if got, want := formatVersion(info), "v1.2.3 (revision 0123abcd (modified), 2026-12-03T08:00:00Z, go1.26.8)"; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
	if got, want := formatVersion(&debug.BuildInfo{GoVersion: "go1.26.8"}), "(devel) (no VCS revision recorded, go1.26.8)"; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
}

// TestVersionShowsRevision builds the command from a git clone of the committed tree
// (a plain `go build`, no -ldflags) and checks that `version` names the commit. A
// clone, because the Go toolchain does not stamp VCS information in a git worktree.
func TestVersionShowsRevision(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	root, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("git: %v", err)
	}
	dir := t.TempDir()
	sh := func(d string, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = d
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	sh(dir, "git", "init", "-q")
	sh(dir, "git", "fetch", "-q", "--depth=1", strings.TrimSpace(string(root)), "HEAD")
	sh(dir, "git", "checkout", "-q", "FETCH_HEAD")
	rev := sh(dir, "git", "rev-parse", "HEAD")
	bin := filepath.Join(t.TempDir(), "signalbox")
	sh(dir, "go", "build", "-buildvcs=true", "-trimpath", "-o", bin, "./cmd/signalbox")
	out := sh(dir, bin, "version")
	if !regexp.MustCompile(`^signalbox \S+ \(revision ` + rev + `, `).MatchString(out) {
		t.Fatalf("version printed %q, want revision %s", out, rev)
	}
	if flagOut := sh(dir, bin, "--version"); flagOut != out {
		t.Fatalf("--version printed %q, version %q", flagOut, out)
	}
}

// serveOnce runs serve with args until it is ready, then stops it; it returns stdout
// and stderr.
func serveOnce(t *testing.T, env map[string]string, args ...string) (endpoint, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	readyc := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	a := &app{stdout: &out, stderr: &errb, getenv: func(k string) string { return env[k] }, ready: func(ep string) { readyc <- ep }}
	go func() { done <- a.run(ctx, append([]string{"serve"}, args...)) }()
	select {
	case endpoint = <-readyc:
	case code := <-done:
		t.Fatalf("exited %d: %s", code, errb.String())
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}
	resp, err := http.Get(strings.Replace(endpoint, "localhost", "127.0.0.1", 1) + "/api/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("health: %v %v", resp, err)
	}
	resp.Body.Close()
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
	return endpoint, out.String(), errb.String()
}

var connString = regexp.MustCompile(`^Endpoint=(http://[^;]+);AccessKey=([A-Za-z0-9+/]{44});Version=1\.0;\n$`)

// TestServeKeepsTheGeneratedKey: without --access-key the key is generated once,
// kept in the state file and printed the same on every start (issue 10: every start
// made a new key, so local.settings.json had to change after each restart).
func TestServeKeepsTheGeneratedKey(t *testing.T) {
	stateFile := filepath.Join(t.TempDir(), "state", "state.json")
	env := map[string]string{"SIGNALBOX_NODE_ID": "n1", "SIGNALBOX_STATE_FILE": stateFile}
	endpoint, out, logs := serveOnce(t, env, "--listen", "127.0.0.1:0", "--redis-url", "redis://127.0.0.1:1/0")
	m := connString.FindStringSubmatch(out)
	if m == nil || m[1] != endpoint {
		t.Fatalf("stdout %q (endpoint %s)", out, endpoint)
	}
	key := m[2]
	if !strings.Contains(logs, stateFile) || strings.Contains(logs, key) {
		t.Fatalf("the log does not name the state file, or shows the key: %s", logs)
	}
	if st, err := os.Stat(stateFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v", st, err)
	}
	_, out, logs = serveOnce(t, env, "--listen", "127.0.0.1:0")
	if m := connString.FindStringSubmatch(out); m == nil || m[2] != key || !strings.Contains(logs, "access key from the state file") {
		t.Fatalf("second start printed %q, want the key %s again (logs %s)", out, key, logs)
	}
	// --access-key wins, and then nothing is printed.
	_, out, _ = serveOnce(t, env, "--listen", "127.0.0.1:0", "--access-key", testKey)
	if out != "" {
		t.Fatalf("with --access-key, stdout %q", out)
	}
	// A damaged state file is an error that names it, not a silent new key.
	if err := os.WriteFile(stateFile, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(context.Background(), "", env, "serve", "--listen", "127.0.0.1:0"); r.code != exitConfig || !strings.Contains(r.stderr, stateFile) {
		t.Fatalf("damaged state file: %+v", r)
	}
}

// TestServeOnAllInterfacesPrintsAUsableEndpoint: --listen 0.0.0.0:P printed
// Endpoint=http://0.0.0.0:P, which clients cannot dial.
func TestHealthCommand(t *testing.T) {
	endpoint := service(t)
	ctx := context.Background()
	if r := runCLI(ctx, "", nil, "health", "--url", endpoint+"/readyz"); r.code != 0 || r.stdout != "ok\n" {
		t.Fatalf("ready server: %+v", r)
	}
	if r := runCLI(ctx, "", nil, "health", "--url", endpoint+"/nothing"); r.code != exitError || !strings.Contains(r.stderr, "404") {
		t.Fatalf("404: %+v", r)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if r := runCLI(ctx, "", nil, "health", "--url", "http://"+addr+"/readyz"); r.code != exitError {
		t.Fatalf("nobody listening: %+v", r)
	}
}

func TestServeOnAllInterfacesPrintsAUsableEndpoint(t *testing.T) {
	env := map[string]string{"SIGNALBOX_STATE_FILE": filepath.Join(t.TempDir(), "state.json")}
	for _, listen := range []string{"0.0.0.0:0", ":0"} {
		endpoint, out, _ := serveOnce(t, env, "--listen", listen)
		if !regexp.MustCompile(`^http://localhost:\d+$`).MatchString(endpoint) || !strings.HasPrefix(out, "Endpoint="+endpoint+";") {
			t.Errorf("--listen %s: endpoint %q, stdout %q", listen, endpoint, out)
		}
	}
}

func TestServeNeverLogsASuppliedKey(t *testing.T) {
	sv := serveApp(t, nil, "--log-level", "debug", "--access-key", testKey)
	sv.stop(t)
	if sv.out.String() != "" || strings.Contains(sv.errb.String(), testKey) {
		t.Fatalf("stdout %q stderr %q", sv.out.String(), sv.errb.String())
	}
}

func TestServeMetricsOnItsOwnListener(t *testing.T) {
	readyc, metricsc := make(chan string, 1), make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	var errb bytes.Buffer
	a := &app{stderr: &errb, ready: func(ep string) { readyc <- ep }, metricsReady: func(addr string) { metricsc <- addr }}
	go func() {
		done <- a.run(ctx, []string{"serve", "--access-key", testKey, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"})
	}()
	var endpoint, metricsAddr string
	for endpoint == "" || metricsAddr == "" {
		select {
		case endpoint = <-readyc:
		case metricsAddr = <-metricsc:
		case code := <-done:
			t.Fatalf("exited %d: %s", code, errb.String())
		case <-time.After(5 * time.Second):
			t.Fatal("not ready")
		}
	}
	status := func(url string) int {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := status("http://" + metricsAddr + "/metrics"); code != http.StatusOK {
		t.Errorf("metrics listener: %d", code)
	}
	if code := status(endpoint + "/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics on the main listener with metrics-listen set: %d, want 404", code)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d", code)
	}
}

func TestFunctionsInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "app")
	state := filepath.Join(t.TempDir(), "state.json")
	env := map[string]string{"HOME": t.TempDir(), "XDG_STATE_HOME": filepath.Dir(state)}
	r := runCLI(context.Background(), "", env, "functions", "init", dir, "--endpoint", "http://localhost:9999/")
	if r.code != 0 {
		t.Fatal(r)
	}
	read := func(name string) map[string]any {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return v
	}
	host := read("host.json")
	if ch, _ := host["customHandler"].(map[string]any); ch == nil || ch["enableForwardingHttpRequest"] != false {
		t.Errorf("host.json: %v", host)
	}
	bindingTypes := func(name string) string {
		var types []string
		for _, b := range read(name)["bindings"].([]any) {
			types = append(types, b.(map[string]any)["type"].(string))
		}
		return strings.Join(types, ",")
	}
	if got := bindingTypes("negotiate/function.json"); got != "httpTrigger,http,signalRConnectionInfo" {
		t.Errorf("negotiate bindings %s", got)
	}
	if got := bindingTypes("broadcast/function.json"); got != "signalRTrigger,signalR" {
		t.Errorf("broadcast bindings %s", got)
	}
	// The connection string carries the key serve will use: the state file's.
	key, _, err := stableKey(filepath.Join(filepath.Dir(state), "signalbox", "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	values := read("local.settings.json")["Values"].(map[string]any)
	if cs := values["AzureSignalRConnectionString"]; cs != "Endpoint=http://localhost:9999;AccessKey="+key+";Version=1.0;" || values["FUNCTIONS_WORKER_RUNTIME"] != "custom" {
		t.Errorf("local.settings.json values %v", values)
	}
	if st, _ := os.Stat(filepath.Join(dir, "local.settings.json")); st.Mode().Perm() != 0o600 {
		t.Errorf("local.settings.json mode %v", st.Mode())
	}
	// main.go is the compiled template of internal/functionsinit.
	tmpl, _ := os.ReadFile(filepath.Join("..", "..", "internal", "functionsinit", "template", "main.go"))
	if got, _ := os.ReadFile(filepath.Join(dir, "main.go")); !bytes.Equal(got, tmpl) {
		t.Error("main.go is not the template")
	}
	// A second run does not overwrite without --force.
	if r := runCLI(context.Background(), "", env, "functions", "init", dir); r.code != exitError || !strings.Contains(r.stderr, "--force") {
		t.Fatalf("second init: %+v", r)
	}
	if r := runCLI(context.Background(), "", env, "functions", "init", dir, "--force", "--access-key", "k2-0123456789"); r.code != 0 {
		t.Fatalf("--force: %+v", r)
	}
	if cs := read("local.settings.json")["Values"].(map[string]any)["AzureSignalRConnectionString"]; !strings.Contains(cs.(string), "AccessKey=k2-0123456789;") {
		t.Errorf("--access-key: %v", cs)
	}
}

func TestDemo(t *testing.T) {
	var out, errb syncBuffer
	readyc := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	env := map[string]string{"SIGNALBOX_STATE_FILE": filepath.Join(t.TempDir(), "state.json")}
	a := &app{stdout: &out, stderr: &errb, getenv: func(k string) string { return env[k] }, ready: func(ep string) { readyc <- ep }}
	go func() { done <- a.run(ctx, []string{"demo", "--listen", "127.0.0.1:0"}) }()
	var endpoint string
	select {
	case endpoint = <-readyc:
	case code := <-done:
		t.Fatalf("exited %d: %s", code, errb.String())
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}
	stdout := out.String()
	if !strings.Contains(stdout, "Demo chat: "+endpoint+"/_/demo/") || !strings.Contains(stdout, "Live view: "+endpoint+"/_/trace#token=") {
		t.Fatalf("stdout %q", stdout)
	}
	resp, err := http.Get(endpoint + "/_/demo/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("chat page: %v %v", resp, err)
	}
	resp.Body.Close()
	// Negotiate through the demo function app: the service's URL and a token.
	req, _ := http.NewRequest("POST", endpoint+"/_/demo/api/negotiate", nil)
	req.Header.Set("x-ms-client-principal-id", "ann")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var info struct{ URL, AccessToken string }
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil || info.URL != endpoint+"/client/?hub=chat" || info.AccessToken == "" {
		t.Fatalf("negotiate: %v %+v", err, info)
	}
	resp.Body.Close()
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}
