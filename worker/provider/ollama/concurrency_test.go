package ollama_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/llmq/llmq/schema"
	"github.com/llmq/llmq/worker/provider/ollama/ollamatest"
)

// The adapter runs calls concurrently, and the fake's slots and queue
// behave like OLLAMA_NUM_PARALLEL and OLLAMA_MAX_QUEUE.
func TestConcurrentCallsQueueForSlots(t *testing.T) {
	t.Parallel()
	hold := make(chan struct{})
	fake := ollamatest.NewServer(t, ollamatest.Config{Parallel: 2, MaxQueue: 2, Hold: hold})
	p := newProvider(t, fake.URL())

	const n = 4
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				_, errs[i] = p.Complete(context.Background(), hello())
			} else {
				_, errs[i] = p.Stream(context.Background(), hello(), func(schema.ChunkChoice) error { return nil })
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := fake.Await(ctx, func(s ollamatest.Stats) bool { return s.InFlight == 2 && s.Queued == 2 }); err != nil {
		t.Fatal(err)
	}

	// Slots and queue are full: one more is Ollama's 503.
	_, err := p.Complete(context.Background(), hello())
	wantError(t, err, schema.CodeRateLimited)

	close(hold)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
	// The fake counts a call served after its last byte is written: the
	// client may have the reply a moment before.
	if err := fake.Await(ctx, func(s ollamatest.Stats) bool { return s.Served == n && s.InFlight == 0 }); err != nil {
		t.Fatalf("%v: stats = %+v", err, fake.Stats())
	}
	s := fake.Stats()
	if s.MaxInFlight != 2 || s.Served != n || s.Busy != 1 || s.InFlight != 0 || s.Queued != 0 {
		t.Errorf("stats = %+v, want max 2 in flight, %d served, 1 busy, none left", s, n)
	}
}

// A call that gives up while queued leaves the queue.
func TestQueuedCallCanBeCancelled(t *testing.T) {
	t.Parallel()
	hold := make(chan struct{})
	defer close(hold)
	fake := ollamatest.NewServer(t, ollamatest.Config{Parallel: 1, MaxQueue: 1, Hold: hold})
	p := newProvider(t, fake.URL())

	var wg sync.WaitGroup
	defer wg.Wait()
	first, cancelFirst := context.WithCancel(context.Background())
	defer cancelFirst()
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = p.Complete(first, hello())
	}()
	wait, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := fake.Await(wait, func(s ollamatest.Stats) bool { return s.InFlight == 1 }); err != nil {
		t.Fatal(err)
	}

	queued, cancelQueued := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := p.Complete(queued, hello())
		done <- err
	}()
	if err := fake.Await(wait, func(s ollamatest.Stats) bool { return s.Queued == 1 }); err != nil {
		t.Fatal(err)
	}
	cancelQueued()
	wantError(t, <-done, schema.CodeCancelled)
	if err := fake.Await(wait, func(s ollamatest.Stats) bool { return s.Queued == 0 && s.Disconnected == 1 }); err != nil {
		t.Fatal(err)
	}
	cancelFirst()
}
