package auth

import (
	"strings"
	"testing"
)

// Known vectors, computed independently with
//
//	printf '%s' conn-1 | openssl dgst -sha256 -hmac 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFG='
//	printf '%s' conn-1 | openssl dgst -sha256 -hmac 'secondary-key'
const (
	vectorPrimary   = "a5aec173b09d67a01a6c64efb697a16115b5844785758e428011017eb4245ce5"
	vectorSecondary = "83e4539b4b54046f82358a2756701bf60b3f82a33d9f8284084fa3584667651f"
)

func TestUpstreamSignatureVectors(t *testing.T) {
	one := UpstreamSignature([]string{testKey}, "conn-1")
	if want := "sha256=" + strings.ToUpper(vectorPrimary); one != want {
		t.Errorf("one key: got %s, want %s", one, want)
	}
	two := UpstreamSignature([]string{testKey, testKey2}, "conn-1")
	if want := "sha256=" + strings.ToUpper(vectorPrimary) + ",sha256=" + strings.ToUpper(vectorSecondary); two != want {
		t.Errorf("two keys: got %s, want %s", two, want)
	}
	if got := UpstreamSignature([]string{testKey, "", testKey}, "conn-1"); got != one {
		t.Errorf("empty and repeated keys: got %s, want %s", got, one)
	}
	if got := UpstreamSignature(nil, "conn-1"); got != "" {
		t.Errorf("no keys: %q", got)
	}
}

func TestVerifyUpstreamSignature(t *testing.T) {
	both := []string{testKey, testKey2}
	cases := []struct {
		name   string
		header string
		keys   []string
		want   bool
	}{
		{"primary, lower hex", "sha256=" + vectorPrimary, both, true},
		{"primary, upper hex", "sha256=" + strings.ToUpper(vectorPrimary), both, true},
		{"prefix upper case", "SHA256=" + vectorPrimary, both, true},
		{"two entries, receiver knows the secondary", UpstreamSignature(both, "conn-1"), []string{testKey2}, true},
		{"two entries, receiver knows the primary", UpstreamSignature(both, "conn-1"), []string{testKey}, true},
		{"one valid of two", "sha256=00ff, sha256=" + vectorSecondary, both, true},
		{"extra spaces", "  sha256=" + vectorPrimary + "  ,  ", both, true},
		{"receiver key rotated away", UpstreamSignature([]string{testKey}, "conn-1"), []string{"new-primary", testKey2}, false},
		{"both invalid", "sha256=00ff,sha256=" + strings.Repeat("0", 64), both, false},
		{"other connection", UpstreamSignature(both, "conn-2"), both, false},
		{"missing prefix", vectorPrimary, both, false},
		{"other prefix", "sha1=" + vectorPrimary, both, false},
		{"truncated", "sha256=" + vectorPrimary[:63], both, false},
		{"empty header", "", both, false},
		{"only commas", ",,,", both, false},
		{"no keys", "sha256=" + vectorPrimary, nil, false},
		{"only empty key", UpstreamSignature([]string{""}, "conn-1"), []string{""}, false},
	}
	for _, c := range cases {
		if got := VerifyUpstreamSignature(c.header, c.keys, "conn-1"); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}
