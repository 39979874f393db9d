package config

// Limits returns the deployment's usage limits, LiteLLM's rpm and tpm (0
// when unset), looked up as LiteLLM does: on the model_list entry, then in
// litellm_params, then in model_info.
func (d *Deployment) Limits() (rpm, tpm int64) {
	return firstLimit(int64(d.RPM), int64(d.LitellmParams.RPM), int64(d.ModelInfo.RPM)),
		firstLimit(int64(d.TPM), int64(d.LitellmParams.TPM), int64(d.ModelInfo.TPM))
}

func firstLimit(vs ...int64) int64 {
	for _, v := range vs {
		if v > 0 {
			return v
		}
	}
	return 0
}
