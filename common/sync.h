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
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <polysocket/polypipe.h>

#include "common/chaos.h"

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
void *psync_realloc(void *p, size_t size);
void *psync_aligned_alloc(size_t align, size_t size);
#else
#define psync_malloc(size) malloc(size)
#define psync_calloc(n, size) calloc(n, size)
#define psync_realloc(p, size) realloc(p, size)
#define psync_aligned_alloc(align, size) aligned_alloc(align, size)
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
 * psync_timer_deadline: the absolute CLOCK_MONOTONIC deadline for a
 * sleep, read from the clock on first use; NULL for no limit.
 * psync_timer_passed: whether it has passed (false without a limit).
 */
const struct timespec *psync_timer_deadline(struct psync_timer *t);
bool psync_timer_passed(struct psync_timer *t);

/*
 * Barriers for a Dekker handshake where one side runs often (a message
 * moving) and the other rarely (a thread about to sleep).  The frequent
 * side's psync_barrier_light is a compiler barrier when the kernel offers
 * membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED): the rare side's
 * psync_barrier_heavy then makes every running thread of the process
 * pass a full barrier.  Without it, both are seq_cst fences.
 */
extern _Atomic int psync_asym; /* 1 once membarrier is registered */

/* Registers for membarrier, once per process: called when an object that
 * uses these barriers is made, so that its light side is a compiler
 * barrier from the first message on, not only after a first sleep. */
void psync_barrier_init(void);

void psync_barrier_heavy(void);

static inline void
psync_barrier_light(void)
{
	if (atomic_load_explicit(&psync_asym, memory_order_relaxed) == 1)
		atomic_signal_fence(memory_order_seq_cst);
	else
		atomic_thread_fence(memory_order_seq_cst);
}

/*
 * An eventcount: how threads sleep until a condition that other threads
 * change without any lock in common.  The word holds a sequence number
 * (low 32 bits, the futex word) and the number of sleepers registered
 * (high 32 bits).
 *
 * A waiter registers (psync_ec_prepare), checks its condition again, and
 * then either cancels (psync_ec_cancel) or sleeps (psync_ec_sleep).  A
 * changer makes its change, then issues psync_barrier_light and calls
 * psync_ec_wake.  The two barriers order a waiter's registration
 * against the change: either the waiter's check sees the change or the
 * changer sees the registration.  psync_ec_wake moves the sequence
 * number, so a sleeper not yet in the kernel returns at once, and takes
 * the woken sleepers off the count, so later changes make no system call
 * until somebody registers again.  The count may exceed the sleepers (a
 * sleeper that left after a wake-up meant for another), costing one
 * needless system call, never fall short of them.
 */
struct psync_ec {
	_Atomic uint64_t word;
};

#define PSYNC_EC_ONE ((uint64_t)1 << 32)

/* Registers a sleeper and returns the sequence number to sleep on,
 * after psync_barrier_heavy: the caller checks its condition next. */
uint32_t psync_ec_prepare(struct psync_ec *ec);

/* Takes back a registration that found its condition met. */
void psync_ec_cancel(struct psync_ec *ec, uint32_t seq);

/* Sleeps until woken, t's deadline (ETIMEDOUT) or spuriously (0).  Never
 * EINTR.  The caller checks its condition again either way. */
int psync_ec_sleep(struct psync_ec *ec, uint32_t seq, struct psync_timer *t);

void psync_ec_kick(struct psync_ec *ec, bool all);

/* Wakes one sleeper, or all; after the caller's fence.  No atomic
 * read-modify-write and no system call when nobody sleeps. */
static inline void
psync_ec_wake(struct psync_ec *ec, bool all)
{
	CHAOS_POINT();
	if (atomic_load_explicit(&ec->word, memory_order_relaxed) >=
	    PSYNC_EC_ONE)
		psync_ec_kick(ec, all);
}

/*
 * A counter that is also a lock, for the two sides of a pipe: bit 0 says
 * held, bit 1 (PSYNC_CTR_LOW) is a flag of the pipe's readiness protocol
 * (pipe.c), the count is above them.  The other side reads the count
 * without the lock.  Taking it is one compare-and-swap, and releasing it
 * one plain store that publishes the new count at the same time: every
 * other write of the word is made by the thread holding the lock, so no
 * two protocols ever write it.  A thread that finds it held spins
 * briefly (when another CPU can run the holder), then sleeps on an
 * eventcount, so that the release needs no read-modify-write
 * (psync_barrier_light, then a look at the count), and makes a system
 * call only for a sleeper not yet woken: a woken one may wait long for
 * its CPU, behind the very thread that woke it.
 */
