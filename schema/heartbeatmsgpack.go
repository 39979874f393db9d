package schema

import (
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// EncodeMsgpack writes the heartbeat by hand, the bytes the reflection
// codec wrote for its struct tags (see msgpackmap.go): a worker beats up
// to every few milliseconds, and every dispatcher and gateway reads every
// beat. The maps are written in Go's map order, as reflection wrote them.
func (h Heartbeat) EncodeMsgpack(e *msgpack.Encoder) error {
	w := mapWriter{e: e}
	w.begin(16 + h.optionalFields())
	w.str("worker", h.Worker)
	w.str("tier", h.Tier)
	w.str("deployment", h.Deployment)
	w.str("provider", h.Provider)
	w.str("model", h.Model)
	if h.Host != "" {
		w.str("host", h.Host)
	}
	w.str("subject", h.Subject)
	w.str("state", h.State)
	w.uint64("seq", h.Seq)
	w.int64("interval_ms", h.IntervalMs)
	w.int("capacity", h.Capacity)
	w.int("in_flight", h.InFlight)
	if h.Weight != 0 {
		w.float("weight", h.Weight)
	}
	if h.Order != 0 {
		w.int("order", h.Order)
	}
	w.float("latency_ms", h.LatencyMs)
	w.float("ms_per_token", h.MsPerToken)
	w.int("samples", h.Samples)
	w.uint64("completed", h.Completed)
	w.uint64("failed", h.Failed)
	if len(h.Received) > 0 {
		w.key("received")
		w.set(encodeStringMap(e, h.Received, (*msgpack.Encoder).EncodeUint64))
	}
	if len(h.Jobs) > 0 {
		w.key("jobs")
		w.set(encodeStringMap(e, h.Jobs, encodeUint64s))
	}
	if len(h.QueueAgeUs) > 0 {
		w.key("queue_age_us")
		w.set(encodeStringMap(e, h.QueueAgeUs, (*msgpack.Encoder).EncodeInt64))
	}
	h.encodeLimits(&w)
	if len(h.Tags) > 0 {
		w.strings("tags", h.Tags)
	}
	if h.MaxInputTokens != 0 {
		w.int("max_input_tokens", h.MaxInputTokens)
	}
	if h.Mode != "" {
		w.str("mode", h.Mode)
	}
	if h.Cold {
		w.bool("cold", true)
	}
	if len(h.Loaded) > 0 {
		w.strings("loaded", h.Loaded)
	}
	if h.LoadMs != 0 {
		w.float("load_ms", h.LoadMs)
	}
	if h.HostSlots != 0 {
		w.int("host_slots", h.HostSlots)
	}
	if h.HostInFlight != 0 {
		w.int("host_in_flight", h.HostInFlight)
	}
	return w.err
}

// optionalFields counts the omitempty fields that are set.
func (h *Heartbeat) optionalFields() int {
	return count(h.Host != "", h.Weight != 0, h.Order != 0, len(h.Received) > 0, len(h.Jobs) > 0,
		len(h.QueueAgeUs) > 0, h.CoolingUntilMs != 0, h.CoolingReason != "", h.RPM != 0, h.TPM != 0,
		h.RPMUsed != 0, h.TPMUsed != 0, h.RateFreesMs != 0, h.RateWindowMs != 0, h.InputCostPerToken != 0,
		h.OutputCostPerToken != 0, len(h.Tags) > 0, h.MaxInputTokens != 0, h.Mode != "", h.Cold,
		len(h.Loaded) > 0, h.LoadMs != 0, h.HostSlots != 0, h.HostInFlight != 0)
}

// encodeLimits writes the fields from cooling_until_ms to
// output_cost_per_token, each when set.
func (h *Heartbeat) encodeLimits(w *mapWriter) {
	if h.CoolingUntilMs != 0 {
		w.int64("cooling_until_ms", h.CoolingUntilMs)
	}
	if h.CoolingReason != "" {
		w.str("cooling_reason", h.CoolingReason)
	}
	if h.RPM != 0 {
		w.int64("rpm", h.RPM)
	}
	if h.TPM != 0 {
		w.int64("tpm", h.TPM)
	}
	if h.RPMUsed != 0 {
		w.int64("rpm_used", h.RPMUsed)
	}
	if h.TPMUsed != 0 {
		w.int64("tpm_used", h.TPMUsed)
	}
	if h.RateFreesMs != 0 {
		w.int64("rate_frees_ms", h.RateFreesMs)
	}
	if h.RateWindowMs != 0 {
		w.int64("rate_window_ms", h.RateWindowMs)
	}
	if h.InputCostPerToken != 0 {
		w.float("input_cost_per_token", h.InputCostPerToken)
	}
	if h.OutputCostPerToken != 0 {
		w.float("output_cost_per_token", h.OutputCostPerToken)
	}
}

// DecodeMsgpack reads a heartbeat by hand (see EncodeMsgpack): unknown
// keys are skipped, and an error names the field it is in.
func (h *Heartbeat) DecodeMsgpack(d *msgpack.Decoder) error {
	var k keyScratch
	return h.decodeMsgpack(d, &k)
}

// decodeMsgpack is DecodeMsgpack reading keys into k.
func (h *Heartbeat) decodeMsgpack(d *msgpack.Decoder, k *keyScratch) error {
	*h = Heartbeat{}
	n, err := decodeMapHeader(d)
	if err != nil {
		return err
	}
	var ids dispatcherIDs
	for range n {
		key, err := decodeKey(d, k.top[:])
		if err != nil {
			return err
		}
		if err := h.decodeField(d, key, k.inner[:], &ids); err != nil {
			return fieldError(key, err)
		}
	}
	return nil
}

// decodeField reads the value of key; buf is scratch for a string that
// may be one of llmq's constants or a dispatcher id, ids the dispatcher
// ids read so far.
func (h *Heartbeat) decodeField(d *msgpack.Decoder, key, buf []byte, ids *dispatcherIDs) error {
	var err error
	switch string(key) {
	case "worker":
		h.Worker, err = d.DecodeString()
	case "tier":
		h.Tier, err = d.DecodeString()
	case "deployment":
		h.Deployment, err = d.DecodeString()
	case "provider":
		h.Provider, err = d.DecodeString()
	case "model":
		h.Model, err = d.DecodeString()
	case "host":
		h.Host, err = d.DecodeString()
	case "subject":
		h.Subject, err = d.DecodeString()
	case "state":
		h.State, err = decodeCommon(d, buf)
	case "seq":
		h.Seq, err = d.DecodeUint64()
	case "interval_ms":
		h.IntervalMs, err = d.DecodeInt64()
	case "capacity":
		h.Capacity, err = d.DecodeInt()
	case "in_flight":
		h.InFlight, err = d.DecodeInt()
	case "weight":
		h.Weight, err = d.DecodeFloat64()
	case "order":
		h.Order, err = d.DecodeInt()
	case "latency_ms":
		h.LatencyMs, err = d.DecodeFloat64()
	case "ms_per_token":
		h.MsPerToken, err = d.DecodeFloat64()
	case "samples":
		h.Samples, err = d.DecodeInt()
	case "completed":
		h.Completed, err = d.DecodeUint64()
	case "failed":
		h.Failed, err = d.DecodeUint64()
	case "received":
		h.Received, err = decodeIDMap(d, h.Received, (*msgpack.Decoder).DecodeUint64, ids, buf)
	case "jobs":
		h.Jobs, err = decodeIDMap(d, h.Jobs, decodeUint64s, ids, buf)
	case "queue_age_us":
		h.QueueAgeUs, err = decodeIDMap(d, h.QueueAgeUs, (*msgpack.Decoder).DecodeInt64, ids, buf)
	case "tags":
		err = decodeStringsField(d, &h.Tags)
	case "max_input_tokens":
		h.MaxInputTokens, err = d.DecodeInt()
	case "mode":
		h.Mode, err = decodeCommon(d, buf)
	case "cold":
		h.Cold, err = d.DecodeBool()
	case "loaded":
		err = decodeStringsField(d, &h.Loaded)
	case "load_ms":
		h.LoadMs, err = d.DecodeFloat64()
	case "host_slots":
		h.HostSlots, err = d.DecodeInt()
	case "host_in_flight":
		h.HostInFlight, err = d.DecodeInt()
	default:
		err = h.decodeLimit(d, key)
	}
	return err
}

// decodeLimit reads the fields from cooling_until_ms to
// output_cost_per_token, and skips a key it does not know.
func (h *Heartbeat) decodeLimit(d *msgpack.Decoder, key []byte) error {
	var err error
	switch string(key) {
	case "cooling_until_ms":
		h.CoolingUntilMs, err = d.DecodeInt64()
	case "cooling_reason":
		h.CoolingReason, err = d.DecodeString()
	case "rpm":
		h.RPM, err = d.DecodeInt64()
	case "tpm":
		h.TPM, err = d.DecodeInt64()
	case "rpm_used":
		h.RPMUsed, err = d.DecodeInt64()
	case "tpm_used":
		h.TPMUsed, err = d.DecodeInt64()
	case "rate_frees_ms":
		h.RateFreesMs, err = d.DecodeInt64()
	case "rate_window_ms":
		h.RateWindowMs, err = d.DecodeInt64()
	case "input_cost_per_token":
		h.InputCostPerToken, err = d.DecodeFloat64()
	case "output_cost_per_token":
		h.OutputCostPerToken, err = d.DecodeFloat64()
	default:
		err = d.Skip()
	}
	return err
}

// maxMapPrealloc caps the entries allocated for a map before they are
// read; larger maps grow as they are read. It is lower than maxPrealloc
// because a map's length can hide from checkMsgpack inside an ext, where
// the reflection decoder (and so this one) still reads it.
const maxMapPrealloc = 64

// encodeStringMap writes m as the reflection encoder wrote a map of string
// keys, in Go's map order, each value by enc (a method expression, so no
// closure is made).
func encodeStringMap[V any](e *msgpack.Encoder, m map[string]V, enc func(*msgpack.Encoder, V) error) error {
	if m == nil {
		return e.EncodeNil()
	}
	if err := e.EncodeMapLen(len(m)); err != nil {
		return err
	}
	for k, v := range m {
		if err := e.EncodeString(k); err != nil {
			return err
		}
		if err := enc(e, v); err != nil {
			return err
		}
	}
	return nil
}

// decodeIDMap reads a map of dispatcher ids, each value by dec, as the
// reflection decoder read a map field: nil for nil; otherwise the entries
// are added to m, made when nil (a key sent twice adds to the map of the
// first). Like reflection, it reads a map wrapped in an ext. Keys are read
// by ids into buf.
func decodeIDMap[V any](d *msgpack.Decoder, m map[string]V, dec func(*msgpack.Decoder) (V, error), ids *dispatcherIDs, buf []byte) (map[string]V, error) {
	n, err := d.DecodeMapLen()
	if err != nil || n < 0 {
		return nil, err
	}
	if m == nil {
		m = make(map[string]V, min(n, maxMapPrealloc))
	}
	for range n {
		k, err := ids.decode(d, buf)
		if err != nil {
			return nil, err
		}
		v, err := dec(d)
		if err != nil {
			return nil, err
		}
		m[k] = v
	}
	return m, nil
}

// dispatcherIDs holds the first dispatcher ids a beat names: the same few
// key its received, jobs and queue_age_us, and each is allocated once.
type dispatcherIDs struct {
	ids [4]string
	n   int
}

// decode reads a map key as the reflection decoder read a string (a
// string, binary or nil), returning the id read before when it is one.
// buf must hold 31 bytes, the longest short string.
func (c *dispatcherIDs) decode(d *msgpack.Decoder, buf []byte) (string, error) {
	code, err := d.PeekCode()
	if err != nil {
		return "", err
	}
	if !msgpcode.IsFixedString(code) {
		return d.DecodeString()
	}
	b, err := decodeKey(d, buf)
	if err != nil {
		return "", err
	}
	for _, id := range c.ids[:c.n] {
		if id == string(b) {
			return id, nil
		}
	}
	id := string(b)
	if c.n < len(c.ids) {
		c.ids[c.n] = id
		c.n++
	}
	return id, nil
}

// encodeUint64s writes v as the reflection encoder wrote a []uint64: each
// in 9 bytes.
func encodeUint64s(e *msgpack.Encoder, v []uint64) error {
	if v == nil {
		return e.EncodeNil()
	}
	if err := e.EncodeArrayLen(len(v)); err != nil {
		return err
	}
	for _, n := range v {
		if err := e.EncodeUint64(n); err != nil {
			return err
		}
	}
	return nil
}

// decodeUint64s reads an array of uint64s as the reflection decoder read
// a []uint64: nil for nil, empty for an empty array.
func decodeUint64s(d *msgpack.Decoder) ([]uint64, error) {
	n, c, err := decodeArrayHeader(d)
	if err != nil || n < 0 {
		return nil, err
	}
	out := make([]uint64, 0, c)
	for range n {
		v, err := d.DecodeUint64()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// decodeStringsField reads an array of strings into *s as the reflection
// decoder read a []string field: nil leaves *s as it was (nil, unless the
// key came twice).
func decodeStringsField(d *msgpack.Decoder, s *[]string) error {
	if isNil, err := peekNil(d); isNil || err != nil {
		return err
	}
	v, err := decodeStrings(d)
	if err != nil {
		return err
	}
	*s = v
	return nil
}
