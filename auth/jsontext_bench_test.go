//go:build goexperiment.jsonv2

package auth

// decodeObject (jsonscan.go) measured against jsontext doing the same job: the members
// of a token's claims object in order, values raw, duplicate names refused. Run with
// GOEXPERIMENT=jsonv2 (docs/dependencies.md has the figures).

import (
	"bytes"
	"encoding/json"
	"encoding/json/jsontext"
	"errors"
	"testing"
)

var benchClaims = []byte(`{"aud":"http://localhost:8888/client/?hub=chat","exp":1796373753,"iat":1796287353,"nbf":1796287353,"asrs.s.uid":"alice","role":["admin","user"],"nameid":"alice@example.com"}`)

func BenchmarkClaimsHandWritten(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := decodeObject(benchClaims); err != nil {
			b.Fatal(err)
		}
	}
}

func decodeWithJSONText(dec *jsontext.Decoder, r *bytes.Reader, data []byte) (names []string, values []json.RawMessage, err error) {
	r.Reset(data)
	dec.Reset(r)
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, nil, err
	}
	if tok.Kind() != '{' {
		return nil, nil, errNotObject
	}
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return nil, nil, err // a duplicate name is an error here
		}
		name := tok.String() // before the next read voids the token
		v, err := dec.ReadValue()
		if err != nil {
			return nil, nil, err
		}
		names = append(names, name)
		values = append(values, json.RawMessage(bytes.Clone(v)))
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, nil, err
	}
	if _, err := dec.ReadToken(); err == nil {
		return nil, nil, errors.New("trailing data")
	}
	return names, values, nil
}

func BenchmarkClaimsJSONText(b *testing.B) {
	b.ReportAllocs()
	r := bytes.NewReader(nil)
	dec := jsontext.NewDecoder(r)
	for b.Loop() {
		names, _, err := decodeWithJSONText(dec, r, benchClaims)
		if err != nil || len(names) != 7 {
			b.Fatal(err, names)
		}
	}
}

func TestJSONTextAgrees(t *testing.T) {
	r := bytes.NewReader(nil)
	dec := jsontext.NewDecoder(r)
	n1, v1, err1 := decodeObject(benchClaims)
	n2, v2, err2 := decodeWithJSONText(dec, r, benchClaims)
	if err1 != nil || err2 != nil || len(n1) != len(n2) || len(v1) != len(v2) {
		t.Fatal(err1, err2, n1, n2)
	}
	for i := range n1 {
		if n1[i] != n2[i] || string(v1[i]) != string(v2[i]) {
			t.Fatalf("%d: %s=%s vs %s=%s", i, n1[i], v1[i], n2[i], v2[i])
		}
	}
	dup := []byte(`{"a":1,"a":2}`)
	if _, _, err := decodeObject(dup); err == nil {
		t.Fatal("decodeObject accepted a duplicate")
	}
	if _, _, err := decodeWithJSONText(dec, r, dup); err == nil {
		t.Fatal("jsontext accepted a duplicate")
	}
}
