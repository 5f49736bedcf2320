package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"
)

const signaturePrefix = "sha256="

// UpstreamSignature returns the X-ASRS-Signature value for connectionID:
// "sha256=" + HEX(HMAC-SHA256(key = UTF-8 of the access key, msg = UTF-8 of
// connectionID)) for each key, joined with ",". The hex is upper-case like the .NET
// service's; receivers compare case-insensitively. Signing with every key (primary
// and secondary) lets a receiver that knows only one of them accept the request, so
// rotating keys does not break upstream calls. Empty and repeated keys are skipped.
func UpstreamSignature(keys []string, connectionID string) string {
	var b strings.Builder
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if k == "" || seen[k] {
			continue
		}
		seen[k] = true
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(signaturePrefix)
		b.WriteString(strings.ToUpper(hex.EncodeToString(connectionMAC(k, connectionID))))
	}
	return b.String()
}

// VerifyUpstreamSignature reports whether header (an X-ASRS-Signature value) holds a
// valid signature of connectionID under any of keys: header is split on ',', each part
// trimmed, and compared case-insensitively and in constant time with the signature of
// each key. It returns false when no key is configured; callers that run without keys
// (identity-based connections) must decide to skip validation themselves.
func VerifyUpstreamSignature(header string, keys []string, connectionID string) bool {
	return MatchUpstreamSignature(header, UpstreamSignatures(keys, connectionID))
}

// UpstreamSignatures returns what VerifyUpstreamSignature compares a header with: the
// lower-case "sha256=<hex>" signature of connectionID under each non-empty key. A
// receiver that sees many requests of one connection can keep them (one HMAC per key
// and connection instead of per request) and check each header with
// MatchUpstreamSignature.
func UpstreamSignatures(keys []string, connectionID string) [][]byte {
	var want [][]byte
	for _, k := range keys {
		if k != "" {
			want = append(want, []byte(signaturePrefix+hex.EncodeToString(connectionMAC(k, connectionID))))
		}
	}
	return want
}

// MatchUpstreamSignature reports whether header holds one of want (from
// UpstreamSignatures): header is split on ',', each part trimmed, and compared
// case-insensitively and in constant time with each of want. It returns false when want
// is empty.
func MatchUpstreamSignature(header string, want [][]byte) bool {
	if len(want) == 0 {
		return false
	}
	ok := false
	var low [signatureLen]byte
	for part := range strings.SplitSeq(header, ",") {
		part = strings.TrimSpace(part)
		var got []byte
		if len(part) == signatureLen {
			got = low[:]
			for i := 0; i < len(part); i++ {
				c := part[i]
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				got[i] = c
			}
		} else {
			got = []byte(strings.ToLower(part)) // cannot match; compared all the same
		}
		for _, w := range want {
			// No early exit: the time taken does not depend on which entry matched.
			if subtle.ConstantTimeCompare(got, w) == 1 {
				ok = true
			}
		}
	}
	return ok
}

// signatureLen is the length of one "sha256=<hex>" signature.
const signatureLen = len(signaturePrefix) + 2*sha256.Size

func connectionMAC(key, connectionID string) []byte {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(connectionID))
	return m.Sum(nil)
}
