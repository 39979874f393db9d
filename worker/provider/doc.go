// Package provider defines what a worker calls to complete a job: the
// Provider interface, the optional Streamer capability, the Options every
// adapter is built from, and the helpers that turn HTTP and transport
// failures into the typed errors of package schema, the same way for every
// provider. Adapters live in sub-packages, one per wire format.
package provider
