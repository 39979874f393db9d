package provider

import (
	"context"
	"time"
)

// Bounds on what a host may say about its loaded models.
const (
	// MaxResident is the most loaded models a Residency lists.
	MaxResident = 64
	// MaxResidentName is the longest model name a Residency lists.
	MaxResidentName = 256
)

// Resident is the optional capability of a provider whose host loads
// models in and out of memory (Ollama): it can say whether its model is
// loaded, so that routers prefer a host that need not load it first.
type Resident interface {
	// Refresh asks the host which models it has loaded now, within ctx.
	Refresh(ctx context.Context) error
	// Residency returns what is known now, without blocking.
	Residency() Residency
}

// Residency is what a Resident provider knows of its host's memory.
type Residency struct {
	// Known is false until the host or a call has told anything (a host
	// without a way to list loaded models stays unknown: routers then
	// take it as warm).
	Known bool
	// Warm says the model is loaded, or a call of it is running (and
	// loads it).
	Warm bool
	// Loaded are the models the host has loaded, as it names them (at
	// most MaxResident names of at most MaxResidentName bytes).
	Loaded []string
	// LoadTime is the recent time a call took to load the model, 0 until
	// a call found it cold.
	LoadTime time.Duration
	// Stale says a call found the model cold (so the host may have
	// evicted another) since the last Refresh: refresh soon.
	Stale bool
}

// Warmer is the optional capability of loading the model before the
// first job, so that a worker joining a fleet is warm when it takes work.
type Warmer interface {
	Warm(ctx context.Context) error
}
