package notify

import (
	"context"
	"log/slog"
	"sync"
)

// job is one transition's scripts, run in order.
type job func(ctx context.Context)

// queues runs jobs in order per key (an instance or a group), one at a
// time per key, keys in parallel. A worker goroutine exists only while
// its key has work; wg counts them.
type queues struct {
	log   *slog.Logger
	limit int
	ctx   context.Context

	mu     sync.Mutex
	m      map[string]*keyQueue
	closed bool
	wg     sync.WaitGroup
}

type keyQueue struct {
	jobs []job
}

func newQueues(ctx context.Context, log *slog.Logger, limit int) *queues {
	return &queues{log: log, limit: limit, ctx: ctx, m: map[string]*keyQueue{}}
}

// push appends j to key's queue without blocking. When the queue already
// holds limit jobs waiting, the oldest waiting one is dropped: the newest
// transitions describe the state the instance is in now.
func (q *queues) push(key string, j job) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		q.log.Warn("notify scripts not run: notify is closing", "for", key)
		return
	}
	kq := q.m[key]
	if kq == nil {
		kq = &keyQueue{}
		q.m[key] = kq
		q.wg.Add(1)
		go q.work(key, kq)
	}
	if len(kq.jobs) >= q.limit {
		kq.jobs = kq.jobs[1:]
		q.log.Warn("notify scripts dropped: queue full (a script is hanging?)", "for", key, "limit", q.limit)
	}
	kq.jobs = append(kq.jobs, j)
}

func (q *queues) work(key string, kq *keyQueue) {
	defer q.wg.Done()
	for {
		q.mu.Lock()
		if len(kq.jobs) == 0 || q.ctx.Err() != nil {
			delete(q.m, key)
			q.mu.Unlock()
			return
		}
		j := kq.jobs[0]
		kq.jobs[0] = nil
		kq.jobs = kq.jobs[1:]
		q.mu.Unlock()
		j(q.ctx)
	}
}

// close refuses new jobs; wait then returns when all queued jobs ran.
func (q *queues) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
}

func (q *queues) wait() <-chan struct{} {
	done := make(chan struct{})
	go func() {
		q.wg.Wait()
		close(done)
	}()
	return done
}
