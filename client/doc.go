// Package client is the Go API for producers: Complete sends a job to a
// tier and waits for its chat.completion; Stream returns its tokens as
// they come. Failures are *schema.Error values with the same codes every
// part of llmq uses.
package client
