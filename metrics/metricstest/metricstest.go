// Package metricstest reads Prometheus metrics in tests: from a registry,
// a /metrics URL or exposition text, into samples that can be summed by
// name and labels.
package metricstest

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Sample is one series' value.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Samples are series by metric name. A histogram named h appears as
// h_count and h_sum.
type Samples map[string][]Sample

// Sum adds the values of the series of name whose labels include the
// given pairs (name, value, name, value...).
func (s Samples) Sum(name string, labels ...string) float64 {
	var total float64
outer:
	for _, x := range s[name] {
		for i := 0; i+1 < len(labels); i += 2 {
			if x.Labels[labels[i]] != labels[i+1] {
				continue outer
			}
		}
		total += x.Value
	}
	return total
}

// Has reports whether name has a series.
func (s Samples) Has(name string) bool { return len(s[name]) > 0 }

// Gather reads a registry.
func Gather(tb testing.TB, g prometheus.Gatherer) Samples {
	tb.Helper()
	fams, err := g.Gather()
	if err != nil {
		tb.Fatalf("gather: %v", err)
	}
	return fromFamilies(fams)
}

// Parse reads the text exposition format.
func Parse(tb testing.TB, r io.Reader) Samples {
	tb.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		tb.Fatalf("parse metrics: %v", err)
	}
	list := make([]*dto.MetricFamily, 0, len(fams))
	for _, f := range fams {
		list = append(list, f)
	}
	return fromFamilies(list)
}

// Scrape GETs url (a /metrics endpoint) and parses it.
func Scrape(tb testing.TB, url string) Samples {
	tb.Helper()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Get(url)
	if err != nil {
		tb.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("scrape %s: %s", url, resp.Status)
	}
	return Parse(tb, resp.Body)
}

func fromFamilies(fams []*dto.MetricFamily) Samples {
	out := Samples{}
	for _, f := range fams {
		name := f.GetName()
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.Counter != nil:
				out[name] = append(out[name], Sample{labels, m.GetCounter().GetValue()})
			case m.Gauge != nil:
				out[name] = append(out[name], Sample{labels, m.GetGauge().GetValue()})
			case m.Histogram != nil:
				out[name+"_count"] = append(out[name+"_count"], Sample{labels, float64(m.GetHistogram().GetSampleCount())})
				out[name+"_sum"] = append(out[name+"_sum"], Sample{labels, m.GetHistogram().GetSampleSum()})
			case m.Summary != nil:
				out[name+"_count"] = append(out[name+"_count"], Sample{labels, float64(m.GetSummary().GetSampleCount())})
				out[name+"_sum"] = append(out[name+"_sum"], Sample{labels, m.GetSummary().GetSampleSum()})
			case m.Untyped != nil:
				out[name] = append(out[name], Sample{labels, m.GetUntyped().GetValue()})
			}
		}
	}
	return out
}
