package httpwire

import (
	"fmt"
	"testing"
)

func TestToken(t *testing.T) {
	for in, want := range map[string]bool{
		"Content-Length": true, "x_a.b~c!": true, "": false, "a b": false, "a:b": false,
		"é": false, "a\x00": false, "(a)": false,
	} {
		if got := Token([]byte(in)); got != want {
			t.Errorf("Token(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestText(t *testing.T) {
	for in, want := range map[string]bool{
		"": true, "text/plain; charset=utf-8": true, "a\tb": true,
		"a\rb": false, "a\nb": false, "\x7f": false, "é": false,
	} {
		if got := Text([]byte(in)); got != want {
			t.Errorf("Text(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestDigits(t *testing.T) {
	for in, want := range map[string]bool{"0": true, "0123": true, "": false, "+1": false, "1 ": false, "1a": false} {
		if got := Digits([]byte(in)); got != want {
			t.Errorf("Digits(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestEqualFold(t *testing.T) {
	for _, c := range []struct {
		b, lower string
		want     bool
	}{
		{"Content-Length", "content-length", true},
		{"CLOSE", "close", true},
		{"close", "close", true},
		{"closed", "close", false},
		{"clos", "close", false},
		{"Kose", "close", false},
		{"\xc5\xbf", "\xc5\xbf", true}, // bytes beyond ASCII compare as they are
	} {
		if got := EqualFold([]byte(c.b), c.lower); got != c.want {
			t.Errorf("EqualFold(%q, %q) = %v, want %v", c.b, c.lower, got, c.want)
		}
	}
}

func ExampleEqualFold() {
	fmt.Println(EqualFold([]byte("Transfer-Encoding"), "transfer-encoding"))
	// Output: true
}
