/*
 * sync.c - waiting, eventfd readiness and notifier callbacks.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/sync.h"

#ifdef PSYNC_FAULTS
/* The fault-injection tests are single-threaded: plain counters do. */
unsigned long psync_fail_at;
unsigned long psync_allocs;

static bool
psync_fault(void)
{
	psync_allocs++;
	if (psync_fail_at == 0 || --psync_fail_at > 0)
		return false;
	errno = ENOMEM;
	return true;
}

void *
psync_malloc(size_t size)
{
	return psync_fault() ? NULL : malloc(size);
}

void *
psync_calloc(size_t n, size_t size)
{
	return psync_fault() ? NULL : calloc(n, size);
}

void *
psync_realloc(void *p, size_t size)
{
	return psync_fault() ? NULL : realloc(p, size);
}

void *
psync_aligned_alloc(size_t align, size_t size)
{
	return psync_fault() ? NULL : aligned_alloc(align, size);
}
#endif

/* How long a waiter spins before sleeping.  A peer running on another
 * CPU answers a message within a microsecond or two, while a sleep and
 * wake-up costs tens of microseconds on a virtual machine. */
#ifndef SPIN_NS
#define SPIN_NS 10000
#endif

/* The most waits skipped between two spins that fail: a spin that cannot
 * succeed (same CPU) then costs its window once per 255 waits. */
#define SPIN_BACKOFF_MAX 255

/* How long a spin waiting for a batch goes on once part of it has come
 * and nothing more does: a peer that writes a stream adds a message every
 * few tens of nanoseconds, one that answers a request stops at one. */
#ifndef SPIN_SETTLE_NS
#define SPIN_SETTLE_NS 200
#endif

/* The spins that wait for one message only after one that settled on a
 * single message: the peer answers requests rather than streams. */
#ifndef SPIN_LONE
#define SPIN_LONE 15
#endif

/* How long a linger waits for the peer's first move (psync_linger). */
#ifndef LINGER_IDLE_NS
#define LINGER_IDLE_NS 1000
#endif

/* The most pauses between two looks at the peer's counter. */
#define SPIN_PACE_MAX 16

static long
futex(_Atomic uint32_t *word, int op, uint32_t val,
      const struct timespec *deadline)
{
	return syscall(SYS_futex, word, op | FUTEX_PRIVATE_FLAG, val, deadline,
	               NULL, FUTEX_BITSET_MATCH_ANY);
}

static int64_t
clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* Whether another CPU can run a peer while we spin; asked once. */
static bool
spin_useful(void)
{
	static _Atomic int cpus; /* 0: not asked yet */
	int n = atomic_load_explicit(&cpus, memory_order_relaxed);

	if (n == 0) {
		n = (int)sysconf(_SC_NPROCESSORS_ONLN);
		/* Any thread may store the same answer: relaxed suffices. */
		atomic_store_explicit(&cpus, n > 0 ? n : 1,
		                      memory_order_relaxed);
	}
	return n > 1;
}

/* A yield that takes longer than this gave the CPU to another process
 * rather than to a peer that answers within microseconds. */
#ifndef YIELD_LATE_NS
#define YIELD_LATE_NS 50000
#endif

/* How long a waiter that has just woken a sleeper spins for its answer:
 * the sleeper must first be scheduled again, which on a virtual machine
 * whose CPU went idle takes tens of microseconds, more than SPIN_NS. */
#ifndef WAKE_SPIN_NS
#define WAKE_SPIN_NS 200000
#endif

/*
 * What this thread learnt of its peers (sync.h): whether the last
 * hand-off came while it yielded (the peer shares its CPU), the backoff
 * of its yields that came back late, and when it last woke a sleeper.
 * Thread-local and plain: only this thread reads or writes it; in the
 * initial-exec model, so that reaching it in a shared library is one
 * instruction rather than a call to __tls_get_addr.
 */
static _Thread_local __attribute__((tls_model("initial-exec"))) struct {
	bool yield_first;
	bool readied; /* made a descriptor readable since the last spin */
	uint8_t skip, backoff; /* of yields */
	int64_t kicked;
} spin_thread;

