package bench

import "testing"

// S2's rate is judged as every call answered at the offered rate, give or take the
// calls in flight at the window's edges (11,998/s with every call answered failed
// before).
func TestCheckS2(t *testing.T) {
	for _, c := range []struct {
		r    Result
		want bool
	}{
		{Result{DeliveriesPerS: 11998, P99Ms: 15}, true},
		{Result{DeliveriesPerS: 12010, P99Ms: 19.9}, true},
		{Result{DeliveriesPerS: 12000, P99Ms: 20}, false},
		{Result{DeliveriesPerS: 11800, P99Ms: 10}, false},
		{Result{DeliveriesPerS: 12000, P99Ms: 10, Errors: 1}, false},
	} {
		if got, note := checkS2(&c.r, nil); got != c.want {
			t.Errorf("%+v: %v (%s), want %v", c.r, got, note, c.want)
		}
	}
}
