package server

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/signalbox-io/signalbox/auth"
	"github.com/signalbox-io/signalbox/internal/transport"
)

// FuzzReceive feeds arbitrary client bytes, split in two chunks, through the
// handshake and message path of a connection: it must never panic, and whatever
// happens the connection either stays usable or is closing.
func FuzzReceive(f *testing.F) {
	seeds := []string{
		"{\"protocol\":\"json\",\"version\":1}\x1e{\"type\":6}\x1e",
		"{\"protocol\":\"json\",\"version\":1}\x1e{\"type\":1,\"invocationId\":\"1\",\"target\":\"x\",\"arguments\":[]}\x1e",
		"{\"protocol\":\"json\",\"version\":1}\x1e{\"type\":4,\"invocationId\":\"1\",\"target\":\"x\",\"arguments\":[]}\x1e",
		"{\"protocol\":\"json\",\"version\":1}\x1e{\"type\":7}\x1e",
		"{\"protocol\":\"messagepack\",\"version\":1}\x1e\x02\x91\x06",
		"{\"protocol\":\"messagepack\",\"version\":1}\x1e\xff\xff\xff\xff\x0f",
		"{\"protocol\":\"json\",\"version\":1}\x1e{nope}\x1e",
		"{\"protocol\":\"xml\",\"version\":1}\x1e",
		"{\"protocol\":\"json\"",
		"\x1e\x1e\x1e",
		"",
	}
	for _, s := range seeds {
		f.Add([]byte(s), uint16(len(s)/2))
	}
	cfg := fastConfig()
	cfg.MaxMessageSize = 4096
	srv, err := New(cfg, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		c, _, _ := srv.newConn("chat", &auth.Principal{}, "", "127.0.0.1", 1)
		if first, _, msg := srv.attach(c, transport.LongPolling, ""); !first {
			t.Fatal(msg)
		}
		at := int(cut) % (len(data) + 1)
		for _, chunk := range [][]byte{data[:at], data[at:]} {
			if err := c.receive(chunk); err != nil {
				break
			}
		}
		if c.handshaken.Load() && c.Protocol() == nil {
			t.Fatal("handshaken without a protocol")
		}
		c.terminate("")
		srv.wg.Wait() // the long-polling cleanup goroutine
		if srv.Registry().ConnectionCount("chat") != 0 {
			t.Fatal("connection left in the registry")
		}
	})
}

// FuzzQueryValues compares queryValues, which scans the raw query, with what
// url.ParseQuery gives for the same key in any letter case: the same values (the
// order across spellings was a map's before, so the values are compared sorted).
func FuzzQueryValues(f *testing.F) {
	for _, s := range []string{
		"hub=chat&id=abc&access_token=eyJ.x.y",
		"HUB=Chat&Hub=other&negotiateVersion=1",
		"hub=a%20b&id=%zz&id=ok",
		"id=1;2&id=3&&=&hub",
		"h%75b=x&%68UB=y&+hub=z",
		"useStatefulReconnect=TRUE&usestatefulreconnect=false",
		"\u212Aey=1&key=2",
	} {
		f.Add(s, "hub")
		f.Add(s, "id")
	}
	f.Add("\u212Aey=1&key=2", "key")
	f.Fuzz(func(t *testing.T, raw, name string) {
		got := queryValues(raw, name)
		q, _ := url.ParseQuery(raw)
		var want []string
		for k, vs := range q {
			if strings.EqualFold(k, name) {
				want = append(want, vs...)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("queryValues(%q, %q) = %q, url.ParseQuery gives %q", raw, name, got, want)
		}
	})
}
