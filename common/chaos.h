/*
 * chaos.h - preemption points for a chaos build (configure --enable-chaos,
 * which defines PSYNC_CHAOS).
 *
 * A race between threads shows only when one of them loses its CPU at one
 * exact instruction, which a machine with few CPUs almost never does.
 * CHAOS_POINT() marks such an instruction: every step of a protocol that
 * threads race on (taking and releasing a lock, publishing a count,
 * registering as a sleeper, checking, sleeping, waking, calling back,
 * dropping a reference).  In a chaos build each point, at random, does
 * nothing, spins, yields the CPU or sleeps a few microseconds, so that the
 * stress tests reach those windows far more often.  In an ordinary build
 * a point is ((void)0) and the code is the same as without it
 * (tools/chaos-nop.sh checks that).
 *
 * The choices come from a generator per thread, seeded from one process
 * seed and the order in which threads first reach a point.  The seed is
 * POLYSOCKET_CHAOS_SEED from the environment; without it the library
 * draws one and prints it on stderr.  Test programs call
 * psync_chaos_announce() first, which draws it if need be, puts it in the
 * environment and prints it, so any run can be repeated with the same
 * choices (the scheduler's own choices differ from run to run).
 */
#ifndef POLYSOCKET_CHAOS_H
#define POLYSOCKET_CHAOS_H

#include <stdbool.h>
#include <stdint.h>

#define PSYNC_CHAOS_ENV "POLYSOCKET_CHAOS_SEED"

#ifdef PSYNC_CHAOS

#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

void psync_chaos_point(unsigned *hits);

/* Whether this process does without membarrier(2) (sync.h): an odd seed
 * says so, so that chaos runs also cover the fallback of kernels that
 * lack it, where both sides of psync_barrier_light/heavy are fences. */
bool psync_chaos_no_membarrier(void);

/* Each point counts, per thread, how often it was reached: the more, the
 * less often it acts (chaos.c).  A static in a static inline function is
 * one per translation unit, which is all this needs. */
#define CHAOS_POINT()                                                         \
	do {                                                                  \
		static _Thread_local unsigned psync_chaos_hits_;              \
		psync_chaos_point(&psync_chaos_hits_);                        \
	} while (0)

/* A fresh seed, from getrandom(2) or else the clock and the pid. */
static inline uint64_t
psync_chaos_fresh_seed(void)
{
	struct timespec ts;
	uint64_t s;

	if (getrandom(&s, sizeof s, GRND_NONBLOCK) == (ssize_t)sizeof s)
		return s;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 32 ^
	       (uint64_t)getpid() << 16;
}

/*
 * psync_chaos_announce: for test programs, before anything else: takes
 * the seed from the environment, or draws one and puts it there (for the
 * library, and for any child process), then prints it on stdout.
 */
static inline void
psync_chaos_announce(void)
{
	const char *env = getenv(PSYNC_CHAOS_ENV);
	char buf[24];

	if (env == NULL || *env == '\0') {
		snprintf(buf, sizeof buf, "%llu",
		         (unsigned long long)psync_chaos_fresh_seed());
		setenv(PSYNC_CHAOS_ENV, buf, 1);
		env = buf;
	}
	printf("chaos seed: %s (%s=%s replays it; barriers: %s)\n", env,
	       PSYNC_CHAOS_ENV, env,
	       strtoull(env, NULL, 0) & 1 ? "fences" : "membarrier");
	fflush(stdout);
}

#else

#define CHAOS_POINT() ((void)0)
#define psync_chaos_announce() ((void)0)

#endif /* PSYNC_CHAOS */

#endif /* POLYSOCKET_CHAOS_H */
