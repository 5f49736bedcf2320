package upstream

import (
	"strings"
	"testing"
)

// A bad template is reported without its query (a function key ?code=) or password.
func TestRuleErrorsHideURLSecrets(t *testing.T) {
	for _, tmpl := range []string{
		"http://fn/api/{evnt}?code=s3cret",
		"ftp://fn/api?code=s3cret",
		"http://fn:port/api?code=s3cret",
		"http://user:s3cret@fn:port/api",
		"//fn/api?code=s3cret",
	} {
		_, err := New(Options{Rules: []Rule{{URLTemplate: tmpl}}})
		if err == nil {
			t.Fatalf("%s: no error", tmpl)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error reveals the secret: %v", err)
		}
	}
}
