package bench

import (
	"math"
	"slices"
	"time"
)

// Summary describes a latency distribution, in microseconds.
type Summary struct {
	N      int     `json:"n"`
	MeanUs float64 `json:"mean_us"`
	P50Us  float64 `json:"p50_us"`
	P90Us  float64 `json:"p90_us"`
	P99Us  float64 `json:"p99_us"`
	P999Us float64 `json:"p999_us"`
	MaxUs  float64 `json:"max_us"`
}

// Summarize sorts ds in place and summarizes it.
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	slices.Sort(ds)
	var sum float64
	for _, d := range ds {
		sum += float64(d)
	}
	return Summary{
		N:      len(ds),
		MeanUs: sum / float64(len(ds)) / 1e3,
		P50Us:  us(Quantile(ds, 0.50)),
		P90Us:  us(Quantile(ds, 0.90)),
		P99Us:  us(Quantile(ds, 0.99)),
		P999Us: us(Quantile(ds, 0.999)),
		MaxUs:  us(ds[len(ds)-1]),
	}
}

// Quantile returns the q-quantile (0 < q ≤ 1) of sorted by nearest rank,
// or 0 for none.
func Quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

func us(d time.Duration) float64 { return float64(d) / 1e3 }
