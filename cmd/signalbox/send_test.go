package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestSendCommand drives `signalbox send` against an in-process server and a
// connected client.
func TestSendCommand(t *testing.T) {
	const key = testKey
	endpoint := service(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ann := listen(ctx, t, endpoint, "ann")
	ready(ctx, t, endpoint, ann, "ann")
	run := func(args ...string) (int, string) {
		r := runCLI(ctx, "", nil, append([]string{"send"}, args...)...)
		return r.code, r.stderr
	}
	if code, out := run("--endpoint", endpoint, "--access-key", key, "--hub", "chat", "--target", "newMessage",
		"--user", "ann", "hello", "42", `{"a":[1]}`); code != 0 {
		t.Fatalf("send: exit %d: %s", code, out)
	}
	if target, got := ann.next(ctx, t); target != "newMessage" || got != `["hello",42,{"a":[1]}]` {
		t.Fatalf("received %s %s", target, got)
	}

	cs := "Endpoint=" + endpoint + ";AccessKey=" + key + ";Version=1.0;"
	if code, out := run("--connection-string", cs, "--hub", "chat", "--target", "t", "--group", "g", "x"); code != 0 {
		t.Fatalf("send to a group: exit %d: %s", code, out)
	}
	for _, bad := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--hub", "chat", "--target", "t"}, exitConfig, "--access-key"},
		{[]string{"--access-key", key, "--target", "t"}, exitConfig, "--hub and --target"},
		{[]string{"--access-key", key, "--hub", "chat", "--target", "t", "--user", "u", "--group", "g"}, exitConfig, "at most one"},
		{[]string{"--connection-string", cs, "--access-key", key, "--hub", "chat", "--target", "t"}, exitConfig, "not both"},
		{[]string{"--endpoint", endpoint, "--access-key", "wrong", "--hub", "chat", "--target", "t"}, exitError, "401"},
	} {
		code, out := run(bad.args...)
		if code != bad.code || !strings.Contains(out, bad.want) {
			t.Errorf("send %v: exit %d %q, want %d and %q", bad.args, code, out, bad.code, bad.want)
		}
		if strings.Contains(out, key) {
			t.Errorf("send %v printed the access key", bad.args)
		}
	}
}

func TestBenchCommandFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--scenario", "nope"},
		{"--clients", "20000"},
		{"--protocol", "xml"},
		{"--transport", "sse", "--protocol", "messagepack"},
		{"extra"},
	} {
		if r := runCLI(context.Background(), "", nil, append([]string{"bench"}, args...)...); r.code != exitConfig {
			t.Errorf("bench %v: %+v", args, r)
		}
	}
}
