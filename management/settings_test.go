package management

import (
	"strings"
	"testing"
	"time"

	"github.com/signalbox-io/signalbox/connection"
)

func TestParseTimeSpan(t *testing.T) {
	good := map[string]time.Duration{
		"00:01:40":         100 * time.Second,
		"00:00:00.8":       800 * time.Millisecond,
		"00:00:00.0000001": 100 * time.Nanosecond,
		"1.02:03:04.5":     26*time.Hour + 3*time.Minute + 4500*time.Millisecond,
		"01:30":            90 * time.Minute,
		"2":                48 * time.Hour,
		"-00:00:01":        -time.Second,
		"100s":             100 * time.Second,
		" 1m30s ":          90 * time.Second,
	}
	for in, want := range good {
		got, err := parseTimeSpan(in)
		if err != nil || got != want {
			t.Errorf("parseTimeSpan(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "abc", "1:2:3:4", "24:00:00", "00:60:00", "00:00:60", "00:00:00.", "00:00:00.12345678",
		"x.01:00:00", "+1.00:00:00", "00:-1:00", "999999999999.00:00:00", "99999999999999"} {
		if d, err := parseTimeSpan(in); err == nil {
			t.Errorf("parseTimeSpan(%q) = %v, no error", in, d)
		}
	}
}

func FuzzParseTimeSpan(f *testing.F) {
	for _, s := range []string{"00:01:40", "00:00:00.8", "1.02:03:04.5", "-00:00:01", "2", "100s", "23:59:59.9999999", "10675199.02:48:05.4775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseTimeSpan(s)
		if err != nil {
			return
		}
		if strings.Contains(s, ":") && !strings.HasPrefix(strings.TrimSpace(s), "-") && d < 0 {
			t.Fatalf("%q parsed to negative %v", s, d)
		}
	})
}

func TestOptionsFromSettings(t *testing.T) {
	o, err := OptionsFromSettings(connection.FromMap(map[string]string{"Other": "1"}))
	if err != nil || o.Retry.MaxRetries != 0 || o.Timeout != 0 {
		t.Errorf("no settings: %+v, %v", o, err)
	}
	o, err = OptionsFromSettings(connection.FromMap(map[string]string{
		"AzureSignalRRetry__Mode":       "exponential",
		"AzureSignalRHttpClientTimeout": "00:00:30",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := RetryOptions{MaxRetries: 3, Delay: 800 * time.Millisecond, MaxDelay: time.Minute, Mode: RetryExponential}
	if o.Retry != want || o.Timeout != 30*time.Second {
		t.Errorf("got %+v", o)
	}
	o, err = OptionsFromSettings(connection.FromMap(map[string]string{
		"azuresignalrretry:maxretries": "5", "AzureSignalRRetry:Delay": "00:00:02", "AzureSignalRRetry:MaxDelay": "00:00:10",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if want := (RetryOptions{MaxRetries: 5, Delay: 2 * time.Second, MaxDelay: 10 * time.Second}); o.Retry != want {
		t.Errorf("got %+v", o.Retry)
	}
	for k, v := range map[string]string{
		"AzureSignalRRetry:Mode":        "Linear",
		"AzureSignalRRetry:MaxRetries":  "-1",
		"AzureSignalRRetry:Delay":       "soon",
		"AzureSignalRRetry:MaxDelay":    "00:00:00",
		"AzureSignalRHttpClientTimeout": "-00:00:05",
	} {
		if _, err := OptionsFromSettings(connection.FromMap(map[string]string{k: v})); err == nil || !strings.Contains(err.Error(), "setting ") {
			t.Errorf("%s=%s: error %v", k, v, err)
		}
	}
}
