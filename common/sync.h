/*
 * sync.h - waiting, eventfd readiness and notifier callbacks, shared by
 * the polypipe and polysocket halves of the library.
 *
 * None of these take a lock of their own: each says which lock its caller
 * holds, always the lock of the object the state belongs to.
 */
#ifndef POLYSOCKET_SYNC_H
#define POLYSOCKET_SYNC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include <polysocket/polypipe.h>

/*
 * Every allocation of the library goes through these, so that a test
 * build (PSYNC_FAULTS, tests/check_faults.c) can make any one of them
 * fail: psync_fail_at = N fails the N-th allocation from then on (1 is
 * the next one), and 0 fails none; psync_allocs counts them.
 */
#ifdef PSYNC_FAULTS
extern unsigned long psync_fail_at;
extern unsigned long psync_allocs;
void *psync_malloc(size_t size);
void *psync_calloc(size_t n, size_t size);
#else
#define psync_malloc(size) malloc(size)
#define psync_calloc(n, size) calloc(n, size)
#endif

/* psync_cond_init: a condition variable that times out on
 * CLOCK_MONOTONIC.  Returns 0 or an error number. */
int psync_cond_init(pthread_cond_t *cv);

/* psync_timeout_valid: whether timeout_ms is -1, 0 or positive. */
static inline bool
psync_timeout_valid(int timeout_ms)
{
	return timeout_ms >= -1;
}

/* A wait's deadline, read from the clock only once the call first has to
 * wait, so a call that does not wait does not read it. */
struct psync_timer {
	int timeout_ms;
	bool armed;
	struct timespec deadline;
};

static inline struct psync_timer
psync_timer(int timeout_ms)
{
	struct psync_timer t = { .timeout_ms = timeout_ms };

	return t;
}

/*
 * psync_wait: waits on cv (lock held) until woken or the timer's deadline
 * passes.  Returns ETIMEDOUT once the deadline has passed, else 0 (which
 * may be spurious: the caller re-checks its condition either way).  Never
 * called with timeout 0.
 */
int psync_wait(pthread_cond_t *cv, pthread_mutex_t *lock,
               struct psync_timer *t);

/*
 * An eventfd that mirrors one readiness condition: readable while ready.
 * It is written or drained only when the condition changes, under the
 * lock of the object it belongs to.
 */
struct psync_efd {
	int fd;     /* -1 until someone asks for a descriptor */
	bool ready; /* what the descriptor says now */
};

#define PSYNC_EFD_NONE { .fd = -1, .ready = false }

/* psync_efd_open: creates the eventfd, readable if ready.  Returns 0, or
 * -1 with errno EMFILE, ENFILE or ENOMEM. */
int psync_efd_open(struct psync_efd *e, bool ready);

/* psync_efd_update: makes the descriptor say ready, with one system call
 * if that changes what it says, none otherwise or if there is none. */
void psync_efd_update(struct psync_efd *e, bool ready);

/* psync_efd_release: detaches the descriptor and returns it (or -1), for
 * the caller to close once it no longer holds the lock. */
int psync_efd_release(struct psync_efd *e);

/*
 * A notifier callback with the removal guarantee of the contract: once
 * psync_notify_set returns, calls of the callbacks it replaced have ended
 * (unless it was called from inside one of them).  Calls in flight are
 * counted by generation, so a setter waits only for the callbacks it
 * replaced, never for later ones.
 */
struct psync_notifier {
	polypipe_notify_fn *fn;
	void *arg;
	unsigned gen;     /* bumped by every set */
	unsigned running; /* calls of the current fn in flight */
	unsigned stale;   /* calls of replaced callbacks still in flight */
	unsigned waiters; /* setters waiting for stale to reach 0 */
};

/*
 * psync_notify_set: replaces the callback (lock held), then waits on cv
 * until no replaced call is running, unless this thread is inside one.
 */
void psync_notify_set(struct psync_notifier *n, polypipe_notify_fn *fn,
                      void *arg, pthread_mutex_t *lock, pthread_cond_t *cv);

/*
 * psync_notify_fire: calls the callback, if one is set, with lock
 * released for the call (held on entry and on return), then wakes the
 * setters waiting on cv for it.  The caller keeps the object alive across
 * the call: the callback may close it.
 */
void psync_notify_fire(struct psync_notifier *n, pthread_mutex_t *lock,
                       pthread_cond_t *cv);

#endif /* POLYSOCKET_SYNC_H */