#define PSYNC_CTR_LOCK ((size_t)1)
#define PSYNC_CTR_LOW ((size_t)2)
#define PSYNC_CTR_SHIFT 2

struct psync_ctr {
	_Atomic size_t word;
	struct psync_ec waiters; /* threads asleep on the lock */
};

void psync_ctr_wait(struct psync_ctr *c);

static inline size_t
psync_ctr_count(const struct psync_ctr *c, memory_order mo)
{
	return atomic_load_explicit(&c->word, mo) >> PSYNC_CTR_SHIFT;
}

/* The word as its holder sees it (lock held: nobody else writes it). */
static inline size_t
psync_ctr_word(const struct psync_ctr *c)
{
	return atomic_load_explicit(&c->word, memory_order_relaxed);
}

/* Sets the word, keeping the lock held (lock held).  Release: the other
 * side reads the count without the lock, and the messages or slots it
 * counts must be visible first. */
static inline void
psync_ctr_set(struct psync_ctr *c, size_t word)
{
	atomic_store_explicit(&c->word, word | PSYNC_CTR_LOCK,
	                      memory_order_release);
}

static inline bool
psync_ctr_trylock(struct psync_ctr *c)
{
	size_t w;

	CHAOS_POINT();
	w = atomic_load_explicit(&c->word, memory_order_relaxed);
	CHAOS_POINT();
	/* Acquire: pairs with the release store of the last holder. */
	return !(w & PSYNC_CTR_LOCK) &&
	       atomic_compare_exchange_strong_explicit(
	           &c->word, &w, w | PSYNC_CTR_LOCK, memory_order_acquire,
	           memory_order_relaxed);
}

static inline void
psync_ctr_lock(struct psync_ctr *c)
{
	if (!psync_ctr_trylock(c))
		psync_ctr_wait(c);
}

/* Releases the lock, the word now word (lock held).  The store is the
 * release that publishes the count; the barrier orders it before the
 * look at the lock's sleepers, against psync_ctr_wait's registration. */
static inline void
psync_ctr_unlock_word(struct psync_ctr *c, size_t word)
{
	CHAOS_POINT();
	atomic_store_explicit(&c->word, word & ~PSYNC_CTR_LOCK,
	                      memory_order_release);
	CHAOS_POINT();
	psync_barrier_light();
	psync_ec_wake(&c->waiters, false);
}

/* Releases the lock, keeping the word (lock held). */
static inline void
psync_ctr_unlock(struct psync_ctr *c)
{
	psync_ctr_unlock_word(c, psync_ctr_word(c));
}

/*
 * Adaptive spinning before a sleep, for a peer running on another CPU:
 * a sleep and wake-up costs tens of microseconds on a virtual machine,
 * an answer from a running peer a microsecond or two.  psync_spin spins
 * up to SPIN_NS (10 us), with no lock held, until *a's count (a psync_ctr's
 * count) has moved delta past a0 or *b has moved from b0, or until the
 * count, having moved, stops moving for SPIN_SETTLE_NS (200 ns).
 *
 * A delta over 1 lets a waiter come back to a batch rather than follow
 * its peer one message at a time, taking the peer's cache line at each:
 * a stream then moves in runs.  A peer that sends one message and waits
 * for the answer would cost the waiter the settling time at each: a spin
 * that settles on a single message makes the next SPIN_LONE (15) spins
 * wait for one only.  psync_spin_init starts a waiter so, as if it had
 * settled once: a new connection's pipe carries a request or a reply
 * before it carries a stream, and would otherwise never learn it.
 *
 * A spin that ends without a change (or whose change came only after the
 * window: the thread was descheduled, likely for its peer on the same
 * CPU) makes the next waits skip spinning, twice as many each time it
 * fails again, up to 255.  The counters are hints: racing updates are
 * harmless.
 *
 * Two more rules, from what the calling thread learnt (thread-local),
 * for peers that share the waiter's CPU or sleep:
 * - A wait that does not spin, or whose spin ends without a change,
 *   yields the CPU once (sched_yield).  A peer runnable on this CPU then
 *   runs at once and finds no sleeper to wake: a hand-off between two
 *   threads that share a CPU costs one system call, not a futex sleep,
 *   a wake and a switch back.  When the peer did act during a yield,
 *   the thread's next waits yield first and spin only if that yield
 *   brings nothing.  A yield that comes back late (50 us: the CPU went
 *   to another process, which a sleeper woken by its peer would have
 *   preempted) counts for nothing, and the thread's next waits skip
 *   yielding, doubling as spins do.  An idle wait still sleeps after
 *   one system call.
 * - A thread that has just woken a sleeper (psync_ec_kick,
 *   psync_event_kick) spins up to 200 us from that wake-up, whatever
 *   the object's counters say, yielding every SPIN_NS: the sleeper it
 *   woke, likely the peer it now waits for, must first be scheduled
 *   again, which on a virtual machine with an idle CPU takes longer
 *   than SPIN_NS.  Without this, two threads whose hand-offs went
 *   through a sleep would stay so, each one's spin ending before the
 *   other is back.
 */