/* The backoff of a spin or a yield that did not pay: 1, 3, 7, ... */
static uint8_t
spin_backoff(uint8_t backoff)
{
	return backoff == 0                     ? 1
	       : backoff > SPIN_BACKOFF_MAX / 2 ? SPIN_BACKOFF_MAX
	                                        : backoff * 2 + 1;
}

/* A spin that did not pay: the next ones of its kind skip, longer each
 * time. */
static void
spin_missed(_Atomic uint8_t *skip, _Atomic uint8_t *backoff)
{
	uint8_t n =
	    spin_backoff(atomic_load_explicit(backoff, memory_order_relaxed));

	atomic_store_explicit(backoff, n, memory_order_relaxed);
	atomic_store_explicit(skip, n, memory_order_relaxed);
}

/* Pauses between two looks at a counter that has moved `moved` of the
 * `delta` awaited: each look takes its line from the peer, so once the
 * run is coming, look about once per two pauses per move still
 * missing. */
static void
spin_pace(size_t moved, size_t delta)
{
	unsigned k = 1;

	if (moved > 0)
		k = delta - moved > SPIN_PACE_MAX / 2
		        ? SPIN_PACE_MAX
		        : 2 * (unsigned)(delta - moved);
	while (k-- > 0)
		cpu_relax();
}

/* Whether *a's count moved past a0 or *b moved from b0 (relaxed: the
 * caller re-checks with the ordering it needs). */
static bool
spin_moved(const _Atomic size_t *a, size_t a0, const _Atomic uint32_t *b,
           uint32_t b0)
{
	return (atomic_load_explicit(a, memory_order_relaxed) >>
	        PSYNC_CTR_SHIFT) != a0 ||
	       atomic_load_explicit(b, memory_order_relaxed) != b0;
}

/*
 * Yields the CPU once, unless yields came back late lately; whether the
 * peer acted meanwhile on this CPU (a hand-off).  A yield that came back
 * late gave the CPU to another process: it counts for nothing, and the
 * next yields are skipped, doubling as spins are.
 */
static bool
spin_yield(const _Atomic size_t *a, size_t a0, const _Atomic uint32_t *b,
           uint32_t b0)
{
	int64_t t0;

	if (spin_thread.skip > 0) {
		spin_thread.skip--;
		return false;
	}
	t0 = clock_ns();
	sched_yield();
	if (clock_ns() - t0 >= YIELD_LATE_NS) {
		spin_thread.backoff = spin_backoff(spin_thread.backoff);
		spin_thread.skip = spin_thread.backoff;
		return false;
	}
	spin_thread.backoff = 0;
	return spin_moved(a, a0, b, b0);
}

