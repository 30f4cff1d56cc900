package image

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// flight runs one job per key among concurrent callers: two pulls of one
// image download each layer once, two unpacks of one layer unpack it once.
// The job runs on its own context, cancelled only when every caller waiting
// for it has given up, so one client going away does not fail the others.
type flight struct {
	mu   sync.Mutex
	jobs map[string]*job
}

// job is one run of a flight: its progress, for every waiter to report, and
// its result.
type job struct {
	done    chan struct{}
	err     error
	created bool // the job added the thing to the store
	// snapshotCreated says that a download job also unpacked its layer;
	// set by the job before it is done.
	snapshotCreated bool
	current         atomic.Int64
	total           atomic.Int64
	waiters         int // guarded by flight.mu
	cancel          context.CancelFunc
}

// join returns the job running for key, or starts fn as one. leader says
// whether this caller started it.
func (f *flight) join(ctx context.Context, key string, fn func(ctx context.Context, j *job) (created bool, err error)) (j *job, leader bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.jobs == nil {
		f.jobs = map[string]*job{}
	}
	if j, ok := f.jobs[key]; ok {
		j.waiters++
		return j, false
	}
	jctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	j = &job{done: make(chan struct{}), waiters: 1, cancel: cancel}
	f.jobs[key] = j
	go func() {
		created, err := fn(jctx, j)
		f.mu.Lock()
		delete(f.jobs, key)
		f.mu.Unlock()
		cancel()
		j.created, j.err = created, err
		close(j.done)
	}()
	return j, true
}

// wait waits for the job or for ctx, calling tick (when not nil) every
// progress interval meanwhile; a caller that gives up leaves the job running
// for the others.
func (f *flight) wait(ctx context.Context, j *job, tick func()) error {
	var ticks <-chan time.Time
	if tick != nil {
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		ticks = t.C
	}
	for {
		select {
		case <-j.done:
			return j.err
		case <-ticks:
			tick()
		case <-ctx.Done():
			f.mu.Lock()
			j.waiters--
			last := j.waiters == 0
			if last {
				j.cancel()
			}
			f.mu.Unlock()
			if last {
				// Nobody else will see what the job leaves: wait for it to
				// stop, so the caller can take back what it added.
				<-j.done
			}
			return ctx.Err()
		}
	}
}

// addedContent reports whether the job has finished having added its
// content to the store: the caller that waited for it owns that content's
// removal if its operation fails.
func (j *job) addedContent() bool {
	select {
	case <-j.done:
		return j.created
	default:
		return false
	}
}

// addedSnapshot reports whether the finished job also added its layer's
// snapshot to the store.
func (j *job) addedSnapshot() bool {
	select {
	case <-j.done:
		return j.snapshotCreated
	default:
		return false
	}
}

// progressInterval is how often a waiter reports a job's progress.
const progressInterval = 150 * time.Millisecond
