package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestIdentityCommand: the three lines README.md promises on stdout, a working token
// endpoint behind them, exit 0 on cancel.
func TestIdentityCommand(t *testing.T) {
	pr, pw := io.Pipe()
	a := &app{stdout: pw, stderr: io.Discard}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- a.run(ctx, []string{"identity", "--listen", "127.0.0.1:0", "--header", "hdr"})
		_ = pw.Close()
	}()

	lines := make(chan []string, 1)
	go func() {
		buf := make([]byte, 4096)
		var got string
		for strings.Count(got, "\n") < 3 {
			n, err := pr.Read(buf)
			if err != nil {
				break
			}
			got += string(buf[:n])
		}
		lines <- strings.Split(strings.TrimSpace(got), "\n")
		_, _ = io.Copy(io.Discard, pr)
	}()
	var ls []string
	select {
	case ls = <-lines:
	case <-time.After(10 * time.Second):
		t.Fatal("no output")
	}
	if len(ls) != 3 || !strings.HasPrefix(ls[0], "IDENTITY_ENDPOINT=http://127.0.0.1:") || ls[1] != "IDENTITY_HEADER=hdr" || !strings.HasPrefix(ls[2], "ISSUER=http://127.0.0.1:") {
		t.Fatalf("output %q", ls)
	}
	endpoint := strings.TrimPrefix(ls[0], "IDENTITY_ENDPOINT=")
	if endpoint != strings.TrimPrefix(ls[2], "ISSUER=")+"/msi/token" {
		t.Errorf("endpoint %q is not under the issuer %q", endpoint, ls[2])
	}
	req, _ := http.NewRequest(http.MethodGet, endpoint+"?api-version=2019-08-01&resource=https://signalr.azure.com", nil)
	req.Header.Set("X-IDENTITY-HEADER", "hdr")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("token endpoint: %d", res.StatusCode)
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("exit code %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("identity did not stop on cancel")
	}
}