void
psync_spin(struct psync_spin *s, const _Atomic size_t *a, size_t a0,
           size_t delta, const _Atomic uint32_t *b, uint32_t b0)
{
	uint8_t skip, lone;
	int64_t until, now, next_yield, quiet = 0;
	bool changed = false, woke;
	size_t moved, last = 0;
	unsigned i;

	/* The peer shared this CPU at the last hand-off: let it run. */
	if (spin_thread.yield_first) {
		if (spin_yield(a, a0, b, b0))
			return;
		spin_thread.yield_first = false;
	}
	if (!spin_useful())
		goto yield; /* the peer can only be on this CPU */
	/* Just woke a sleeper, likely the peer this waits for: spin until
	 * it can be back, whatever s says.  Else two threads whose
	 * hand-offs went through a sleep stay so, each spin ending before
	 * the other is scheduled again. */
	now = clock_ns();
	if (spin_thread.readied) {
		/* Counted from now: the clock is read here, where a spin
		 * reads it anyway, rather than at every descriptor write. */
		spin_thread.readied = false;
		spin_thread.kicked = now;
	}
	woke = now - spin_thread.kicked < WAKE_SPIN_NS;
	skip = atomic_load_explicit(&s->skip, memory_order_relaxed);
	if (skip > 0 && !woke) {
		atomic_store_explicit(&s->skip, skip - 1,
		                      memory_order_relaxed);
		goto yield;
	}
	lone = atomic_load_explicit(&s->lone, memory_order_relaxed);
	if (lone > 0) {
		atomic_store_explicit(&s->lone, lone - 1,
		                      memory_order_relaxed);
		delta = 1;
	}
	/* Relaxed: the caller re-checks with the ordering it needs. */
	until = now + SPIN_NS;
	if (woke && spin_thread.kicked + WAKE_SPIN_NS > until)
		until = spin_thread.kicked + WAKE_SPIN_NS;
	next_yield = now + SPIN_NS;
	for (i = 1;; i++) {
		moved = (atomic_load_explicit(a, memory_order_relaxed) >>
		         PSYNC_CTR_SHIFT) -
		        a0;
		if (moved >= delta ||
		    atomic_load_explicit(b, memory_order_relaxed) != b0) {
			changed = true;
			break;
		}
		if (moved != last) {
			last = moved;
			quiet = 0;
		} else if (moved > 0) {
			/* Part of the batch came: wait for the rest only
			 * while it keeps coming. */
			now = clock_ns();
			if (quiet == 0)
				quiet = now;
			if (now - quiet >= SPIN_SETTLE_NS || now >= until) {
				changed = now < until;
				if (moved == 1)
					atomic_store_explicit(
					    &s->lone, SPIN_LONE,
					    memory_order_relaxed);
				break;
			}
		} else if (i % 64 == 0) {
			now = clock_ns();
			if (now >= until)
				break;
			/* A long spin lets a peer that shares this CPU
			 * run now and then. */
			if (now >= next_yield) {
				sched_yield();
				next_yield = clock_ns() + SPIN_NS;
			}
		}
		spin_pace(moved, delta);
	}
	/* A change that came only after the window was not the spin's
	 * doing: this thread was descheduled, most likely for the peer on
	 * the same CPU, and spinning there only delays the peer. */
	if (changed && clock_ns() > until)
		changed = false;
	if (changed) {
		atomic_store_explicit(&s->backoff, 0, memory_order_relaxed);
		return;
	}
	spin_missed(&s->skip, &s->backoff);
yield:
	/* The peer may be runnable here: a hand-off during the yield says
	 * so, and the next waits yield first. */
	if (spin_yield(a, a0, b, b0))
		spin_thread.yield_first = true;
}

bool
psync_linger(struct psync_linger *l, const _Atomic size_t *a, size_t a0,
             size_t delta)
{
	uint8_t skip = atomic_load_explicit(&l->skip, memory_order_relaxed);
	int64_t start, now, quiet;
	size_t moved, last = 0;

	if (skip > 0) {
		atomic_store_explicit(&l->skip, skip - 1,
		                      memory_order_relaxed);
		return false;
	}
	if (!spin_useful())
		return false;
	CHAOS_POINT();
	start = quiet = clock_ns();
	for (;;) {
		/* Relaxed: the caller re-checks with the ordering it
		 * needs. */
		moved = (atomic_load_explicit(a, memory_order_relaxed) >>
		         PSYNC_CTR_SHIFT) -
		        a0;
		if (moved >= delta)
			break;
		now = clock_ns();
		if (moved != last) {
			last = moved;
			quiet = now;
		} else if (now - quiet >=
		               (moved > 0 ? SPIN_SETTLE_NS : LINGER_IDLE_NS) ||
		           now - start >= SPIN_NS) {
			break; /* settled, idle, or long enough */
		}
		spin_pace(moved, delta);
	}
	if (moved > 0) {
		atomic_store_explicit(&l->backoff, 0, memory_order_relaxed);
		return true;
	}
	spin_missed(&l->skip, &l->backoff);
	return false;
}

void
psync_spin_init(struct psync_spin *s)
{
	atomic_init(&s->skip, 0);
	atomic_init(&s->backoff, 0);
	atomic_init(&s->lone, SPIN_LONE);
}

_Atomic int psync_asym;

