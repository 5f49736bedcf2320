package rawquery

import (
	"slices"
	"strings"
	"testing"
)

func values(raw, name string, fold bool) []string {
	var out []string
	Each(raw, name, fold, func(v string) { out = append(out, v) })
	return out
}

func TestEach(t *testing.T) {
	for _, tc := range []struct {
		raw, name string
		fold      bool
		want      []string
	}{
		{"hub=a&Hub=b&x=1&hub=c", "hub", false, []string{"a", "c"}},
		{"hub=a&Hub=b&x=1&hub=c", "hub", true, []string{"a", "b", "c"}},
		{"h%75b=a%20b&hub", "hub", false, []string{"a b", ""}},
		{"hub=a;b&hub=%zz&hub=ok", "hub", false, []string{"ok"}}, // ';' and a bad escape are skipped, as url.ParseQuery does
		{"hu=a&&=b", "hub", true, nil},
	} {
		if got := values(tc.raw, tc.name, tc.fold); !slices.Equal(got, tc.want) {
			t.Errorf("Each(%q, %q, %v) = %q, want %q", tc.raw, tc.name, tc.fold, got, tc.want)
		}
	}
}

// A query past net/url's parameter limit is left to net/url, which then parses it as
// empty, so the fast path never accepts what url.ParseQuery refuses.
func TestEachPastTheParameterLimit(t *testing.T) {
	raw := "hub=a" + strings.Repeat("&x=1", maxParams)
	if got := values(raw, "hub", true); len(got) != 0 {
		t.Fatalf("got %q, want nothing", got)
	}
}
