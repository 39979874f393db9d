package main

import (
	"strings"
	"testing"
	"time"

	"github.com/llmq/llmq/schema"
)

func TestRender_DemandPerTierAndModel(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	snap := topSnapshot{Prefix: "llm", At: now, Queued: map[string]int{"coder": 9}, Workers: []topWorkerRow{
		{HB: schema.Heartbeat{Worker: "coder-gpu1-x", Tier: "coder", Model: "qwen", Host: "http://gpu1:11434", State: "ready", InFlight: 4, Capacity: 4, Loaded: []string{"qwen"}}},
		{HB: schema.Heartbeat{Worker: "coder-gpu2-y", Tier: "coder", Model: "qwen", Host: "http://gpu2:11434", State: "ready", Capacity: 4, Cold: true}},
		{HB: schema.Heartbeat{Worker: "chat-gpu2-z", Tier: "chat", Model: "llama", Host: "http://gpu2:11434", State: "ready", InFlight: 1, Capacity: 4}},
	}}
	got := render(snap)
	for _, want := range []string{
		"DEMAND       QUEUED  IN-FLIGHT  HOSTS WARM\n",
		"tier chat    0       1/4        1/1\n",
		"tier coder   9       4/8        1/2\n",
		"model llama  0       1/4        1/1\n",
		"model qwen   9       4/8        1/2\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("frame lacks %q:\n%s", want, got)
		}
	}
}

func TestResidencyText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		hb   schema.Heartbeat
		want string
	}{
		{schema.Heartbeat{}, "-"},
		{schema.Heartbeat{Cold: true}, "cold"},
		{schema.Heartbeat{Loaded: []string{"m"}}, "warm"},
		{schema.Heartbeat{Loaded: []string{"m"}, HostSlots: 4, HostInFlight: 3}, "warm host 3/4"},
	} {
		if got := residencyText(tc.hb); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.hb, got, tc.want)
		}
	}
}
