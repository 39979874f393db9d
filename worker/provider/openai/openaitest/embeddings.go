package openaitest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"encoding/base64"
)

// DefaultEmbeddingDimensions is the length of the fake's embeddings.
const DefaultEmbeddingDimensions = 64

// maxEmbeddingInputs is OpenAI's limit on the inputs of one call.
const maxEmbeddingInputs = 2048

func isEmbeddingArgument(k string) bool {
	switch k {
	case "model", "input", "dimensions", "encoding_format", "user":
		return true
	}
	return false
}

// embed answers POST /v1/embeddings as OpenAI does: model (except on
// Azure) and input are required; input is a non-empty string, an array of
// 1 to 2048 non-empty strings, an array of token ids or an array of such
// arrays; dimensions, from 1 to the model's length, shortens the vectors;
// encoding_format is "float" or "base64".
func (s *Server) embed(w http.ResponseWriter, r *http.Request, raw []byte) {
	body, f := parseBody(r.Header.Get("Content-Type"), raw, isEmbeddingArgument)
	if f != nil {
		writeFailure(w, *f)
		return
	}
	var model string
	if _, ok := body["model"]; ok || s.cfg.Azure == nil {
		req := &request{}
		if f := parseModel(body, req); f != nil {
			writeFailure(w, *f)
			return
		}
		model = req.Model
	}
	if s.cfg.Model != "" && s.cfg.Azure == nil && model != s.cfg.Model {
		writeFailure(w, ModelNotFound(model))
		return
	}
	if s.cfg.Azure != nil {
		model = "text-embedding-3-small"
	}
	texts, f := parseInput(body["input"])
	if f != nil {
		writeFailure(w, *f)
		return
	}
	native := s.cfg.EmbeddingDimensions
	if native <= 0 {
		native = DefaultEmbeddingDimensions
	}
	dims, f := intAtLeast(body, "dimensions", 1)
	if f != nil {
		writeFailure(w, *f)
		return
	}
	n := native
	if dims != nil {
		if *dims > native {
			writeFailure(w, *intAbove("dimensions", native, *dims))
			return
		}
		n = *dims
	}
	format := "float"
	if raw, ok := body["encoding_format"]; ok && !isNull(raw) {
		if json.Unmarshal(raw, &format) != nil || (format != "float" && format != "base64") {
			writeFailure(w, *invalidValue("encoding_format", strings.Trim(string(raw), `"`), "'float' and 'base64'"))
			return
		}
	}
	if s.cfg.Fail != nil {
		writeFailure(w, *s.cfg.Fail)
		return
	}
	data := make([]map[string]any, len(texts))
	tokens := 0
	for i, t := range texts {
		tokens += max(1, len(strings.Fields(t)))
		v := EmbeddingVector(t, native, n)
		var e any = v
		if format == "base64" {
			b := make([]byte, 4*len(v))
			for j, f := range v {
				binary.LittleEndian.PutUint32(b[4*j:], math.Float32bits(f))
			}
			e = base64.StdEncoding.EncodeToString(b)
		}
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": e}
	}
	if s.cfg.ShuffleEmbeddings {
		slices.Reverse(data)
	}
	writeJSON(w, http.StatusOK, nil, map[string]any{"object": "list", "data": data, "model": model,
		"usage": map[string]int{"prompt_tokens": tokens, "total_tokens": tokens}})
}

// parseInput reads input into texts (token arrays become their ids
// joined by spaces).
func parseInput(raw json.RawMessage) ([]string, *Failure) {
	if raw == nil || isNull(raw) {
		return nil, ptr(missing("input"))
	}
	invalid := ptr(BadRequest("'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.", "input"))
	var one string
	if json.Unmarshal(raw, &one) == nil {
		if one == "" {
			return nil, invalid
		}
		return []string{one}, nil
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil || len(list) == 0 || len(list) > maxEmbeddingInputs {
		return nil, invalid
	}
	var texts []string
	var ids []string
	for _, e := range list {
		t := bytes.TrimSpace(e)
		switch {
		case len(t) > 0 && t[0] == '"':
			var s string
			if json.Unmarshal(t, &s) != nil || s == "" || ids != nil {
				return nil, invalid
			}
			texts = append(texts, s)
		case len(t) > 0 && t[0] == '[':
			var toks []int
			if json.Unmarshal(t, &toks) != nil || len(toks) == 0 || ids != nil {
				return nil, invalid
			}
			texts = append(texts, joinInts(toks))
		default:
			n, err := strconv.Atoi(string(t))
			if err != nil || n < 0 || texts != nil {
				return nil, invalid
			}
			ids = append(ids, strconv.Itoa(n))
		}
	}
	if ids != nil {
		return []string{strings.Join(ids, " ")}, nil
	}
	return texts, nil
}

func joinInts(toks []int) string {
	s := make([]string, len(toks))
	for i, t := range toks {
		s[i] = strconv.Itoa(t)
	}
	return strings.Join(s, " ")
}

// EmbeddingVector is the fake's embedding of text: native deterministic
// components, of which the first dims are kept and scaled to unit
// length, as OpenAI shortens text-embedding-3 vectors.
func EmbeddingVector(text string, native, dims int) []float32 {
	dims = min(max(dims, 1), native)
	v := make([]float32, dims)
	var sum float64
	for j := range v {
		h := fnv.New64a()
		fmt.Fprintf(h, "%d\x00%s", j, text)
		x := float64(h.Sum64()%2001)/1000 - 1 // -1..1
		v[j] = float32(x)
		sum += x * x
	}
	if sum == 0 {
		return v
	}
	norm := math.Sqrt(sum)
	for j := range v {
		v[j] = float32(float64(v[j]) / norm)
	}
	return v
}
