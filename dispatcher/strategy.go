package dispatcher

import (
	"math/rand/v2"

	"github.com/llmq/llmq/config"
	"github.com/llmq/llmq/schema"
)

// pick chooses among candidates (workers with a free slot, all of the
// lowest order present) by strategy. It returns nil only when candidates
// is empty.
func pick(strategy string, cands []*worker, rng *rand.Rand, buffer float64) *worker {
	switch len(cands) {
	case 0:
		return nil
	case 1:
		return cands[0]
	}
	switch strategy {
	case config.LeastBusy:
		return leastBusy(cands, rng)
	case config.LatencyBased:
		return fastest(cands, rng, buffer)
	case config.UsageBased:
		return leastUsed(cands, rng)
	case config.CostBased:
		return cheapest(cands, rng)
	case config.WeightedShuffle:
		return weighted(cands, rng, func(w *worker) float64 {
			wt := w.hb.Weight
			if wt <= 0 {
				wt = 1
			}
			return wt * float64(w.free())
		})
	default:
		return weighted(cands, rng, func(w *worker) float64 { return w.hb.Weight })
	}
}

// weighted picks at random in proportion to weight; when no weight is
// positive, uniformly (LiteLLM's simple-shuffle).
func weighted(cands []*worker, rng *rand.Rand, weight func(*worker) float64) *worker {
	var total float64
	for _, w := range cands {
		if wt := weight(w); wt > 0 {
			total += wt
		}
	}
	if total <= 0 {
		return cands[rng.IntN(len(cands))]
	}
	r := rng.Float64() * total
	for _, w := range cands {
		if wt := weight(w); wt > 0 {
			if r -= wt; r < 0 {
				return w
			}
		}
	}
	return cands[len(cands)-1]
}

// leastBusy picks the worker with the lowest share of its capacity in use,
// counting the jobs this dispatcher sent that the worker's last beat did
// not include; ties are broken at random so equal workers share the load.
func leastBusy(cands []*worker, rng *rand.Rand) *worker {
	var best *worker
	var bestLoad float64
	ties := 0
	for _, w := range cands {
		load := float64(w.estimate()) / float64(w.hb.Capacity)
		switch {
		case best == nil || load < bestLoad:
			best, bestLoad, ties = w, load, 1
		case load == bestLoad:
			ties++
			if rng.IntN(ties) == 0 {
				best = w
			}
		}
	}
	return best
}

// fastest implements latency-based routing: a worker with no recent calls
// is tried first (so new workers get probed); otherwise the lowest latency
// per output token, chosen at random among those within buffer of the
// best (LiteLLM's lowest_latency_buffer).
func fastest(cands []*worker, rng *rand.Rand, buffer float64) *worker {
	var untried []*worker
	best := -1.0
	for _, w := range cands {
		if w.hb.Samples == 0 {
			untried = append(untried, w)
			continue
		}
		if l := w.latency(); best < 0 || l < best {
			best = l
		}
	}
	if len(untried) > 0 {
		return untried[rng.IntN(len(untried))]
	}
	limit := best * (1 + buffer)
	n := 0
	var chosen *worker
	for _, w := range cands {
		if w.latency() <= limit {
			n++
			if rng.IntN(n) == 0 {
				chosen = w
			}
		}
	}
	return chosen
}

// leastUsed implements usage-based routing (LiteLLM's usage-based-routing
// and -v2): the deployment with the lowest share of its rpm or tpm limit
// in use (collect has skipped those at a limit and left each candidate's
// usage in rel and tokens); among equal shares — deployments without
// limits count 0 — the fewest tokens in the window, as LiteLLM picks; then
// at random.
func leastUsed(cands []*worker, rng *rand.Rand) *worker {
	var best *worker
	ties := 0
	for _, w := range cands {
		switch {
		case best == nil || w.rel < best.rel || (w.rel == best.rel && w.tokens < best.tokens):
			best, ties = w, 1
		case w.rel == best.rel && w.tokens == best.tokens:
			ties++
			if rng.IntN(ties) == 0 {
				best = w
			}
		}
	}
	return best
}

// unpricedCost is what cost-based routing takes a token to cost on a
// deployment without input_cost_per_token or output_cost_per_token:
// LiteLLM's figure for a model missing from its price map ($5), so that
// unpriced deployments come after every priced one. Ollama deployments
// are free, as LiteLLM's map lists Ollama's models.
const unpricedCost = 5.0

// costOf is a deployment's price per input token plus per output token,
// as LiteLLM's cost-based routing ranks deployments.
func costOf(hb *schema.Heartbeat) float64 {
	return price(hb.InputCostPerToken, hb.Provider) + price(hb.OutputCostPerToken, hb.Provider)
}

func price(v float64, provider string) float64 {
	switch {
	case v > 0:
		return v
	case provider == "ollama":
		return 0
	}
	return unpricedCost
}

// cheapest implements cost-based routing: the lowest price per token among
// the deployments under their limits (collect has skipped the others);
// ties at random.
func cheapest(cands []*worker, rng *rand.Rand) *worker {
	var best *worker
	var bestCost float64
	ties := 0
	for _, w := range cands {
		c := costOf(&w.hb)
		switch {
		case best == nil || c < bestCost:
			best, bestCost, ties = w, c, 1
		case c == bestCost:
			ties++
			if rng.IntN(ties) == 0 {
				best = w
			}
		}
	}
	return best
}