static void
asym_init(void)
{
	long cmds;

#ifdef PSYNC_CHAOS
	/* Half the chaos runs take the fallback of kernels without it. */
	if (psync_chaos_no_membarrier())
		return;
#endif
	cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);

	if (cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
	    syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
	            0, 0) == 0)
		atomic_store_explicit(&psync_asym, 1, memory_order_relaxed);
}

void
psync_barrier_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, asym_init);
}

void
psync_barrier_heavy(void)
{
	psync_barrier_init();
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&psync_asym, memory_order_relaxed) == 1)
		syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0,
		        0);
}

void
psync_ctr_wait(struct psync_ctr *c)
{
	struct psync_timer forever = psync_timer(-1);
	uint32_t seq;
	unsigned i;

	for (;;) {
		/* A side's lock is held for tens of nanoseconds, or for
		 * one eventfd system call when its readiness flips on a
		 * pipe with a descriptor (ready.h): a holder running on
		 * another CPU lets go long before a sleep would pay. */
		if (spin_useful()) {
			for (i = 0; i < 128; i++) {
				if (psync_ctr_trylock(c))
					return;
				cpu_relax();
			}
		}
		/* Registered and fenced: either the holder's release sees
		 * us, or we see the release here. */
		seq = psync_ec_prepare(&c->waiters);
		if (psync_ctr_trylock(c)) {
			psync_ec_cancel(&c->waiters, seq);
			return;
		}
		CHAOS_POINT();
		psync_ec_sleep(&c->waiters, seq, &forever);
		if (psync_ctr_trylock(c))
			return;
	}
}

/* The futex word of an eventcount: the low half of its 64 bits. */
static _Atomic uint32_t *
ec_futex(struct psync_ec *ec)
{
	return (_Atomic uint32_t *)&ec->word +
	       (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__);
}

uint32_t
psync_ec_prepare(struct psync_ec *ec)
{
	uint64_t w;

	CHAOS_POINT();
	w = atomic_fetch_add_explicit(&ec->word, PSYNC_EC_ONE,
	                              memory_order_seq_cst);
	CHAOS_POINT();
	psync_barrier_heavy();
	CHAOS_POINT();
	return (uint32_t)w;
}

void
psync_ec_cancel(struct psync_ec *ec, uint32_t seq)
{
	uint64_t w;

	CHAOS_POINT();
	w = atomic_load_explicit(&ec->word, memory_order_relaxed);
	/* While the number has not moved, no waker has taken our
	 * registration off the count: take it off.  Once it has moved, a
	 * waker counted us as woken. */
	while ((uint32_t)w == seq && w >= PSYNC_EC_ONE &&
	       !atomic_compare_exchange_weak_explicit(
	           &ec->word, &w, w - PSYNC_EC_ONE, memory_order_relaxed,
	           memory_order_relaxed))
		;
}

int
psync_ec_sleep(struct psync_ec *ec, uint32_t seq, struct psync_timer *t)
{
	const struct timespec *deadline = psync_timer_deadline(t);
	bool timed_out;
	int saved;
	long r;

	assert(t->timeout_ms != 0);
	/* EINTR and EAGAIN (the number moved) are wake-ups like any
	 * other.  The caller's errno is kept: a call that succeeds leaves
	 * it as it was. */
	saved = errno;
	CHAOS_POINT();
	r = futex(ec_futex(ec), FUTEX_WAIT_BITSET, seq, deadline);
	timed_out = r < 0 && errno == ETIMEDOUT;
	errno = saved;
	CHAOS_POINT();
	psync_ec_cancel(ec, seq);
	if (deadline == NULL)
		return 0;
	if (timed_out)
		return ETIMEDOUT;
	return psync_timer_passed(t) ? ETIMEDOUT : 0;
}

