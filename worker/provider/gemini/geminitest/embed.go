package geminitest

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
)

// maxEmbedBatch is the most requests one batchEmbedContents call takes.
const maxEmbedBatch = 100

// EmbedRequest is a batchEmbedContents request as the fake decoded it.
type EmbedRequest struct {
	Requests []EmbedContentRequest `json:"requests"`
}

// EmbedContentRequest is one text to embed.
type EmbedContentRequest struct {
	Model                string  `json:"model"`
	Content              Content `json:"content"`
	TaskType             string  `json:"taskType,omitempty"`
	Title                string  `json:"title,omitempty"`
	OutputDimensionality *int    `json:"outputDimensionality,omitempty"`
}

func batchEmbedFields() []string { return []string{"requests"} }

func embedContentFields() []string {
	return []string{"model", "content", "taskType", "title", "outputDimensionality"}
}

// parseEmbed decodes and checks a batchEmbedContents body for model the
// way the API does: every request names the model of the path
// ("models/…"), has content with parts, and at most 100 requests.
func parseEmbed(body []byte, model string, dims int) (*EmbedRequest, []violation, *Failure) {
	if !json.Valid(body) {
		return nil, []violation{{Description: "Invalid JSON payload received. Unexpected token."}}, nil
	}
	d := &decoder{}
	m := d.object(body, batchEmbedFields(), "", "TYPE_MESSAGE")
	req := &EmbedRequest{}
	for i, raw := range d.list(m, "requests", "") {
		at := fmt.Sprintf("requests[%d]", i)
		rm := d.object(raw, embedContentFields(), at, "TYPE_MESSAGE")
		var r EmbedContentRequest
		if rm != nil {
			d.field(rm, "model", at, "TYPE_STRING", &r.Model)
			d.field(rm, "taskType", at, "TYPE_ENUM", &r.TaskType)
			d.field(rm, "title", at, "TYPE_STRING", &r.Title)
			d.field(rm, "outputDimensionality", at, "TYPE_INT32", &r.OutputDimensionality)
			if c, ok := rm["content"]; ok && !isNull(c) {
				r.Content = d.content(c, join(at, "content"))
			}
		}
		req.Requests = append(req.Requests, r)
	}
	if len(d.vs) > 0 {
		return nil, d.vs, nil
	}
	switch n := len(req.Requests); {
	case n == 0:
		return nil, nil, InvalidArgument("* BatchEmbedContentsRequest.requests: requests is not specified\n")
	case n > maxEmbedBatch:
		return nil, nil, InvalidArgument(fmt.Sprintf("* BatchEmbedContentsRequest.requests: at most %d requests can be in one batch\n", maxEmbedBatch))
	}
	for i, r := range req.Requests {
		at := fmt.Sprintf("* BatchEmbedContentsRequest.requests[%d]", i)
		switch {
		case r.Model == "":
			return nil, nil, InvalidArgument(at + ".model: model is not specified\n")
		case strings.TrimPrefix(r.Model, "models/") == r.Model:
			return nil, nil, InvalidArgument(at + ".model: model names must start with \"models/\"\n")
		case r.Model != "models/"+model:
			return nil, nil, InvalidArgument(fmt.Sprintf("%s.model: Model names should match the model of the request: %s != models/%s\n", at, r.Model, model))
		case len(r.Content.Parts) == 0:
			return nil, nil, InvalidArgument(at + ".content: content is not specified\n")
		case r.OutputDimensionality != nil && (*r.OutputDimensionality < 1 || *r.OutputDimensionality > dims):
			return nil, nil, InvalidArgument(fmt.Sprintf("%s.output_dimensionality: must be between 1 and %d\n", at, dims))
		}
		if f := checkParts(r.Content.Parts, fmt.Sprintf("requests[%d].content", i)); f != nil {
			return nil, nil, f
		}
	}
	return req, nil, nil
}

// serveEmbed answers a batchEmbedContents call whose route and key were
// checked: {"embeddings":[{"values":[…]}]}, one per request, in order.
// The vectors are deterministic: unit vectors drawn from the SHA-256 of
// the text, cut to outputDimensionality. The API reports no token counts.
func (s *Server) serveEmbed(w http.ResponseWriter, r *http.Request, raw []byte, i int, model string) {
	req, vs, fail := parseEmbed(raw, model, s.cfg.EmbedDimensions)
	if len(vs) > 0 {
		writeBadRequest(w, vs)
		return
	}
	if fail != nil {
		fail.write(w)
		return
	}
	s.setEmbed(i, req)
	if s.cfg.Fail != nil {
		s.cfg.Fail.write(w)
		return
	}
	if !s.wait(r) {
		return
	}
	type embedding struct {
		Values []float32 `json:"values"`
	}
	out := struct {
		Embeddings []embedding `json:"embeddings"`
	}{Embeddings: make([]embedding, len(req.Requests))}
	for j, er := range req.Requests {
		n := s.cfg.EmbedDimensions
		if er.OutputDimensionality != nil {
			n = *er.OutputDimensionality
		}
		out.Embeddings[j] = embedding{Values: Vector(partsText(er.Content.Parts, " "), n)}
	}
	writeJSON(w, http.StatusOK, out)
}

// Vector is the fake's embedding of text in n dimensions: deterministic,
// of unit length, different for different texts.
func Vector(text string, n int) []float32 {
	out := make([]float32, n)
	var sum float64
	seed := sha256.Sum256([]byte(text))
	for i := range out {
		var b [8]byte
		copy(b[:], seed[:8])
		binary.LittleEndian.PutUint64(b[:], binary.LittleEndian.Uint64(b[:])+uint64(i)*0x9E3779B97F4A7C15)
		h := sha256.Sum256(b[:])
		v := float64(binary.LittleEndian.Uint32(h[:4]))/math.MaxUint32*2 - 1
		out[i] = float32(v)
		sum += v * v
	}
	norm := math.Sqrt(sum)
	for i := range out {
		out[i] = float32(float64(out[i]) / norm)
	}
	return out
}
