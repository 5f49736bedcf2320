package management

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/signalbox-io/signalbox/connection"
)

// Setting names read by OptionsFromSettings (the extension's app settings).
const (
	SettingRetry         = "AzureSignalRRetry"             // section: Mode, MaxRetries, Delay, MaxDelay
	SettingClientTimeout = "AzureSignalRHttpClientTimeout" // TimeSpan, default 00:01:40
	// SettingHealthCheck is Signalbox's own section (the extension has no such setting):
	// Interval, Timeout, RetryDelay (TimeSpans or Go durations) and MaxRetries (an integer,
	// 0 = one attempt) of HealthOptions.
	SettingHealthCheck = "AzureSignalRHealthCheck"
)

// OptionsFromSettings reads the retry and timeout app settings of the extension:
// AzureSignalRRetry:Mode (Fixed|Exponential), :MaxRetries, :Delay, :MaxDelay — retries are
// on (defaults Fixed, 3, 00:00:00.8, 00:01:00) as soon as any of them is set — and
// AzureSignalRHttpClientTimeout; and the health checks of several endpoints:
// AzureSignalRHealthCheck:Interval, :Timeout, :RetryDelay and :MaxRetries (see
// HealthOptions for the defaults and the worst case they give). Durations are .NET
// TimeSpans ("00:01:40", "1.00:00:00") or Go durations ("100s"). Other ClientOptions fields
// are left zero.
func OptionsFromSettings(s *connection.Settings) (*ClientOptions, error) {
	o := &ClientOptions{}
	if err := healthFromSettings(s, &o.Health); err != nil {
		return nil, err
	}
	if v, ok := s.Get(SettingClientTimeout); ok && strings.TrimSpace(v) != "" {
		d, err := parseTimeSpan(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("setting %s: invalid value %q, want a positive TimeSpan such as 00:01:40", SettingClientTimeout, v)
		}
		o.Timeout = d
	}
	var set bool
	get := func(k string) string {
		v, ok := s.Get(SettingRetry + ":" + k)
		v = strings.TrimSpace(v)
		if ok && v != "" {
			set = true
		}
		return v
	}
	mode, maxRetries, delay, maxDelay := get("Mode"), get("MaxRetries"), get("Delay"), get("MaxDelay")
	if !set {
		return o, nil
	}
	o.Retry = RetryOptions{MaxRetries: 3, Delay: 800 * time.Millisecond, MaxDelay: time.Minute}
	switch strings.ToLower(mode) {
	case "", "fixed":
	case "exponential":
		o.Retry.Mode = RetryExponential
	default:
		return nil, fmt.Errorf("setting %s:Mode: invalid value %q, want Fixed or Exponential", SettingRetry, mode)
	}
	if maxRetries != "" {
		n, err := strconv.Atoi(maxRetries)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("setting %s:MaxRetries: invalid value %q, want a non-negative integer", SettingRetry, maxRetries)
		}
		o.Retry.MaxRetries = n
	}
	for _, f := range []struct {
		key, v string
		dst    *time.Duration
	}{{"Delay", delay, &o.Retry.Delay}, {"MaxDelay", maxDelay, &o.Retry.MaxDelay}} {
		if f.v == "" {
			continue
		}
		d, err := parseTimeSpan(f.v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("setting %s:%s: invalid value %q, want a positive TimeSpan such as 00:00:00.8", SettingRetry, f.key, f.v)
		}
		*f.dst = d
	}
	return o, nil
}

// healthFromSettings fills h from the AzureSignalRHealthCheck section.
func healthFromSettings(s *connection.Settings, h *HealthOptions) error {
	for _, f := range []struct {
		key string
		dst *time.Duration
	}{{"Interval", &h.Interval}, {"Timeout", &h.Timeout}, {"RetryDelay", &h.RetryDelay}} {
		v, _ := s.Get(SettingHealthCheck + ":" + f.key)
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		d, err := parseTimeSpan(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("setting %s:%s: invalid value %q, want a positive TimeSpan such as 00:00:05 or a duration such as 5s", SettingHealthCheck, f.key, v)
		}
		*f.dst = d
	}
	if v, _ := s.Get(SettingHealthCheck + ":MaxRetries"); strings.TrimSpace(v) != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return fmt.Errorf("setting %s:MaxRetries: invalid value %q, want a non-negative integer", SettingHealthCheck, v)
		}
		h.Retries = n
		if n == 0 {
			h.Retries = -1 // HealthOptions: 0 is the default, <0 is none
		}
	}
	return nil
}

// parseTimeSpan parses the .NET TimeSpan forms [-][d.]hh:mm[:ss[.fffffff]] and d (days),
// and Go durations.
func parseTimeSpan(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if !strings.Contains(s, ":") {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return mulDuration(n, 24*time.Hour)
		}
		return time.ParseDuration(s)
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var days int64
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, fmt.Errorf("invalid TimeSpan %q", s)
	}
	if d, h, ok := strings.Cut(parts[0], "."); ok {
		n, err := strconv.ParseInt(d, 10, 64)
		if err != nil || n < 0 || d == "" || d[0] == '+' {
			return 0, fmt.Errorf("invalid TimeSpan %q", s)
		}
		days, parts[0] = n, h
	}
	var frac time.Duration
	if len(parts) == 3 {
		if sec, f, ok := strings.Cut(parts[2], "."); ok {
			if f == "" || len(f) > 7 || strings.TrimLeft(f, "0123456789") != "" {
				return 0, fmt.Errorf("invalid TimeSpan %q", s)
			}
			ticks, _ := strconv.ParseInt((f + "0000000")[:7], 10, 64)
			frac, parts[2] = time.Duration(ticks)*100, sec
		}
	}
	limits := []int64{23, 59, 59}
	units := []time.Duration{time.Hour, time.Minute, time.Second}
	total := frac
	for i, p := range parts {
		if p == "" || strings.TrimLeft(p, "0123456789") != "" || len(p) > 2 {
			return 0, fmt.Errorf("invalid TimeSpan %q", s)
		}
		n, _ := strconv.ParseInt(p, 10, 64)
		if n > limits[i] {
			return 0, fmt.Errorf("invalid TimeSpan %q", s)
		}
		total += time.Duration(n) * units[i]
	}
	d, err := mulDuration(days, 24*time.Hour)
	if err != nil || d > math.MaxInt64-total {
		return 0, fmt.Errorf("TimeSpan %q out of range", s)
	}
	total += d
	if neg {
		total = -total
	}
	return total, nil
}

func mulDuration(n int64, unit time.Duration) (time.Duration, error) {
	if n > int64(math.MaxInt64/unit) || n < int64(math.MinInt64/unit) {
		return 0, errors.New("duration out of range")
	}
	return time.Duration(n) * unit, nil
}