void
psync_ec_kick(struct psync_ec *ec, bool all)
{
	uint64_t w = atomic_load_explicit(&ec->word, memory_order_relaxed);
	uint64_t left;

	do {
		if (w < PSYNC_EC_ONE)
			return; /* another waker took them */
		left = all ? 0 : (w >> 32) - 1;
		CHAOS_POINT();
		/* The sequence number wraps within its 32 bits. */
	} while (!atomic_compare_exchange_weak_explicit(
	    &ec->word, &w, (left << 32) | (uint32_t)(w + 1),
	    memory_order_relaxed, memory_order_relaxed));
	CHAOS_POINT();
	futex(ec_futex(ec), FUTEX_WAKE, all ? INT32_MAX : 1, NULL);
	spin_thread.kicked = clock_ns(); /* for this thread's next spin */
}

const struct timespec *
psync_timer_deadline(struct psync_timer *t)
{
	if (t->timeout_ms < 0)
		return NULL;
	if (!t->armed) {
		clock_gettime(CLOCK_MONOTONIC, &t->deadline);
		t->deadline.tv_sec += t->timeout_ms / 1000;
		t->deadline.tv_nsec += (long)(t->timeout_ms % 1000) * 1000000;
		if (t->deadline.tv_nsec >= 1000000000) {
			t->deadline.tv_sec++;
			t->deadline.tv_nsec -= 1000000000;
		}
		t->armed = true;
	}
	return &t->deadline;
}

bool
psync_timer_passed(struct psync_timer *t)
{
	const struct timespec *deadline = psync_timer_deadline(t);
	struct timespec now;

	if (deadline == NULL)
		return false;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > deadline->tv_sec ||
	       (now.tv_sec == deadline->tv_sec &&
	        now.tv_nsec >= deadline->tv_nsec);
}

int
psync_event_wait(struct psync_event *ev, pthread_mutex_t *lock,
                 struct psync_timer *t)
{
	const struct timespec *deadline;
	bool timed_out;
	uint32_t seq;
	int saved;
	long r;

	assert(t->timeout_ms != 0);
	deadline = psync_timer_deadline(t);
	/* A wake-up after this load moves the word, so the futex call
	 * below returns at once rather than missing it. */
	CHAOS_POINT();
	seq = atomic_load_explicit(&ev->seq, memory_order_relaxed);
	ev->sleepers++;
	pthread_mutex_unlock(lock);
	CHAOS_POINT();
	/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline.
	 * EINTR and EAGAIN (the word moved) are wake-ups like any other. */
	saved = errno; /* kept, as in psync_ec_sleep */
	r = futex(&ev->seq, FUTEX_WAIT_BITSET, seq, deadline);
	timed_out = r < 0 && errno == ETIMEDOUT;
	errno = saved;
	CHAOS_POINT();
	pthread_mutex_lock(lock);
	/* Take one wake-up, ours or not: one taken by a sleeper that left
	 * for another reason only makes the next waker call the kernel once
	 * more, while one left over could make it skip a sleeper. */
	ev->sleepers--;
	if (ev->signaled > 0)
		ev->signaled--;
	if (deadline == NULL)
		return 0;
	if (timed_out)
		return ETIMEDOUT;
	/* Woken right at the deadline counts as timed out too, so the
	 * caller never sleeps again past it. */
	return psync_timer_passed(t) ? ETIMEDOUT : 0;
}

int
psync_event_signal(struct psync_event *ev, bool all)
{
	/* Sleepers sent a wake-up that have not run yet need no other. */
	bool sleeping = ev->sleepers > ev->signaled;

	CHAOS_POINT();
	if (!sleeping)
		return 0;
	/* Moving the word before the kick is what makes a late kick safe:
	 * a sleeper that reaches the kernel after this returns at once.
	 * Relaxed: whoever wakes re-checks under the lock, which orders what
	 * it reads after the waker's changes. */
	atomic_fetch_add_explicit(&ev->seq, 1, memory_order_relaxed);
	ev->signaled = all ? ev->sleepers : ev->signaled + 1;
	return all ? INT32_MAX : 1;
}

void
psync_event_kick(struct psync_event *ev, int n)
{
	CHAOS_POINT();
	if (n > 0) { /* else ev may be NULL */
		futex(&ev->seq, FUTEX_WAKE, (uint32_t)n, NULL);
		spin_thread.kicked = clock_ns(); /* as in psync_ec_kick */
	}
}

