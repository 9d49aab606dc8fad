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
#include <stdint.h>
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

/* psync_timeout_valid: whether timeout_ms is -1, 0 or positive. */
static inline bool
psync_timeout_valid(int timeout_ms)
{
	return timeout_ms >= -1;
}

/* A wait's deadline, read from the clock only once the call first has to
 * sleep, so a call that does not wait does not read it. */
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
 * An event that threads wait for under an object's lock: a futex word
 * that moves at every wake-up, and counts of who is waiting.  Wakers
 * touch the word only when somebody spins or sleeps on it, so an object
 * nobody waits on costs no atomic operation and no system call, and a
 * sleeper already sent a wake-up is not sent another before it has run.
 * Sixteen bytes, where a pthread condition variable takes 48.
 */
struct psync_event {
	_Atomic uint32_t seq; /* moves at every wake-up */
	uint32_t sleepers;    /* lock: threads in psync_event_wait */
	uint32_t signaled;    /* lock: wake-ups sent, not yet taken */
	uint16_t spinners;    /* lock: threads in psync_event_spin */
	uint8_t skip;         /* lock: waits left before the next spin */
	uint8_t backoff;      /* lock: skip after the next failed spin */
};

/*
 * psync_event_spin: before sleeping, spins a few microseconds with the
 * lock released, for a peer running on another CPU to wake the event:
 * much cheaper than a sleep and wake-up.  Spinning adapts: after a spin
 * that ends without a wake-up, the next waits on this event skip it,
 * twice as many each time it fails again, so a waiter whose peer cannot
 * run meanwhile (same CPU, or idle) barely spins.  Lock held on entry
 * and on return, but released meanwhile: the caller must check its
 * condition again before it waits.
 */
void psync_event_spin(struct psync_event *ev, pthread_mutex_t *lock);

/*
 * psync_event_wait: sleeps (lock released meanwhile) until the event is
 * woken, the timer's deadline passes (then ETIMEDOUT), or spuriously (0):
 * the caller re-checks its condition either way.  Never EINTR.  Never
 * called with timeout 0.
 */
int psync_event_wait(struct psync_event *ev, pthread_mutex_t *lock,
                     struct psync_timer *t);

/*
 * psync_event_signal: wakes every spinner and marks one sleeper (all if
 * all) not woken yet as woken (lock held), and returns how many sleepers
 * the caller must wake with psync_event_kick: 0 if none.  Nothing to do,
 * and no atomic operation, if none wait.
 */
int psync_event_signal(struct psync_event *ev, bool all);

/*
 * psync_event_kick: the system call that wakes n sleepers, best made
 * after releasing the lock, so that they do not wake to find it held.
 * The event must still exist: the caller keeps its object alive.
 */
void psync_event_kick(struct psync_event *ev, int n);

/* psync_event_wake: both at once, the kick under the lock (lock held),
 * where the object may be gone once it is released. */
void psync_event_wake(struct psync_event *ev, bool all);

/*
 * An eventfd that mirrors one readiness condition: readable while ready.
 * It is written or drained only when the condition changes, under the
 * lock of the object it belongs to.
 */
struct psync_efd {
	int fd;     /* -1 until someone asks for a descriptor */
	bool ready; /* what the descriptor says now */
};

/* psync_efd_none: no descriptor yet. */
static inline struct psync_efd
psync_efd_none(void)
{
	struct psync_efd e = { .fd = -1, .ready = false };

	return e;
}

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
};

/*
 * psync_notify_set: replaces the callback (lock held), then waits on ev
 * until no replaced call is running, unless this thread is inside one.
 */
void psync_notify_set(struct psync_notifier *n, polypipe_notify_fn *fn,
                      void *arg, pthread_mutex_t *lock,
                      struct psync_event *ev);

/*
 * psync_notify_fire: calls the callback, if one is set, with lock
 * released for the call (held on entry and on return), then wakes the
 * setters waiting on ev for it.  The caller keeps the object alive across
 * the call: the callback may close it.
 */
void psync_notify_fire(struct psync_notifier *n, pthread_mutex_t *lock,
                       struct psync_event *ev);

#endif /* POLYSOCKET_SYNC_H */