struct psync_spin {
	_Atomic uint8_t skip;
	_Atomic uint8_t backoff;
	_Atomic uint8_t lone; /* spins left that wait for one only */
};

void psync_spin(struct psync_spin *s, const _Atomic size_t *a, size_t a0,
                size_t delta, const _Atomic uint32_t *b, uint32_t b0);
void psync_spin_init(struct psync_spin *s);

/*
 * A spin before a system call that the peer's next move would undo.  A
 * reader that takes the last message of a pipe with a descriptor makes
 * the descriptor say "empty", and the writer's next message makes it say
 * "not empty" again: a system call each, and, while the writer streams,
 * a reader that never finds the pipe empty at the start of a read, so
 * never waits for a run (psync_spin) and follows the writer a few
 * messages behind, each of them a cache line taken from the writer's
 * CPU.  psync_linger spins, paced as psync_spin, until *a's count has
 * moved delta past a0, or moved and stopped for SPIN_SETTLE_NS, and says
 * whether it moved at all: then the pipe is not empty and neither system
 * call is needed, and the next read finds a run.  Nothing moving for
 * LINGER_IDLE_NS (1 us) ends it, and makes the next ones skip as
 * psync_spin's failed spins do, so a peer that does not come back at
 * once (one of many pipes, a request's answer) costs next to nothing;
 * none lasts over SPIN_NS.
 */
struct psync_linger {
	_Atomic uint8_t skip;
	_Atomic uint8_t backoff;
};

bool psync_linger(struct psync_linger *l, const _Atomic size_t *a, size_t a0,
                  size_t delta);

/*
 * An event that threads wait for under an object's lock: a futex word
 * that moves at every wake-up, and counts of who sleeps.  Wakers touch
 * the word only when somebody sleeps on it, and a sleeper already sent a
 * wake-up is not sent another before it has run.  Sixteen bytes, where a
 * pthread condition variable takes 48.
 */
struct psync_event {
	_Atomic uint32_t seq; /* moves at every wake-up */
	uint32_t sleepers;    /* lock: threads in psync_event_wait */
	uint32_t signaled;    /* lock: wake-ups sent, not yet taken */
};

/*
 * psync_event_wait: sleeps (lock released meanwhile) until the event is
 * woken, the timer's deadline passes (then ETIMEDOUT), or spuriously (0):
 * the caller re-checks its condition either way.  Never EINTR.  Never
 * called with timeout 0.
 */
int psync_event_wait(struct psync_event *ev, pthread_mutex_t *lock,
                     struct psync_timer *t);

/*
 * psync_event_signal: marks one sleeper (all if all) not woken yet as
 * woken (lock held), and returns how many sleepers the caller must wake
 * with psync_event_kick: 0 if none.  Nothing to do, and no atomic
 * operation, if none sleep.
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
 * the caller to close (psync_efd_close) once it no longer holds the
 * lock. */
int psync_efd_release(struct psync_efd *e);

/* psync_efd_close: closes a descriptor the library made, if fd >= 0.
 * Like psync_efd_update, it is not a cancellation point: a thread with a
 * cancellation pending must not end halfway through a library call, its
 * locks held or its messages not yet destroyed. */
void psync_efd_close(int fd);

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
