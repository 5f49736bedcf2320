package odata

import (
	"errors"
	"strings"
	"testing"
)

func conns() []Connection {
	in := func(gs ...string) func(string) bool {
		return func(g string) bool {
			for _, x := range gs {
				if x == g {
					return true
				}
			}
			return false
		}
	}
	return []Connection{
		{ID: "c1", UserID: "alice", InGroup: in("a", "b")},
		{ID: "c2", UserID: "listener-1", InGroup: in("b")},
		{ID: "c3", UserID: "listener-2", InGroup: in()},
		{ID: "c4", UserID: "", InGroup: in("a", "it's")},
	}
}

func selected(t *testing.T, filter string) string {
	t.Helper()
	f, err := Parse(filter)
	if err != nil {
		t.Fatalf("Parse(%q): %v", filter, err)
	}
	var ids []string
	for _, c := range conns() {
		if f.Match(c) {
			ids = append(ids, c.ID)
		}
	}
	return strings.Join(ids, ",")
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct{ filter, want string }{
		{"", "c1,c2,c3,c4"},
		{"userId eq 'alice'", "c1"},
		{"'alice' eq userId", "c1"},
		{"userId ne 'alice'", "c2,c3,c4"},
		{"userId eq null", "c4"},
		{"userId ne null", "c1,c2,c3"},
		{"connectionId eq 'c3'", "c3"},
		{"startswith(userId, 'listener-')", "c2,c3"},
		{"startswith(connectionId, 'c')", "c1,c2,c3,c4"},
		{"'a' in groups", "c1,c4"},
		{"'it''s' in groups", "c4"},
		{"not ('a' in groups)", "c2,c3"},
		{"'a' in groups and 'b' in groups", "c1"},
		{"'a' in groups or 'b' in groups", "c1,c2,c4"},
		{"userId eq 'alice' or userId eq 'listener-2' and connectionId eq 'c9'", "c1"},
		{"(userId eq 'alice' or userId eq 'listener-2') and not connectionId eq 'c1'", "c3"},
		{"not not userId eq 'alice'", "c1"},
		{"  ( ( userId eq 'alice' ) )  ", "c1"},
		{"userId eq connectionId", ""},
		{"null eq null", "c1,c2,c3,c4"},
	} {
		if got := selected(t, tc.filter); got != tc.want {
			t.Errorf("%q selects %q, want %q", tc.filter, got, tc.want)
		}
	}
}

func TestRefused(t *testing.T) {
	for _, tc := range []struct{ filter, want string }{
		{"userId gt 'a'", `operator "gt" is not supported`},
		{"endswith(userId, 'x')", `function "endswith" is not supported`},
		{"contains(userId, 'x')", `function "contains" is not supported`},
		{"role eq 'admin'", `unknown field "role"`},
		{"groups eq 'a'", "groups can only be used"},
		{"userId in groups", "left side of 'in'"},
		{"'a' in ('a', 'b')", "only \"'<group>' in groups\""},
		{"userId eq 5", "number"},
		{"userId eq 'open", "not closed"},
		{"userId eq 'a' and", "expected a field"},
		{"(userId eq 'a'", "expected ')'"},
		{"userId eq 'a')", "unexpected"},
		{"userId", "expected eq, ne or in"},
		{"startswith(groups, 'a')", "startswith takes userId or connectionId"},
		{"startswith(userId)", "expected ','"},
		{"userId eq true", `literal "true" is not supported`},
		{"userId == 'a'", "unsupported character"},
		{strings.Repeat("(", MaxDepth+1) + "userId eq 'a'" + strings.Repeat(")", MaxDepth+1), "nested deeper"},
		{strings.Repeat("not ", MaxDepth+1) + "userId eq 'a'", "nested deeper"},
		{"userId eq '" + strings.Repeat("x", MaxLength) + "'", "longer than"},
	} {
		_, err := Parse(tc.filter)
		if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%.60q) = %v, want an error containing %q", tc.filter, err, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"userId eq 'alice'", "not ('a' in groups) or startswith(userId, 'x')", "userId eq null",
		"(connectionId ne 'c1' and 'g''1' in groups)", "userId gt 'a'", "'", "((", "not",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("error %v does not wrap ErrSyntax", err)
			}
			return
		}
		// The canonical form parses to itself, and selects the same connections.
		canon := flt.String()
		again, err := Parse(canon)
		if err != nil {
			t.Fatalf("canonical %q of %q does not parse: %v", canon, s, err)
		}
		if again.String() != canon {
			t.Fatalf("%q -> %q -> %q", s, canon, again.String())
		}
		for _, c := range conns() {
			if flt.Match(c) != again.Match(c) {
				t.Fatalf("%q and its canonical form %q disagree on %s", s, canon, c.ID)
			}
		}
	})
}
