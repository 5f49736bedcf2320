package odata

import (
	"strings"
	"testing"
)

// TestLongChainCanonical: a long and-chain is flat in the input; its canonical form must
// parse again (binary nodes must not nest parentheses once per link).
func TestLongChainCanonical(t *testing.T) {
	s := "userId eq 'a'" + strings.Repeat(" and userId eq 'a'", 3*MaxDepth)
	f, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(f.String()); err != nil {
		t.Fatalf("canonical form of a %d-link chain: %v", 3*MaxDepth, err)
	}
}
