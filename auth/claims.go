package auth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// parsedClaims is the payload: the members in token order. A map would lose the
// order and silently keep the last of duplicate names.
type parsedClaims struct {
	names  []string
	values []json.RawMessage
}

func (c *parsedClaims) get(name string) (json.RawMessage, bool) {
	for i, n := range c.names {
		if n == name {
			return c.values[i], true
		}
	}
	return nil, false
}

// Bounds of exp: year 1 to the end of year 9999. Anything outside is refused rather
// than converted, so no overflow can turn a huge exp into a past or future time.
const (
	minExp = -62135596800
	maxExp = 253402300799
)

func (c *parsedClaims) expiry() (time.Time, error) {
	raw, ok := c.get("exp")
	if !ok {
		return time.Time{}, fmt.Errorf("%w: exp is required", ErrMalformed)
	}
	s := string(raw)
	if s == "" || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) {
		return time.Time{}, fmt.Errorf("%w: exp is not a number", ErrMalformed)
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < minExp || n > maxExp {
			return time.Time{}, fmt.Errorf("%w: exp is out of range", ErrMalformed)
		}
		return time.Unix(n, 0), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < minExp || f > maxExp {
		return time.Time{}, fmt.Errorf("%w: exp is out of range", ErrMalformed)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}

func (c *parsedClaims) audiences() ([]string, error) {
	raw, ok := c.get("aud")
	if !ok {
		return nil, fmt.Errorf("%w: aud is required", ErrAudience)
	}
	if s, ok := jsonString(raw); ok {
		return []string{s}, nil
	}
	elems, ok := jsonArray(raw)
	if !ok {
		return nil, fmt.Errorf("%w: aud is neither a string nor an array of strings", ErrMalformed)
	}
	out := make([]string, len(elems))
	for i, e := range elems {
		if out[i], ok = jsonString(e); !ok {
			return nil, fmt.Errorf("%w: aud is neither a string nor an array of strings", ErrMalformed)
		}
	}
	return out, nil
}

// userID follows the service: asrs.s.uid wins over nameid, which wins over sub.
func (c *parsedClaims) userID() string {
	for _, name := range []string{ClaimUserID, ClaimNameID, ClaimNameIdentifierURI, "sub"} {
		raw, ok := c.get(name)
		if !ok {
			continue
		}
		for _, v := range claimValues(raw) {
			if v != "" {
				return v
			}
		}
	}
	return ""
}

func (c *parsedClaims) list() []Claim {
	out := make([]Claim, 0, len(c.names))
	for i, n := range c.names {
		for _, v := range claimValues(c.values[i]) {
			out = append(out, Claim{Type: n, Value: v})
		}
	}
	return out
}

// claimValues renders a claim value as text; an array gives one value per element.
func claimValues(raw json.RawMessage) []string {
	if elems, ok := jsonArray(raw); ok {
		out := make([]string, len(elems))
		for i, e := range elems {
			out[i] = scalarText(e)
		}
		return out
	}
	return []string{scalarText(raw)}
}

func scalarText(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		s, _ := jsonString(raw)
		return s
	case 'n':
		return ""
	case '{', '[':
		var b bytes.Buffer
		if json.Compact(&b, raw) == nil {
			return b.String()
		}
	}
	return string(raw) // numbers and booleans keep their JSON text
}
