/*
 * chaos.c - the preemption points of a chaos build (chaos.h).
 *
 * Each thread goes through phases of a random length: a quiet one, where
 * its points do nothing, or one where one point in 4, 16 or 64 acts.
 * Quiet phases let a thread run a protocol through at full speed against
 * another that is being held up, which is how most races are lost; busy
 * ones hold up many steps.  A point that this thread has reached often
 * acts less often, down to 64 times less: the steps every message takes
 * would otherwise slow the messages a hundredfold, and with them the
 * rarer steps (a sleep, a wake-up, a connection's decision) where most
 * windows are.  A point that acts spins for up to about 1000 pauses (half
 * of them), yields the CPU (a quarter) or sleeps (a quarter): 1 to 30
 * microseconds, or one time in 8 up to 300, about as long as a woken
 * thread may take to run on a virtual machine.
 */
#include "config.h"

#include "common/chaos.h"

#ifdef PSYNC_CHAOS

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* The process seed: POLYSOCKET_CHAOS_SEED, else drawn (and printed). */
static uint64_t chaos_seed;
static pthread_once_t chaos_once = PTHREAD_ONCE_INIT;

/* Threads that have reached a point, numbered in that order. */
static _Atomic uint64_t chaos_threads;

struct chaos_thread {
	uint64_t rng;
	uint32_t left; /* points left in this phase */
	uint32_t mask; /* a point acts when (random & mask) == 0 */
	bool quiet;    /* this phase's points do nothing */
	bool started;
};

static _Thread_local struct chaos_thread chaos_self;

static void
chaos_init(void)
{
	const char *env = getenv(PSYNC_CHAOS_ENV);
	char *end;

	if (env != NULL && *env != '\0') {
		errno = 0;
		chaos_seed = strtoull(env, &end, 0);
		if (errno == 0 && *end == '\0')
			return;
		fprintf(stderr, "polysocket: %s=%s is not a number\n",
		        PSYNC_CHAOS_ENV, env);
		abort();
	}
	chaos_seed = psync_chaos_fresh_seed();
	fprintf(stderr, "polysocket: chaos seed %llu (%s=%llu replays it)\n",
	        (unsigned long long)chaos_seed, PSYNC_CHAOS_ENV,
	        (unsigned long long)chaos_seed);
}

bool
psync_chaos_no_membarrier(void)
{
	pthread_once(&chaos_once, chaos_init);
	return chaos_seed & 1;
}

/* splitmix64 */
static uint64_t
chaos_next(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static void
chaos_start(struct chaos_thread *t)
{
	/* Relaxed: the number only has to be unique. */
	uint64_t n =
	    atomic_fetch_add_explicit(&chaos_threads, 1, memory_order_relaxed);

	pthread_once(&chaos_once, chaos_init);
	t->rng = chaos_seed ^ (n + 1) * UINT64_C(0xd1342543de82ef95);
	(void)chaos_next(&t->rng);
	t->left = 0;
	t->started = true;
	/* So that a sleep of a few microseconds is one, not the default
	 * 50 us of timer slack. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
}

static void
chaos_phase(struct chaos_thread *t)
{
	uint64_t r = chaos_next(&t->rng);

	/* 16 to 4096 points long. */
	t->left = 16u << (r % 9);
	r >>= 8;
	t->quiet = r % 4 == 0;
	r >>= 4;
	t->mask = (1u << (2 + 2 * (r % 3))) - 1; /* 1 in 4, 16 or 64 */
}

static inline void
chaos_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

void
psync_chaos_point(unsigned *hits)
{
	struct chaos_thread *t = &chaos_self;
	int saved = errno; /* a point may sit between a call and its errno */
	struct timespec ts;
	uint64_t r;
	unsigned n, shift;

	if (!t->started)
		chaos_start(t);
	if (t->left-- == 0)
		chaos_phase(t);
	r = chaos_next(&t->rng);
	/* Reached 2^k times: acts 2^(k/2) times less often, at most 64. */
	n = *hits < UINT_MAX ? ++*hits : *hits;
	shift = (32 - (unsigned)__builtin_clz(n)) / 2;
	if (shift > 6)
		shift = 6;
	if (t->quiet || (r & (((t->mask + 1) << shift) - 1)) != 0) {
		errno = saved;
		return;
	}
	r = chaos_next(&t->rng); /* the bits above were mostly zeros */
	switch (r % 4) {
	case 0:
	case 1:
		n = 1u << ((r >> 2) % 11);
		while (n-- > 0)
			chaos_relax();
		break;
	case 2:
		sched_yield();
		break;
	default:
		/* Mostly a few microseconds; one in 8, up to 300. */
		n = (r >> 2) % 8 == 0 ? 300 : 30;
		ts.tv_sec = 0;
		ts.tv_nsec = 1000 * (long)(1 + (r >> 5) % n);
		/* Not nanosleep, a cancellation point: no library call
		 * is one (polypipe.h), the chaos build's included. */
		syscall(SYS_nanosleep, &ts, NULL);
		break;
	}
	errno = saved;
}

#endif /* PSYNC_CHAOS */
