package ollamatest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"
)

// embed answers POST /api/embed, checking the body as Ollama does (and,
// where marked, more strictly), with a deterministic vector for each text.
func (s *Server) embed(w http.ResponseWriter, raw []byte) {
	start := time.Now()
	if len(bytes.TrimSpace(raw)) == 0 {
		writeError(w, http.StatusBadRequest, "missing request body")
		return
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var req EmbedRequest
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if strings.TrimSpace(req.Model) == "" {
		writeError(w, http.StatusBadRequest, "model is required")
		return
	}
	input, err := embedInput(req.Input)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !s.has(req.Model) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("model '%s' not found", req.Model))
		return
	}
	if err := checkKeepAlive(req.KeepAlive); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if status, err := checkOptions(req.Options); err != nil {
		writeError(w, status, err.Error())
		return
	}
	if f := s.cfg.Fail; f != nil {
		writeFailure(w, f)
		return
	}
	resp := EmbedResponse{Model: req.Model, Embeddings: make([][]float32, len(input))}
	for i, text := range input {
		resp.Embeddings[i] = Vector(text, s.cfg.EmbedDims, req.Dimensions)
		resp.PromptEvalCount += len(strings.Fields(text))
	}
	resp.LoadDuration = int64(time.Millisecond)
	resp.TotalDuration = int64(time.Since(start))
	writeJSON(w, http.StatusOK, resp)
	s.update(func(st *Stats) { st.Embedded += len(input) })
}

// embedInput reads input as Ollama does: a string (one text) or an array
// of strings; anything else is "invalid input type". The fake is stricter:
// a missing or empty input is a 400 (Ollama only loads the model).
func embedInput(raw json.RawMessage) ([]string, error) {
	var v any
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, err
		}
	}
	var input []string
	switch t := v.(type) {
	case nil:
		return nil, fmt.Errorf("input is required")
	case string:
		input = []string{t}
	case []any:
		for _, e := range t {
			str, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("invalid input type")
			}
			input = append(input, str)
		}
	default:
		return nil, fmt.Errorf("invalid input type")
	}
	if len(input) == 0 || (len(input) == 1 && input[0] == "") {
		return nil, fmt.Errorf("input is required")
	}
	return input, nil
}

// Vector is the embedding the fake returns for text: dims numbers derived
// from a hash of the text, normalised to length 1 as Ollama's are, then,
// when 0 < dimensions < dims, cut to dimensions and normalised again, as
// Ollama shortens them.
func Vector(text string, dims, dimensions int) []float32 {
	v := make([]float32, dims)
	var block [sha256.Size]byte
	for i := range v {
		if i%8 == 0 {
			block = sha256.Sum256(fmt.Appendf(nil, "%d\x00%s", i/8, text))
		}
		u := binary.BigEndian.Uint32(block[4*(i%8):])
		v[i] = float32(u)/float32(math.MaxUint32)*2 - 1
	}
	normalize(v)
	if dimensions > 0 && dimensions < len(v) {
		v = v[:dimensions]
		normalize(v)
	}
	return v
}

func normalize(v []float32) {
	var sum float64
	for _, f := range v {
		sum += float64(f) * float64(f)
	}
	norm := 1 / math.Max(math.Sqrt(sum), 1e-12)
	for i := range v {
		v[i] = float32(float64(v[i]) * norm)
	}
}
