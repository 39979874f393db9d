package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/llmq/llmq/dispatcher"
	"github.com/llmq/llmq/schema"
)

// printDemand writes the scaling signal (dispatcher.ScalingSignal) of the
// workers' beats and the dispatchers' queues: per tier and per model, the
// jobs queued, in flight over slots, and the hosts that have the model
// loaded over the hosts. It writes nothing when no worker names a model.
func printDemand(w io.Writer, workers []schema.Heartbeat, queued map[string]int) {
	tiers, models := dispatcher.ScalingSignal(workers, queued)
	if len(models) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DEMAND\tQUEUED\tIN-FLIGHT\tHOSTS WARM")
	for _, rows := range []struct {
		kind string
		list []dispatcher.Demand
	}{{"tier", tiers}, {"model", models}} {
		for _, d := range rows.list {
			fmt.Fprintf(tw, "%s %s\t%d\t%d/%d\t%d/%d\n", rows.kind, d.Name, d.Queued, d.InFlight, d.Slots, d.HostsWarm, d.Hosts)
		}
	}
	tw.Flush()
}

// residencyText is a worker's residency for the status table: warm or
// cold (from its beats; a host budget adds the host's jobs over its
// slots), or "-" when its provider cannot tell.
func residencyText(hb schema.Heartbeat) string {
	s := "-"
	switch {
	case hb.Cold:
		s = "cold"
	case len(hb.Loaded) > 0 || hb.LoadMs > 0:
		s = "warm"
	}
	if hb.HostSlots > 0 {
		s += fmt.Sprintf(" host %d/%d", hb.HostInFlight, hb.HostSlots)
	}
	return s
}
