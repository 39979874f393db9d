package metrics

import (
	"strconv"
	"testing"
)

func TestStatusLabel_CodesTheGatewaySendsAsThemselvesOthersAsTheirClass(t *testing.T) {
	t.Parallel()
	for _, s := range []int{200, 400, 401, 404, 405, 413, 429, 499, 500, 502, 503, 504} {
		if got := statusLabel(s); got != strconv.Itoa(s) {
			t.Errorf("statusLabel(%d) = %q", s, got)
		}
	}
	for s, want := range map[int]string{201: "2xx", 418: "4xx", 501: "5xx", 0: "other", 600: "other"} {
		if got := statusLabel(s); got != want {
			t.Errorf("statusLabel(%d) = %q, want %q", s, got, want)
		}
	}
}