void
psync_event_wake(struct psync_event *ev, bool all)
{
	psync_event_kick(ev, psync_event_signal(ev, all));
}

int
psync_efd_open(struct psync_efd *e, bool ready)
{
	int fd = eventfd(ready ? 1 : 0, EFD_CLOEXEC | EFD_NONBLOCK);

	if (fd < 0) {
		/* eventfd's only other failures (EINVAL, ENODEV) cannot
		 * happen with these flags on Linux. */
		return -1;
	}
	e->fd = fd;
	e->ready = ready;
	return 0;
}

void
psync_efd_update(struct psync_efd *e, bool ready)
{
	uint64_t v = 1;
	ssize_t n;

	CHAOS_POINT();
	if (e->fd < 0 || e->ready == ready)
		return;
	/* The counter is only ever 0 or 1, so neither call can block or
	 * overflow: a failure here is a bug in the library.  System calls
	 * rather than glibc's read and write, which are cancellation
	 * points: a pending pthread_cancel would end the thread here with
	 * the caller's lock held.  They also skip the wrappers' switching
	 * of the cancellation type, a quarter of the cost of a pipe that
	 * empties and fills again under epoll. */
	if (ready)
		n = syscall(SYS_write, e->fd, &v, sizeof v);
	else
		n = syscall(SYS_read, e->fd, &v, sizeof v);
	assert(n == (ssize_t)sizeof v);
	(void)n;
	e->ready = ready;
	/* A descriptor made readable likely woke a thread in poll(), as
	 * psync_ec_kick wakes one: this thread's next wait, most likely for
	 * that thread's answer, spins as it would after a kick. */
	if (ready)
		spin_thread.readied = true;
}

int
psync_efd_release(struct psync_efd *e)
{
	int fd = e->fd;

	e->fd = -1;
	e->ready = false;
	return fd;
}

void
psync_efd_close(int fd)
{
	/* Linux releases the descriptor even when close fails (EINTR
	 * included): there is nothing to retry. */
	if (fd >= 0)
		(void)syscall(SYS_close, fd);
}

/* The calls this thread is inside, innermost first, so a setter can tell
 * whether it runs inside a callback it replaces. */
struct psync_frame {
	const struct psync_notifier *n;
	struct psync_frame *up;
};

static _Thread_local struct psync_frame *psync_frames;

static bool
psync_inside(const struct psync_notifier *n)
{
	const struct psync_frame *f;

	for (f = psync_frames; f != NULL; f = f->up)
		if (f->n == n)
			return true;
	return false;
}

void
psync_notify_set(struct psync_notifier *n, polypipe_notify_fn *fn, void *arg,
                 pthread_mutex_t *lock, struct psync_event *ev)
{
	struct psync_timer forever = psync_timer(-1);

	CHAOS_POINT();
	n->fn = fn;
	n->arg = arg;
	n->gen++;
	n->stale += n->running;
	n->running = 0;
	CHAOS_POINT();
	if (psync_inside(n))
		return;
	while (n->stale > 0)
		psync_event_wait(ev, lock, &forever);
}

void
psync_notify_fire(struct psync_notifier *n, pthread_mutex_t *lock,
                  struct psync_event *ev)
{
	struct psync_frame f = { .n = n, .up = psync_frames };
	polypipe_notify_fn *fn = n->fn;
	void *arg = n->arg;
	unsigned gen = n->gen;

	if (fn == NULL)
		return;
	n->running++;
	pthread_mutex_unlock(lock);
	CHAOS_POINT();
	psync_frames = &f;
	fn(arg);
	psync_frames = f.up;
	CHAOS_POINT();
	pthread_mutex_lock(lock);
	if (gen == n->gen) {
		n->running--;
		return;
	}
	/* Replaced while we ran: a setter may be waiting for us. */
	CHAOS_POINT();
	if (--n->stale == 0)
		psync_event_wake(ev, true);
}
