package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes r as one line of JSON.
func WriteJSON(w io.Writer, r *Result) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteTable writes results as a readable table, one column per result.
func WriteTable(w io.Writer, results []*Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(name string, f func(r *Result) string) {
		fmt.Fprint(tw, name+"\t")
		for _, r := range results {
			fmt.Fprint(tw, f(r)+"\t")
		}
		fmt.Fprintln(tw)
	}
	num := func(v float64, prec int) string {
		if v == 0 {
			return "-"
		}
		return fmt.Sprintf("%.*f", prec, v)
	}
	suite := false
	for _, r := range results {
		suite = suite || r.Row != ""
	}
	if suite {
		row("row", func(r *Result) string { return r.Row })
		row("goal met", func(r *Result) string {
			switch {
			case r.GoalMet == nil:
				return "-"
			case *r.GoalMet:
				return "yes"
			}
			return "NO"
		})
	}
	row("scenario", func(r *Result) string { return r.Scenario })
	row("clients", func(r *Result) string { return fmt.Sprint(r.Clients) })
	row("transport / protocol", func(r *Result) string { return r.Transport + " / " + r.Protocol })
	row("payload B", func(r *Result) string { return fmt.Sprint(r.PayloadBytes) })
	row("measured s", func(r *Result) string { return num(r.DurationS, 1) })
	row("offered rate /s", func(r *Result) string { return num(r.RatePerS, 0) })
	row("closed-loop window", func(r *Result) string { return num(float64(r.Window), 0) })
	row("sent", func(r *Result) string { return fmt.Sprint(r.Sent) })
	row("slowest publish answer ms", func(r *Result) string { return num(r.PublishMaxMs, 1) })
	row("deliveries", func(r *Result) string { return fmt.Sprint(r.Deliveries) })
	row("deliveries /s", func(r *Result) string { return num(r.DeliveriesPerS, 0) })
	row("latency p50 ms", func(r *Result) string { return num(r.P50Ms, 2) })
	row("latency p90 ms", func(r *Result) string { return num(r.P90Ms, 2) })
	row("latency p99 ms", func(r *Result) string { return num(r.P99Ms, 2) })
	row("latency max ms", func(r *Result) string { return num(r.MaxMs, 2) })
	row("server CPU µs / delivery", func(r *Result) string { return num(r.ServerCPUUsPerDelivery, 2) })
	row("server CPU % of a core", func(r *Result) string { return num(r.ServerCPUPercent, 1) })
	row("bench CPU % of a core", func(r *Result) string { return num(r.LoadgenCPUPercent, 1) })
	row("bench CPU µs / connect", func(r *Result) string { return num(r.LoadgenCPUUsPerDelivery, 2) })
	row("bench processes", func(r *Result) string { return num(float64(r.LoadgenProcesses), 0) })
	row("server RSS B / conn", func(r *Result) string { return num(r.ServerRSSBytesPerConn, 0) })
	row("server RSS MiB", func(r *Result) string { return num(float64(r.ServerRSSBytes)/(1<<20), 1) })
	row("connects /s", func(r *Result) string { return num(r.ConnectPerS, 0) })
	row("connect p99 ms", func(r *Result) string { return num(r.ConnectP99Ms, 2) })
	row("floor deliveries /s", func(r *Result) string { return num(r.FloorDeliveriesPerS, 0) })
	row("floor CPU µs / delivery", func(r *Result) string { return num(r.FloorCPUUsPerDelivery, 2) })
	row("floor ratio", func(r *Result) string { return num(r.FloorRatio, 3) })
	row("paced floor deliveries /s", func(r *Result) string { return num(r.FloorPacedDeliveriesPerS, 0) })
	row("paced floor CPU µs / delivery", func(r *Result) string { return num(r.FloorPacedCPUUsPerDelivery, 2) })
	row("paced floor p99 ms", func(r *Result) string { return num(r.FloorPacedP99Ms, 2) })
	row("cluster nodes", func(r *Result) string { return num(float64(r.Nodes), 0) })
	row("one node deliveries /s", func(r *Result) string { return num(r.SingleDeliveriesPerS, 0) })
	row("cluster / one node", func(r *Result) string { return num(r.ClusterRatio, 3) })
	row("errors", func(r *Result) string {
		if r.Errors == 0 {
			return "0"
		}
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.ErrorDetail)) {
			parts = append(parts, fmt.Sprintf("%s=%d", k, r.ErrorDetail[k]))
		}
		return fmt.Sprintf("%d (%s)", r.Errors, strings.Join(parts, " "))
	})
	row("storm settled s", func(r *Result) string { return num(r.StormSettleS, 2) })
	row("storm drained s", func(r *Result) string { return num(r.StormDrainS, 2) })
	if err := tw.Flush(); err != nil {
		return err
	}
	if suite {
		fmt.Fprintln(w, "\ngoals:")
		for _, r := range results {
			met := "not met"
			if r.GoalMet != nil && *r.GoalMet {
				met = "met"
			}
			fmt.Fprintf(w, "  %-28s %s: %s (%s)\n", r.Row, met, r.Goal, r.Note)
		}
	}
	return nil
}
