package config

import "math"

// Limits returns the deployment's usage limits, LiteLLM's rpm and tpm (0
// when unset), looked up as LiteLLM does: on the model_list entry, then in
// litellm_params, then in model_info.
func (d *Deployment) Limits() (rpm, tpm int64) {
	return firstLimit(int64(d.RPM), int64(d.LitellmParams.RPM), infoLimit(d.ModelInfo.Extra["rpm"])),
		firstLimit(int64(d.TPM), int64(d.LitellmParams.TPM), infoLimit(d.ModelInfo.Extra["tpm"]))
}

func firstLimit(vs ...int64) int64 {
	for _, v := range vs {
		if v > 0 {
			return v
		}
	}
	return 0
}

// infoLimit reads a model_info number as YAML decoded it; anything else
// (a string, a negative or fractional number) is no limit.
func infoLimit(v any) int64 {
	switch n := v.(type) {
	case int:
		return int64(max(n, 0))
	case int64:
		return max(n, 0)
	case uint64:
		return int64(min(n, math.MaxInt64))
	case float64:
		if n >= 1 && n < math.MaxInt64 {
			return int64(n)
		}
	}
	return 0
}
