package broker

import (
	"regexp"
	"strings"
)

// semver is the version syntax the nats.go micro package accepts (its own
// expression).
var semver = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

// ServiceVersion returns v as a micro service version (semantic, no
// leading "v"), or "0.0.0" when v is not one, and the build string to put
// in the service's metadata (v itself, or "dev").
func ServiceVersion(v string) (version, build string) {
	s := strings.TrimPrefix(v, "v")
	if semver.MatchString(s) {
		return s, v
	}
	if v == "" {
		v = "dev"
	}
	return "0.0.0", v
}
