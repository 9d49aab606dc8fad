/*
 * check_stress.c - stress tests: many threads racing on pipes, servers,
 * clients and sets, checked against SPEC.md by accounting for every
 * message and every connection attempt.
 *
 * Every test is bounded by a count and by a time budget of
 * CLOCK_MONOTONIC: it runs rounds (or moves messages) until the count is
 * reached or the budget is spent, but always at least a minimum, and then
 * checks the accounting for what ran.  Slow builds (sanitizers, valgrind)
 * do less work in about the same time; no outcome depends on timing.
 *
 * Nothing sleeps to synchronise: threads wait in the library's blocking
 * calls, on barriers and semaphores, or in poll(2) with timeouts that
 * only a broken library reaches (LONG_MS).  Threads other than the
 * test's own never call Check's assertions: they record failures
 * (fail_note) and the test asserts once it has joined them, so that
 * CK_FORK=no works.
 *
 * Each test draws a random seed (STRESS_SEED in the environment fixes
 * it), printed with any failure.  STRESS_VERBOSE=1 prints what each test
 * counted.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include <polysocket/polyset.h>
#include <polysocket/polysocket.h>

#include "testutil.h"

Suite *stress_suite(void);

/* A wait that must end because of another thread's action: reaching it
 * means the library lost a wake-up. */
#define LONG_MS 10000

/* The tag of the test's own thread, for self_tag. */
#define MAIN_TAG 1000

/* --- failures, randomness, budgets ------------------------------------- */

/* The failures worker threads saw: how many, and the first one. */
static struct {
	pthread_mutex_t lock;
	int count;
	char first[256];
} fails = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* This test's seed, and whether to print what it counted. */
static uint64_t seed;
static bool verbose;

/* Which thread this is, as the tests number them. */
static _Thread_local int self_tag;

static void fail_note(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* Records a failure; any thread may call it. */
static void
fail_note(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&fails.lock);
	if (fails.count++ == 0) {
		va_start(ap, fmt);
		vsnprintf(fails.first, sizeof fails.first, fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&fails.lock);
}

/* Asserts that no thread recorded a failure (the test's thread only). */
static void
assert_no_failures(void)
{
	int n;

	pthread_mutex_lock(&fails.lock);
	n = fails.count;
	pthread_mutex_unlock(&fails.lock);
	ck_assert_msg(n == 0, "%d failure(s), seed %llu; the first: %s", n,
	              (unsigned long long)seed, fails.first);
}

/* Starts a test: no failures yet, a fresh seed. */
static void
stress_begin(void)
{
	const char *env = getenv("STRESS_SEED");
	struct timespec ts;

	pthread_mutex_lock(&fails.lock);
	fails.count = 0;
	fails.first[0] = '\0';
	pthread_mutex_unlock(&fails.lock);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	seed = env != NULL ? strtoull(env, NULL, 0)
	                   : (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 32 ^
	                         (uint64_t)getpid() << 20;
	env = getenv("STRESS_VERBOSE");
	verbose = env != NULL && *env != '\0' && *env != '0';
	self_tag = MAIN_TAG;
}

static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints what a test counted, if asked to. */
static void
report(const char *fmt, ...)
{
	va_list ap;

	if (!verbose)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* splitmix64: a small generator each thread keeps its own state of. */
static uint64_t
rng_next(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* A number in [0, n), n > 0. */
static unsigned
rng_below(uint64_t *s, unsigned n)
{
	return (unsigned)(rng_next(s) % n);
}

static bool
rng_coin(uint64_t *s)
{
	return rng_below(s, 2) == 0;
}

/* The state for stream b of round a of this test. */
static uint64_t
rng_seed(uint64_t a, uint64_t b)
{
	uint64_t s = seed ^ (a * UINT64_C(0x100000001b3) + b);

	(void)rng_next(&s);
	return s;
}

/* Lets up to max short delays pass, so that threads meet at different
 * points of each other's calls from round to round. */
static void
jitter(uint64_t *s, unsigned max)
{
	unsigned n = rng_below(s, max + 1);

	for (unsigned i = 0; i < n; i++) {
		if (rng_below(s, 4) == 0) {
			sched_yield();
		} else {
			for (volatile int j = 0; j < 64; j++)
				;
		}
	}
}

/* Runs until max is reached or the time is up, but at least min. */
struct budget {
	int64_t deadline;
	long min;
	long max;
	long done;
};

static void
budget_start(struct budget *b, long min, long max, int ms)
{
	b->deadline = now_ms() + ms;
	b->min = min;
	b->max = max;
	b->done = 0;
}

static bool
budget_more(const struct budget *b)
{
	return b->done < b->min ||
	       (b->done < b->max && now_ms() < b->deadline);
}

/*
 * A timeout for a call that may have to wait: mostly one that only a lost
 * wake-up reaches, or none at all (-1), sometimes 0 or a few
 * milliseconds, so that failing and timed calls race with the rest too.
 */
static int
pick_timeout(uint64_t *s)
{
	switch (rng_below(s, 8)) {
	case 0:
		return 0;
	case 1:
		return 1 + (int)rng_below(s, 3);
	case 2:
		return -1;
	default:
		return LONG_MS;
	}
}

/* Whether a call made with timeout t that failed with err only has to be
 * made again (it asked not to wait, or to wait briefly). */
static bool
retry_after(int t, int err)
{
	if (t == 0 && err == EAGAIN) {
		sched_yield();
		return true;
	}
	return t > 0 && t < LONG_MS && err == ETIMEDOUT;
}

/* Waits up to ms for fd to poll readable: 1 if it does, else 0. */
static int
wait_readable(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int n;

	do
		n = poll(&pfd, 1, ms);
	while (n < 0 && errno == EINTR);
	return n == 1 && (pfd.revents & POLLIN) != 0;
}

static void
spawn(pthread_t *t, void *(*fn)(void *), void *arg)
{
	ck_assert_int_eq(pthread_create(t, NULL, fn, arg), 0);
}

static void
join(pthread_t t)
{
	ck_assert_int_eq(pthread_join(t, NULL), 0);
}

/* --- MPMC: producers and consumers through one small pipe ------------- */

enum {
	MPMC_PRODUCERS = 4,
	MPMC_CONSUMERS = 4,
	MPMC_CAPACITY = 8,
	MPMC_MAX = 40000, /* messages per producer */
	/* The streaming run: blocking calls through a roomy pipe, as a
	 * benchmark does, so that a thread takes a side's lock many times
	 * in a row before others take their turn: what a lock tuned for
	 * one thread per side (biased) gets wrong first. */
	STREAM_CAPACITY = 1024,
	STREAM_MAX = 2000000,
	STREAM_MS = 100, /* a round: each starts with new threads */
	STREAM_ROUNDS = 10,
	MPMC_MIN = 500,
	MPMC_MS = 1200,
	MPMC_BATCH = 16,
};

/* A message: the producer in the low 2 bits, its sequence number above
 * (producer 0's first message is NULL, a valid message). */
#define MPMC_MSG(p, seq) MSG((uintptr_t)(seq) << 2 | (uintptr_t)(p))

struct mpmc {
	polypipe *rd;
	polypipe *wr;
	bool batch;
	bool blocking; /* timeout -1 always */
	size_t capacity;
	long max; /* messages per producer */
	int64_t deadline;
	atomic_uchar *seen; /* [producer * max + seq] */
	long produced[MPMC_PRODUCERS];
	long consumed[MPMC_CONSUMERS];
	long calls[MPMC_PRODUCERS + MPMC_CONSUMERS];
	pthread_barrier_t start;
};

struct mpmc_arg {
	struct mpmc *m;
	int idx;
	uint64_t rng;
	pthread_t thread;
};

static void *
mpmc_producer(void *arg)
{
	struct mpmc_arg *a = arg;
	struct mpmc *m = a->m;
	void *msgs[MPMC_BATCH];
	long seq = 0, loops = 0;

	self_tag = a->idx;
	pthread_barrier_wait(&m->start);
	while (seq < m->max) {
		size_t n = 1, off = 0;

		if (seq >= MPMC_MIN && ++loops % 16 == 0 &&
		    now_ms() >= m->deadline)
			break;
		if (m->batch)
			n = 1 + rng_below(&a->rng, MPMC_BATCH);
		if (n > (size_t)(m->max - seq))
			n = (size_t)(m->max - seq);
		for (size_t i = 0; i < n; i++)
			msgs[i] = MPMC_MSG(a->idx, seq + (long)i);
		while (off < n) {
			int t = m->blocking ? -1 : pick_timeout(&a->rng);
			ssize_t w;

			errno = 0;
			if (m->batch)
				w = polypipe_write_many(m->wr, msgs + off,
				                        n - off, t);
			else
				w = polypipe_write(m->wr, msgs[off], t) == 0
				        ? 1
				        : -1;
			m->calls[a->idx]++;
			if (w > 0 && (size_t)w <= n - off &&
			    (size_t)w <= m->capacity) {
				off += (size_t)w;
				continue;
			}
			if (w < 0 && retry_after(t, errno))
				continue;
			fail_note("producer %d: write of %zu (timeout %d) "
			          "returned %zd: %s",
			          a->idx, n - off, t, w, strerror(errno));
			m->produced[a->idx] = seq + (long)off;
			return NULL;
		}
		seq += (long)n;
	}
	m->produced[a->idx] = seq;
	return NULL;
}

static void *
mpmc_consumer(void *arg)
{
	struct mpmc_arg *a = arg;
	struct mpmc *m = a->m;
	long last[MPMC_PRODUCERS];
	void *msgs[MPMC_BATCH];
	long got = 0;

	self_tag = MPMC_PRODUCERS + a->idx;
	for (int p = 0; p < MPMC_PRODUCERS; p++)
		last[p] = -1;
	pthread_barrier_wait(&m->start);
	for (;;) {
		size_t max = m->batch ? 1 + rng_below(&a->rng, MPMC_BATCH) : 1;
		int t = m->blocking ? -1 : pick_timeout(&a->rng);
		ssize_t n;

		errno = 0;
		if (m->batch)
			n = polypipe_read_many(m->rd, msgs, max, t);
		else
			n = polypipe_read(m->rd, msgs, t);
		m->calls[MPMC_PRODUCERS + a->idx]++;
		if (n == 0)
			break;
		if (n < 0 && retry_after(t, errno))
			continue;
		if (n < 0 || (size_t)n > max) {
			fail_note("consumer %d: read of %zu (timeout %d) "
			          "returned %zd: %s",
			          a->idx, max, t, n, strerror(errno));
			break;
		}
		for (ssize_t i = 0; i < n; i++) {
			uintptr_t v = MSGVAL(msgs[i]);
			unsigned p = (unsigned)(v & 3);
			uintptr_t s = v >> 2;

			if (s >= (uintptr_t)m->max) {
				fail_note("consumer %d: read a message never "
				          "written: %#lx",
				          a->idx, (unsigned long)v);
				continue;
			}
			if ((long)s <= last[p])
				fail_note("consumer %d: producer %u's message "
				          "%lu after %ld",
				          a->idx, p, (unsigned long)s,
				          last[p]);
			last[p] = (long)s;
			if (atomic_exchange(&m->seen[p * m->max + (long)s], 1))
				fail_note("consumer %d: producer %u's message "
				          "%lu read twice",
				          a->idx, p, (unsigned long)s);
		}
		got += n;
	}
	m->consumed[a->idx] = got;
	return NULL;
}

static void
mpmc_run(bool batch, bool blocking)
{
	struct mpmc *m = calloc(1, sizeof *m);
	struct mpmc_arg prod[MPMC_PRODUCERS], cons[MPMC_CONSUMERS];
	long produced = 0, consumed = 0, missing = 0, extra = 0, calls = 0;
	int64_t t0 = now_ms();
	void *msg;

	stress_begin();
	ck_assert_ptr_nonnull(m);
	m->batch = batch;
	m->blocking = blocking;
	m->capacity = blocking ? STREAM_CAPACITY : MPMC_CAPACITY;
	m->max = blocking ? STREAM_MAX : MPMC_MAX;
	m->seen = calloc((size_t)MPMC_PRODUCERS * (size_t)m->max, 1);
	ck_assert_ptr_nonnull(m->seen);
	ck_assert_int_eq(polypipe_create(m->capacity, &m->rd, &m->wr), 0);
	ck_assert_int_eq(
	    pthread_barrier_init(&m->start, NULL,
	                         MPMC_PRODUCERS + MPMC_CONSUMERS + 1),
	    0);
	m->deadline = now_ms() + (blocking ? STREAM_MS : MPMC_MS);
	for (int i = 0; i < MPMC_CONSUMERS; i++) {
		cons[i] = (struct mpmc_arg){ .m = m,
			                     .idx = i,
			                     .rng = rng_seed(0, 100 + i) };
		spawn(&cons[i].thread, mpmc_consumer, &cons[i]);
	}
	for (int i = 0; i < MPMC_PRODUCERS; i++) {
		prod[i] = (struct mpmc_arg){ .m = m,
			                     .idx = i,
			                     .rng = rng_seed(0, i) };
		spawn(&prod[i].thread, mpmc_producer, &prod[i]);
	}
	pthread_barrier_wait(&m->start);
	for (int i = 0; i < MPMC_PRODUCERS; i++)
		join(prod[i].thread);
	ck_assert_int_eq(polypipe_write_eof(m->wr), 0);
	for (int i = 0; i < MPMC_CONSUMERS; i++)
		join(cons[i].thread);
	assert_no_failures();

	for (int p = 0; p < MPMC_PRODUCERS; p++) {
		ck_assert_int_ge(m->produced[p], MPMC_MIN);
		produced += m->produced[p];
		for (long s = 0; s < m->max; s++) {
			bool seen = atomic_load(&m->seen[p * m->max + s]);

			if (s < m->produced[p] && !seen)
				missing++;
			else if (s >= m->produced[p] && seen)
				extra++;
		}
	}
	for (int c = 0; c < MPMC_CONSUMERS; c++)
		consumed += m->consumed[c];
	for (int i = 0; i < MPMC_PRODUCERS + MPMC_CONSUMERS; i++)
		calls += m->calls[i];
	ck_assert_msg(missing == 0 && extra == 0,
	              "%ld messages lost, %ld read but never written "
	              "(seed %llu)",
	              missing, extra, (unsigned long long)seed);
	ck_assert_int_eq(consumed, produced);
	ck_assert_uint_eq(polypipe_length(m->rd), 0);
	ck_assert(polypipe_eof(m->rd));
	ck_assert_int_eq(polypipe_read(m->rd, &msg, 0), 0);
	report("%s: %ld messages by %d producers to %d consumers, %ld "
	       "calls, %lld ms",
	       blocking ? "mpmc_stream"
	       : batch  ? "mpmc_batch"
	                : "mpmc",
	       produced, MPMC_PRODUCERS, MPMC_CONSUMERS, calls,
	       (long long)(now_ms() - t0));
	polypipe_close(m->rd);
	polypipe_close(m->wr);
	pthread_barrier_destroy(&m->start);
	free(m->seen);
	free(m);
}

START_TEST(test_stress_mpmc_single)
{
	mpmc_run(false, false);
}
END_TEST

START_TEST(test_stress_mpmc_batch)
{
	mpmc_run(true, false);
}
END_TEST

/* Four writers, four readers, blocking calls, a roomy pipe: each side's
 * lock passes between threads that each take it in long runs. */
START_TEST(test_stress_mpmc_stream)
{
	for (int round = 0; round < STREAM_ROUNDS; round++)
		mpmc_run(false, true);
}
END_TEST

/* --- teardown races ---------------------------------------------------- */

/*
 * Readers, writers and pollers of both descriptors work on one pipe while
 * it is torn down in one of five ways:
 * - TD_CLOSE_WRITE: the last writer done closes the write end; readers
 *   read everything, then 0;
 * - TD_CLOSE_READ: readers read a quota each; the last one done closes the
 *   read end; writers fail with EPIPE, the rest is destroyed;
 * - TD_CLOSE_BOTH: both at once, from the last writer and the last reader;
 * - TD_EOF: a killer thread sends EOF: writers fail with EPIPE, readers
 *   drain the pipe, then read 0;
 * - TD_ERROR: a killer sets an error on either end: writers fail with it,
 *   readers drain the pipe, then fail with it.
 * Pollers wait in poll(2) on polypipe_read_fd or polypipe_write_fd and
 * only then call with timeout 0.  Every message id is flagged as accepted
 * (the write returned it), read and destroyed: an accepted one must end
 * read or destroyed, exactly once, and per writer in order.
 */
enum td_kind {
	TD_CLOSE_WRITE,
	TD_CLOSE_READ,
	TD_CLOSE_BOTH,
	TD_EOF,
	TD_ERROR,
};
enum td_role {
	TD_READER,
	TD_READ_POLLER,
	TD_WRITER,
	TD_WRITE_POLLER,
	TD_KILLER
};
enum td_end {
	TD_RUNNING,
	TD_QUOTA,  /* read its quota */
	TD_SUPPLY, /* wrote every id there was */
	TD_ENDED,  /* read returned 0 */
	TD_FAILED, /* a call failed with err */
	TD_BROKEN, /* something unexpected, already recorded */
	TD_DONE,   /* the killer acted */
};

enum {
	TD_MAX_MSGS = 256,
	TD_MAX_THREADS = 7,
	TD_MAX_WRITERS = 4,
	TD_ROUNDS = 200,
	TD_MIN_ROUNDS = 10,
	TD_MS = 800,
	TD_BATCH = 8,
};

enum { F_ACCEPTED = 1, F_READ = 2, F_DESTROYED = 4 };

struct td_round;

struct td_thread {
	struct td_round *r;
	enum td_role role;
	int widx;   /* writers: the index in owner[] */
	long quota; /* readers: how many to read (LONG_MAX: all) */
	enum td_end end;
	int err;
	long moved;
	uint64_t rng;
	pthread_t thread;
};

struct td_round {
	enum td_kind kind;
	int round;
	polypipe *rd;
	polypipe *wr;
	bool rd_open, wr_open; /* for the test's thread, after the join */
	int err;               /* TD_ERROR: the error the killer sets */
	long supply;           /* message ids are 0 .. supply - 1 */
	long killer_after;     /* the killer waits for this many accepted */
	atomic_long next_id;
	atomic_long accepted;
	atomic_long nread;
	atomic_long ndestroyed;
	atomic_int readers_left;
	atomic_int writers_left;
	atomic_int closer;     /* self_tag of whoever closes the read end */
	atomic_bool rd_closed; /* that close has returned */
	atomic_uchar flags[TD_MAX_MSGS];
	unsigned char owner[TD_MAX_MSGS]; /* the writer of each id */
	int nthreads;
	struct td_thread th[TD_MAX_THREADS];
	pthread_barrier_t start;
};

/* Totals over the rounds of one test. */
struct td_totals {
	long accepted, read, destroyed, threads;
};

static void
td_dtor(void *msg, void *arg)
{
	struct td_round *r = arg;
	uintptr_t id = MSGVAL(msg);
	unsigned prev;

	if (atomic_load(&r->rd_closed))
		fail_note("round %d: destructor called after the read end's "
		          "close returned",
		          r->round);
	if (self_tag != atomic_load(&r->closer))
		fail_note("round %d: destructor called from thread %d, not "
		          "from the one closing the read end (%d)",
		          r->round, self_tag, atomic_load(&r->closer));
	if (id >= (uintptr_t)r->supply) {
		fail_note("round %d: destroyed a message never written: %lu",
		          r->round, (unsigned long)id);
		return;
	}
	prev = atomic_fetch_or(&r->flags[id], F_DESTROYED);
	if (prev & (F_READ | F_DESTROYED))
		fail_note("round %d: message %lu destroyed after it was %s",
		          r->round, (unsigned long)id,
		          prev & F_READ ? "read" : "destroyed");
	atomic_fetch_add(&r->ndestroyed, 1);
}

static void
td_close_read(struct td_round *r)
{
	atomic_store(&r->closer, self_tag);
	polypipe_close(r->rd);
	atomic_store(&r->rd_closed, true);
}

/* Takes n messages a reader got. */
static void
td_take(struct td_round *r, long *last, void **msgs, ssize_t n)
{
	for (ssize_t i = 0; i < n; i++) {
		uintptr_t id = MSGVAL(msgs[i]);
		unsigned prev, w;

		if (id >= (uintptr_t)r->supply) {
			fail_note("round %d: read a message never "
			          "written: %lu",
			          r->round, (unsigned long)id);
			continue;
		}
		w = r->owner[id];
		if ((long)id <= last[w])
			fail_note("round %d: writer %u's message %lu read "
			          "after %ld",
			          r->round, w, (unsigned long)id, last[w]);
		last[w] = (long)id;
		prev = atomic_fetch_or(&r->flags[id], F_READ);
		if (prev & (F_READ | F_DESTROYED))
			fail_note("round %d: message %lu read after it was %s",
			          r->round, (unsigned long)id,
			          prev & F_READ ? "read" : "destroyed");
		atomic_fetch_add(&r->nread, 1);
	}
}

static void *
td_reader(void *arg)
{
	struct td_thread *t = arg;
	struct td_round *r = t->r;
	bool poller = t->role == TD_READ_POLLER;
	long last[TD_MAX_WRITERS];
	void *msgs[TD_BATCH];
	int fd = -1;

	self_tag = (int)(t - r->th);
	for (int w = 0; w < TD_MAX_WRITERS; w++)
		last[w] = -1;
	if (poller && (fd = polypipe_read_fd(r->rd)) < 0) {
		fail_note("round %d: polypipe_read_fd: %s", r->round,
		          strerror(errno));
		t->end = TD_BROKEN;
	}
	pthread_barrier_wait(&r->start);
	while (t->end == TD_RUNNING && t->moved < t->quota) {
		int to = poller ? 0 : pick_timeout(&t->rng);
		size_t max = 1;
		ssize_t n;

		if (rng_coin(&t->rng)) {
			max = 1 + rng_below(&t->rng, TD_BATCH);
			if ((long)max > t->quota - t->moved)
				max = (size_t)(t->quota - t->moved);
		}
		if (poller && !wait_readable(fd, LONG_MS)) {
			fail_note("round %d: the read descriptor did not "
			          "become readable",
			          r->round);
			t->end = TD_BROKEN;
			break;
		}
		errno = 0;
		if (max == 1 && rng_coin(&t->rng))
			n = polypipe_read(r->rd, msgs, to);
		else
			n = polypipe_read_many(r->rd, msgs, max, to);
		if (n > 0 && (size_t)n <= max) {
			td_take(r, last, msgs, n);
			t->moved += n;
		} else if (n > 0) {
			fail_note("round %d: read_many of %zu returned %zd",
			          r->round, max, n);
			t->end = TD_BROKEN;
		} else if (n == 0) {
			t->end = TD_ENDED;
		} else if (poller ? errno != EAGAIN
		                  : !retry_after(to, errno)) {
			t->end = TD_FAILED;
			t->err = errno;
		}
	}
	if (t->end == TD_RUNNING)
		t->end = TD_QUOTA;
	if ((r->kind == TD_CLOSE_READ || r->kind == TD_CLOSE_BOTH) &&
	    atomic_fetch_sub(&r->readers_left, 1) == 1) {
		jitter(&t->rng, 8);
		td_close_read(r);
	}
	return NULL;
}

static void *
td_writer(void *arg)
{
	struct td_thread *t = arg;
	struct td_round *r = t->r;
	bool poller = t->role == TD_WRITE_POLLER;
	void *msgs[TD_BATCH];
	int fd = -1;

	self_tag = (int)(t - r->th);
	if (poller && (fd = polypipe_write_fd(r->wr)) < 0) {
		fail_note("round %d: polypipe_write_fd: %s", r->round,
		          strerror(errno));
		t->end = TD_BROKEN;
	}
	pthread_barrier_wait(&r->start);
	while (t->end == TD_RUNNING) {
		long b =
		    rng_coin(&t->rng) ? 1 : 1 + rng_below(&t->rng, TD_BATCH);
		long first = atomic_fetch_add(&r->next_id, b), off = 0;

		if (first >= r->supply) {
			t->end = TD_SUPPLY;
			break;
		}
		if (b > r->supply - first)
			b = r->supply - first;
		for (long i = 0; i < b; i++) {
			r->owner[first + i] = (unsigned char)t->widx;
			msgs[i] = MSG(first + i);
		}
		while (off < b && t->end == TD_RUNNING) {
			int to = poller ? 0 : pick_timeout(&t->rng);
			ssize_t n;

			if (poller && !wait_readable(fd, LONG_MS)) {
				fail_note("round %d: the write descriptor "
				          "did not become readable",
				          r->round);
				t->end = TD_BROKEN;
				break;
			}
			errno = 0;
			if (b - off == 1 && rng_coin(&t->rng))
				n = polypipe_write(r->wr, msgs[off], to) == 0
				        ? 1
				        : -1;
			else
				n = polypipe_write_many(r->wr, msgs + off,
				                        (size_t)(b - off), to);
			if (n > 0 && n <= b - off) {
				for (ssize_t i = 0; i < n; i++)
					atomic_fetch_or(
					    &r->flags[first + off + i],
					    F_ACCEPTED);
				atomic_fetch_add(&r->accepted, n);
				off += n;
				t->moved += n;
			} else if (n > 0) {
				fail_note("round %d: write_many of %ld "
				          "returned %zd",
				          r->round, b - off, n);
				t->end = TD_BROKEN;
			} else if (poller ? errno != EAGAIN
			                  : !retry_after(to, errno)) {
				t->end = TD_FAILED;
				t->err = errno;
			}
		}
	}
	if ((r->kind == TD_CLOSE_WRITE || r->kind == TD_CLOSE_BOTH) &&
	    atomic_fetch_sub(&r->writers_left, 1) == 1) {
		jitter(&t->rng, 8);
		polypipe_close(r->wr);
	}
	return NULL;
}

/* Sends EOF or sets the error, once some messages went in. */
static void *
td_killer(void *arg)
{
	struct td_thread *t = arg;
	struct td_round *r = t->r;
	int64_t give_up;
	int rc;

	self_tag = (int)(t - r->th);
	pthread_barrier_wait(&r->start);
	/* Readers read everything and writers have ids for more than
	 * killer_after, so only a stuck library makes this wait long. */
	give_up = now_ms() + LONG_MS;
	while (atomic_load(&r->accepted) < r->killer_after) {
		if (now_ms() > give_up) {
			fail_note("round %d: writers stuck at %ld messages",
			          r->round, atomic_load(&r->accepted));
			break;
		}
		sched_yield();
	}
	jitter(&t->rng, 16);
	errno = 0;
	if (r->kind == TD_EOF)
		rc = polypipe_write_eof(r->wr);
	else
		rc = polypipe_set_error(rng_coin(&t->rng) ? r->rd : r->wr,
		                        r->err);
	if (rc != 0)
		fail_note("round %d: %s: %s", r->round,
		          r->kind == TD_EOF ? "write_eof" : "set_error",
		          strerror(errno));
	t->end = TD_DONE;
	return NULL;
}

static const char *
td_end_name(enum td_end end)
{
	static const char *const names[] = {
		"running", "quota",  "supply", "ended",
		"failed",  "broken", "done",
	};

	return names[end];
}

/* Whether a thread ended as the kind of teardown says it must. */
static bool
td_end_ok(const struct td_round *r, const struct td_thread *t)
{
	bool reader = t->role == TD_READER || t->role == TD_READ_POLLER;
	bool epipe = t->end == TD_FAILED && t->err == EPIPE;

	if (t->role == TD_KILLER)
		return t->end == TD_DONE;
	switch (r->kind) {
	case TD_CLOSE_WRITE:
		return reader ? t->end == TD_ENDED : t->end == TD_SUPPLY;
	case TD_CLOSE_READ:
		return reader ? t->end == TD_QUOTA
		              : t->end == TD_SUPPLY || epipe;
	case TD_CLOSE_BOTH:
		return reader ? t->end == TD_QUOTA || t->end == TD_ENDED
		              : t->end == TD_SUPPLY || epipe;
	case TD_EOF:
		return reader ? t->end == TD_ENDED
		              : t->end == TD_SUPPLY || epipe;
	case TD_ERROR:
		return (t->end == TD_FAILED && t->err == r->err) ||
		       (!reader && t->end == TD_SUPPLY);
	}
	return false;
}

static void
td_add(struct td_round *r, enum td_role role, long quota, uint64_t *rng)
{
	struct td_thread *t = &r->th[r->nthreads++];

	t->r = r;
	t->role = role;
	t->quota = quota;
	t->rng = rng_next(rng);
	if (role == TD_WRITER || role == TD_WRITE_POLLER)
		t->widx = atomic_fetch_add(&r->writers_left, 1);
	if (role == TD_READER || role == TD_READ_POLLER)
		atomic_fetch_add(&r->readers_left, 1);
}

static void
td_round_run(struct td_round *r, enum td_kind kind, int round,
             struct td_totals *tot)
{
	static const int errs[] = { EIO, ECONNRESET, ENOSPC, EPROTO };
	uint64_t rng = rng_seed((uint64_t)kind, (uint64_t)round);
	size_t cap = 1 + rng_below(&rng, 8);
	int nr = 1 + (int)rng_below(&rng, 2), nrp = (int)rng_below(&rng, 2);
	int nw = 1 + (int)rng_below(&rng, 2), nwp = (int)rng_below(&rng, 2);
	long quotas = 0, accepted = 0, bad = 0;

	memset(r, 0, sizeof *r);
	r->kind = kind;
	r->round = round;
	atomic_store(&r->closer, -1);
	ck_assert_int_eq(polypipe_create(cap, &r->rd, &r->wr), 0);
	r->rd_open = r->wr_open = true;
	ck_assert_int_eq(polypipe_set_destructor(
	                     rng_coin(&rng) ? r->rd : r->wr, td_dtor, r),
	                 0);
	for (int i = 0; i < nr + nrp; i++) {
		long q = LONG_MAX;

		if (kind == TD_CLOSE_READ)
			q = 1 + rng_below(&rng, 24);
		else if (kind == TD_CLOSE_BOTH)
			q = 1 + rng_below(&rng, 64);
		quotas += q == LONG_MAX ? 0 : q;
		td_add(r, i < nr ? TD_READER : TD_READ_POLLER, q, &rng);
	}
	for (int i = 0; i < nw + nwp; i++)
		td_add(r, i < nw ? TD_WRITER : TD_WRITE_POLLER, 0, &rng);
	switch (kind) {
	case TD_CLOSE_READ:
		/* Enough for every quota: writes fail only after the
		 * read end is closed, once the readers are done. */
		r->supply = quotas + rng_below(&rng, 32);
		break;
	case TD_EOF:
	case TD_ERROR:
		r->supply = 1 + rng_below(&rng, 128);
		r->killer_after = rng_below(&rng, (unsigned)r->supply / 2 + 1);
		r->err = errs[rng_below(&rng, 4)];
		td_add(r, TD_KILLER, 0, &rng);
		break;
	default:
		r->supply = 1 + rng_below(&rng, 96);
		break;
	}
	ck_assert_int_le(r->supply, TD_MAX_MSGS);
	ck_assert_int_eq(
	    pthread_barrier_init(&r->start, NULL, (unsigned)r->nthreads + 1),
	    0);
	for (int i = 0; i < r->nthreads; i++)
		spawn(&r->th[i].thread,
		      r->th[i].role == TD_KILLER        ? td_killer
		      : r->th[i].role <= TD_READ_POLLER ? td_reader
		                                        : td_writer,
		      &r->th[i]);
	pthread_barrier_wait(&r->start);
	for (int i = 0; i < r->nthreads; i++)
		join(r->th[i].thread);
	pthread_barrier_destroy(&r->start);
	assert_no_failures();

	for (int i = 0; i < r->nthreads; i++) {
		struct td_thread *t = &r->th[i];

		ck_assert_msg(td_end_ok(r, t),
		              "round %d (seed %llu, kind %d, capacity %zu): "
		              "thread %d (role %d) ended %s, %s, after %ld "
		              "messages",
		              round, (unsigned long long)seed, kind, cap, i,
		              t->role, td_end_name(t->end), strerror(t->err),
		              t->moved);
	}
	if (kind == TD_CLOSE_READ || kind == TD_CLOSE_BOTH)
		r->rd_open = false;
	if (kind == TD_CLOSE_WRITE || kind == TD_CLOSE_BOTH)
		r->wr_open = false;
	if (r->rd_open) {
		/* The readers read until the stream ended. */
		ck_assert_uint_eq(polypipe_length(r->rd), 0);
		ck_assert(polypipe_eof(r->rd));
		ck_assert_int_eq(polypipe_get_error(r->rd),
		                 kind == TD_ERROR ? r->err : 0);
		/* Read would not wait, made now or earlier. */
		ck_assert_readable(polypipe_read_fd(r->rd));
	}
	if (r->wr_open) {
		ck_assert_int_eq(polypipe_get_error(r->wr),
		                 kind == TD_ERROR ? r->err : 0);
		/* Write would fail at once. */
		ck_assert_readable(polypipe_write_fd(r->wr));
	}
	if (r->wr_open && rng_coin(&rng)) {
		polypipe_close(r->wr);
		r->wr_open = false;
	}
	if (r->rd_open)
		td_close_read(r);
	if (r->wr_open)
		polypipe_close(r->wr);
	assert_no_failures();

	for (long id = 0; id < r->supply; id++) {
		unsigned f = atomic_load(&r->flags[id]);

		if (f & F_ACCEPTED) {
			accepted++;
			bad += !(f & F_READ) == !(f & F_DESTROYED);
		} else {
			bad += (f & (F_READ | F_DESTROYED)) != 0;
		}
	}
	ck_assert_msg(bad == 0,
	              "round %d (seed %llu): %ld messages not read or "
	              "destroyed exactly once as accepted",
	              round, (unsigned long long)seed, bad);
	ck_assert_int_eq(accepted, atomic_load(&r->accepted));
	ck_assert_int_eq(accepted,
	                 atomic_load(&r->nread) + atomic_load(&r->ndestroyed));
	if (kind == TD_CLOSE_WRITE) {
		/* Nothing stopped the writers. */
		ck_assert_int_eq(accepted, r->supply);
	}
	if (kind == TD_CLOSE_READ)
		ck_assert_int_eq(atomic_load(&r->nread), quotas);
	if (kind == TD_EOF || kind == TD_ERROR)
		ck_assert_int_ge(accepted, r->killer_after);
	tot->accepted += accepted;
	tot->read += atomic_load(&r->nread);
	tot->destroyed += atomic_load(&r->ndestroyed);
	tot->threads += r->nthreads;
}

static void
td_run(enum td_kind kind, const char *name)
{
	struct td_round *r = malloc(sizeof *r);
	struct td_totals tot = { 0 };
	struct budget b;

	stress_begin();
	ck_assert_ptr_nonnull(r);
	budget_start(&b, TD_MIN_ROUNDS, TD_ROUNDS, TD_MS);
	for (; budget_more(&b); b.done++)
		td_round_run(r, kind, (int)b.done, &tot);
	ck_assert_int_ge(b.done, TD_MIN_ROUNDS);
	ck_assert_int_eq(tot.accepted, tot.read + tot.destroyed);
	report("%s: %ld rounds, %ld threads, %ld messages accepted, %ld "
	       "read, %ld destroyed",
	       name, b.done, tot.threads, tot.accepted, tot.read,
	       tot.destroyed);
	free(r);
}

START_TEST(test_stress_teardown_close_write)
{
	td_run(TD_CLOSE_WRITE, "teardown_close_write");
}
END_TEST

START_TEST(test_stress_teardown_close_read)
{
	td_run(TD_CLOSE_READ, "teardown_close_read");
}
END_TEST

START_TEST(test_stress_teardown_close_both)
{
	td_run(TD_CLOSE_BOTH, "teardown_close_both");
}
END_TEST

START_TEST(test_stress_teardown_eof)
{
	td_run(TD_EOF, "teardown_eof");
}
END_TEST

START_TEST(test_stress_teardown_error)
{
	td_run(TD_ERROR, "teardown_error");
}
END_TEST

/* --- notifier races ---------------------------------------------------- */

/*
 * A notifier's argument: a slot that counts calls, and how many are
 * running.  Once the call that replaced or removed it returns (a set, or
 * a close), it is retired: nothing may be running then (inside == 0),
 * and no call may start afterwards (late == 0, calls stays frozen).
 */
struct nslot {
	atomic_int inside;
	atomic_int calls;
	atomic_int late;
	atomic_bool retired;
	int frozen;
	bool used;
	int side; /* what it was set on, for the tests that need it */
	/* For nslot_endpoint_fn: the client, and what its call saw. */
	polyclient *cl;
	int ep_rc;
	int ep_err;
	sem_t sem;
};

/* Stays a little, so that setters and closers find it running. */
static void
nslot_linger(int c)
{
	for (unsigned i = ((unsigned)c * 2654435761u) >> 30; i > 0; i--)
		sched_yield();
}

static void
nslot_fn(void *arg)
{
	struct nslot *s = arg;

	atomic_fetch_add(&s->inside, 1);
	if (atomic_load(&s->retired))
		atomic_fetch_add(&s->late, 1);
	nslot_linger(atomic_fetch_add(&s->calls, 1));
	atomic_fetch_sub(&s->inside, 1);
}

/* Called after the set (or close) that removed s returned. */
static void
nslot_retire(struct nslot *s, const char *what)
{
	if (s == NULL)
		return;
	if (atomic_load(&s->inside) != 0)
		fail_note("%s returned while the callback it removed was "
		          "running",
		          what);
	s->frozen = atomic_load(&s->calls);
	atomic_store(&s->retired, true);
}

/* After every thread was joined: s was retired, and not called since. */
static void
nslot_check(struct nslot *s, int max_calls, const char *what)
{
	ck_assert(atomic_load(&s->retired));
	ck_assert_int_eq(atomic_load(&s->inside), 0);
	ck_assert_msg(atomic_load(&s->late) == 0,
	              "a callback started after its removal returned "
	              "(seed %llu)",
	              (unsigned long long)seed);
	ck_assert_msg(atomic_load(&s->calls) == s->frozen,
	              "a callback was called %d times after its removal "
	              "returned (seed %llu)",
	              atomic_load(&s->calls) - s->frozen,
	              (unsigned long long)seed);
	if (max_calls >= 0)
		ck_assert_msg(atomic_load(&s->calls) <= max_calls,
		              "%s: called %d times, at most %d allowed "
		              "(seed %llu)",
		              what, atomic_load(&s->calls), max_calls,
		              (unsigned long long)seed);
}

enum {
	NS_SLOTS = 48,
	NS_SETS = 32,
	NS_ROUNDS = 150,
	NS_MIN_ROUNDS = 5,
	NS_MS = 800,
};

/* Pipe notifiers: a writer and a reader on a pipe of capacity 1, so
 * every message fires the read notifier (into an empty pipe) and the
 * write notifier (out of a full one), while the test's thread replaces
 * both, and then the writer or the reader closes its end. */
enum { NP_RUNNING, NP_CLOSE_WRITE_FIRST, NP_CLOSE_READ_FIRST };

struct np_round {
	int round;
	polypipe *rd;
	polypipe *wr;
	struct nslot slots[NS_SLOTS];
	int nslots;
	struct nslot *cur_rd; /* the test's thread's until stop is set */
	struct nslot *cur_wr;
	atomic_int stop;
	long written;
	long read;
	uint64_t rng_w;
	uint64_t rng_r;
	pthread_barrier_t start;
};

/* Waits until the test's thread is done with the handles. */
static int
np_wait_stop(struct np_round *r)
{
	int stop;

	while ((stop = atomic_load(&r->stop)) == NP_RUNNING)
		sched_yield();
	return stop;
}

static void *
np_writer(void *arg)
{
	struct np_round *r = arg;
	int extra = -1;
	long i = 0;

	self_tag = 1;
	pthread_barrier_wait(&r->start);
	for (;;) {
		int stop = atomic_load(&r->stop);

		if (stop == NP_CLOSE_WRITE_FIRST) {
			if (extra < 0)
				extra = (int)rng_below(&r->rng_w, 4);
			if (extra-- == 0)
				break;
		}
		errno = 0;
		if (polypipe_write(r->wr, MSG(i), LONG_MS) == 0) {
			i++;
			continue;
		}
		if (errno != EPIPE || np_wait_stop(r) != NP_CLOSE_READ_FIRST)
			fail_note("round %d: write: %s", r->round,
			          strerror(errno));
		break;
	}
	np_wait_stop(r);
	r->written = i;
	polypipe_close(r->wr);
	nslot_retire(r->cur_wr, "polypipe_close (write end)");
	return NULL;
}

static void *
np_reader(void *arg)
{
	struct np_round *r = arg;
	int extra = -1, rc;
	long n = 0;
	void *m;

	self_tag = 2;
	pthread_barrier_wait(&r->start);
	for (;;) {
		int stop = atomic_load(&r->stop);

		if (stop == NP_CLOSE_READ_FIRST) {
			if (extra < 0)
				extra = (int)rng_below(&r->rng_r, 4);
			if (extra-- == 0)
				break;
		}
		errno = 0;
		rc = polypipe_read(r->rd, &m, LONG_MS);
		if (rc == 1 && MSGVAL(m) == (uintptr_t)n) {
			n++;
			continue;
		}
		if (rc != 0 || np_wait_stop(r) != NP_CLOSE_WRITE_FIRST)
			fail_note("round %d: read returned %d (%s), message "
			          "%lu for %ld",
			          r->round, rc, strerror(errno),
			          (unsigned long)MSGVAL(m), n);
		break;
	}
	np_wait_stop(r);
	r->read = n;
	polypipe_close(r->rd);
	nslot_retire(r->cur_rd, "polypipe_close (read end)");
	return NULL;
}

static struct nslot *
np_new_slot(struct np_round *r, int side)
{
	struct nslot *s = &r->slots[r->nslots++];

	s->used = true;
	s->side = side;
	return s;
}

/* Sets the notifier of one side to s (NULL: removes it) and retires the
 * one it replaces. */
static void
np_set(struct np_round *r, bool rd_side, struct nslot *s)
{
	struct nslot **cur = rd_side ? &r->cur_rd : &r->cur_wr;
	int rc;

	errno = 0;
	if (rd_side)
		rc = polypipe_set_read_notify(r->rd, s ? nslot_fn : NULL, s);
	else
		rc = polypipe_set_write_notify(r->wr, s ? nslot_fn : NULL, s);
	if (rc != 0)
		fail_note("round %d: set notify: %s", r->round,
		          strerror(errno));
	nslot_retire(*cur, rd_side ? "polypipe_set_read_notify"
	                           : "polypipe_set_write_notify");
	*cur = s;
}

static void
np_round_run(struct np_round *r, int round, long *calls)
{
	uint64_t rng = rng_seed(1, (uint64_t)round);
	unsigned sets = NS_SETS / 4 + rng_below(&rng, NS_SETS * 3 / 4);
	pthread_t tw, tr;
	long rd_calls = 0, wr_calls = 0;

	memset(r, 0, sizeof *r);
	r->round = round;
	r->rng_w = rng_next(&rng);
	r->rng_r = rng_next(&rng);
	ck_assert_int_eq(polypipe_create(1, &r->rd, &r->wr), 0);
	np_set(r, true, np_new_slot(r, 0));
	np_set(r, false, np_new_slot(r, 1));
	ck_assert_int_eq(pthread_barrier_init(&r->start, NULL, 3), 0);
	spawn(&tw, np_writer, r);
	spawn(&tr, np_reader, r);
	pthread_barrier_wait(&r->start);
	for (unsigned k = 0; k < sets; k++) {
		bool rd_side = rng_coin(&rng);

		np_set(r, rd_side,
		       rng_below(&rng, 4) == 0 ? NULL
		                               : np_new_slot(r, !rd_side));
		jitter(&rng, 16);
	}
	/* Something to remove for the closes. */
	if (r->cur_rd == NULL)
		np_set(r, true, np_new_slot(r, 0));
	if (r->cur_wr == NULL)
		np_set(r, false, np_new_slot(r, 1));
	atomic_store(&r->stop, rng_coin(&rng) ? NP_CLOSE_WRITE_FIRST
	                                      : NP_CLOSE_READ_FIRST);
	join(tw);
	join(tr);
	pthread_barrier_destroy(&r->start);
	assert_no_failures();
	ck_assert_int_le(r->nslots, NS_SLOTS);
	for (int i = 0; i < r->nslots; i++) {
		nslot_check(&r->slots[i], -1, "notifier");
		if (r->slots[i].side == 0)
			rd_calls += atomic_load(&r->slots[i].calls);
		else
			wr_calls += atomic_load(&r->slots[i].calls);
	}
	/* At most one call per transition: each message into the empty
	 * pipe, out of the full one, and the end. */
	ck_assert_int_le(rd_calls, r->written + 1);
	ck_assert_int_le(wr_calls, r->read + 1);
	*calls += rd_calls + wr_calls;
}

START_TEST(test_stress_notify_pipe)
{
	struct np_round *r = malloc(sizeof *r);
	struct budget b;
	long calls = 0;

	stress_begin();
	ck_assert_ptr_nonnull(r);
	budget_start(&b, NS_MIN_ROUNDS, NS_ROUNDS, NS_MS);
	for (; budget_more(&b); b.done++)
		np_round_run(r, (int)b.done, &calls);
	report("notify_pipe: %ld rounds, %ld notifier calls", b.done, calls);
	free(r);
}
END_TEST

/* Accept notifiers: two threads connect by name (and wait, or withdraw)
 * and one accepts and refuses, while the test's thread replaces the
 * server's notifier; then, with the connects still going on, it closes
 * the server. */
struct na_round {
	int round;
	polyserver *srv;
	char name[64];
	struct nslot slots[NS_SLOTS];
	int nslots;
	struct nslot *cur;
	atomic_bool stop_acceptor;
	atomic_bool stop_connectors;
	atomic_long queued;
	uint64_t rng[3];
	pthread_barrier_t start;
};

struct na_arg {
	struct na_round *r;
	int idx;
};

static void *
na_connector(void *arg)
{
	struct na_arg *a = arg;
	struct na_round *r = a->r;
	uint64_t *rng = &r->rng[a->idx];
	polyendpoint ep;

	self_tag = a->idx;
	pthread_barrier_wait(&r->start);
	while (!atomic_load(&r->stop_connectors)) {
		polyclient *cl = polyclient_create(1);

		if (cl == NULL) {
			fail_note("polyclient_create: %s", strerror(errno));
			break;
		}
		errno = 0;
		if (polyclient_connect_name(cl, r->name) == 0) {
			atomic_fetch_add(&r->queued, 1);
			if (rng_coin(rng) &&
			    polyclient_endpoint(cl, &ep, LONG_MS) != 0 &&
			    errno != ECONNREFUSED)
				fail_note("round %d: endpoint: %s", r->round,
				          strerror(errno));
		} else if (errno != ECONNREFUSED) {
			fail_note("round %d: connect_name: %s", r->round,
			          strerror(errno));
		} else {
			sched_yield();
		}
		polyclient_close(cl);
	}
	return NULL;
}

static void *
na_acceptor(void *arg)
{
	struct na_arg *a = arg;
	struct na_round *r = a->r;
	uint64_t *rng = &r->rng[a->idx];
	polyendpoint eps[4];

	self_tag = a->idx;
	pthread_barrier_wait(&r->start);
	while (!atomic_load(&r->stop_acceptor)) {
		ssize_t n;

		if (rng_below(rng, 8) == 0) {
			if (polyserver_refuse(r->srv) < 0)
				fail_note("refuse: %s", strerror(errno));
			continue;
		}
		errno = 0;
		n = polyserver_accept_many(r->srv, eps, 1 + rng_below(rng, 4),
		                           20);
		if (n < 0 && errno != ETIMEDOUT) {
			fail_note("round %d: accept_many: %s", r->round,
			          strerror(errno));
			break;
		}
		for (ssize_t i = 0; i < n; i++)
			polyendpoint_close(&eps[i]);
	}
	return NULL;
}

static void
na_set(struct na_round *r, struct nslot *s)
{
	errno = 0;
	if (polyserver_set_accept_notify(r->srv, s ? nslot_fn : NULL, s))
		fail_note("round %d: set_accept_notify: %s", r->round,
		          strerror(errno));
	nslot_retire(r->cur, "polyserver_set_accept_notify");
	r->cur = s;
}

static struct nslot *
na_new_slot(struct na_round *r)
{
	struct nslot *s = &r->slots[r->nslots++];

	s->used = true;
	return s;
}

static void
na_round_run(struct na_round *r, int round, long *calls, long *queued)
{
	uint64_t rng = rng_seed(2, (uint64_t)round);
	unsigned sets = NS_SETS / 4 + rng_below(&rng, NS_SETS * 3 / 4);
	struct na_arg args[3];
	pthread_t th[3];
	polyclient *cl;
	long sum = 0;

	memset(r, 0, sizeof *r);
	r->round = round;
	for (int i = 0; i < 3; i++) {
		r->rng[i] = rng_next(&rng);
		args[i] = (struct na_arg){ .r = r, .idx = i };
	}
	snprintf(r->name, sizeof r->name, "check_stress/%ld/na/%d",
	         (long)getpid(), round);
	r->srv = polyserver_create();
	ck_assert_ptr_nonnull(r->srv);
	ck_assert_int_eq(polyserver_bind(r->srv, r->name), 0);
	na_set(r, na_new_slot(r));
	ck_assert_int_eq(pthread_barrier_init(&r->start, NULL, 4), 0);
	spawn(&th[0], na_acceptor, &args[0]);
	spawn(&th[1], na_connector, &args[1]);
	spawn(&th[2], na_connector, &args[2]);
	pthread_barrier_wait(&r->start);
	for (unsigned k = 0; k < sets; k++) {
		na_set(r, rng_below(&rng, 4) == 0 ? NULL : na_new_slot(r));
		jitter(&rng, 16);
	}
	if (r->cur == NULL)
		na_set(r, na_new_slot(r));
	atomic_store(&r->stop_acceptor, true);
	join(th[0]);
	/* The connectors keep connecting by name while the server goes. */
	jitter(&rng, 16);
	polyserver_close(r->srv);
	nslot_retire(r->cur, "polyserver_close");
	/* The name went with the server. */
	cl = polyclient_create(1);
	ck_assert_ptr_nonnull(cl);
	ck_assert_fail(polyclient_connect_name(cl, r->name), ECONNREFUSED);
	polyclient_close(cl);
	jitter(&rng, 16);
	atomic_store(&r->stop_connectors, true);
	join(th[1]);
	join(th[2]);
	pthread_barrier_destroy(&r->start);
	assert_no_failures();
	ck_assert_int_le(r->nslots, NS_SLOTS);
	for (int i = 0; i < r->nslots; i++) {
		nslot_check(&r->slots[i], -1, "notifier");
		sum += atomic_load(&r->slots[i].calls);
	}
	/* One call per transition to non-empty, each made by a connect,
	 * and none at the close's shutdown. */
	ck_assert_int_le(sum, atomic_load(&r->queued));
	*calls += sum;
	*queued += atomic_load(&r->queued);
}

START_TEST(test_stress_notify_accept)
{
	struct na_round *r = malloc(sizeof *r);
	long calls = 0, queued = 0;
	struct budget b;

	stress_begin();
	ck_assert_ptr_nonnull(r);
	budget_start(&b, NS_MIN_ROUNDS, NS_ROUNDS, NS_MS);
	for (; budget_more(&b); b.done++)
		na_round_run(r, (int)b.done, &calls, &queued);
	report("notify_accept: %ld rounds, %ld attempts queued, %ld notifier "
	       "calls",
	       b.done, queued, calls);
	free(r);
}
END_TEST

/*
 * Connect notifiers: clients in two threads set a notifier, connect, and
 * then replace it, remove it, close the client, or wait for it, while an
 * acceptor thread accepts and refuses; a waited-for notifier checks that
 * the decision is complete when it runs.
 */
enum {
	NC_THREADS = 2,
	NC_PER_THREAD = 300,
	NC_MIN = 20,
	NC_MS = 1000,
};

enum nc_action { NC_REPLACE, NC_UNSET, NC_CLOSE, NC_WAIT, NC_ACTIONS };
enum outcome { OC_NONE, OC_ACCEPTED, OC_REFUSED, OC_BROKEN };

struct nc_client {
	bool used;
	enum nc_action action;
	enum outcome outcome;
	struct nslot a; /* set before the connect */
	struct nslot b; /* NC_REPLACE: what replaces it */
};

struct nc {
	polyserver *srv;
	int64_t deadline;
	struct nc_client clients[NC_THREADS][NC_PER_THREAD];
	long count[NC_THREADS];
	long accepted;
	long refused;
	pthread_barrier_t start;
};

struct nc_arg {
	struct nc *nc;
	int idx;
	uint64_t rng;
	pthread_t thread;
};

/* The notifier that is waited for: runs once the attempt is decided,
 * when polyclient_endpoint(cl, &ep, 0) must not fail with EAGAIN. */
static void
nslot_endpoint_fn(void *arg)
{
	struct nslot *s = arg;
	polyendpoint ep;
	int c;

	atomic_fetch_add(&s->inside, 1);
	if (atomic_load(&s->retired))
		atomic_fetch_add(&s->late, 1);
	c = atomic_fetch_add(&s->calls, 1);
	if (c == 0) {
		errno = 0;
		s->ep_rc = polyclient_endpoint(s->cl, &ep, 0);
		s->ep_err = errno;
	}
	nslot_linger(c);
	atomic_fetch_sub(&s->inside, 1);
	if (c == 0)
		sem_post(&s->sem);
}

/* Waits for the decision on cl's attempt. */
static enum outcome
nc_decision(polyclient *cl)
{
	polyendpoint ep;

	errno = 0;
	if (polyclient_endpoint(cl, &ep, LONG_MS) == 0)
		return OC_ACCEPTED;
	if (errno == ECONNREFUSED)
		return OC_REFUSED;
	fail_note("polyclient_endpoint: %s", strerror(errno));
	return OC_BROKEN;
}

/* Waits for s's first call; false if it never comes. */
static bool
sem_wait_long(sem_t *sem)
{
	struct timespec ts;
	int rc;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += LONG_MS / 1000;
	while ((rc = sem_timedwait(sem, &ts)) != 0 && errno == EINTR)
		;
	return rc == 0;
}

static void
nc_client_run(struct nc *nc, struct nc_client *c, uint64_t *rng)
{
	polyclient *cl = polyclient_create(1);
	bool wait = false;
	int64_t give_up;

	c->used = true;
	c->action = (enum nc_action)rng_below(rng, NC_ACTIONS);
	if (cl == NULL) {
		fail_note("polyclient_create: %s", strerror(errno));
		atomic_store(&c->a.retired, true);
		return;
	}
	if (c->action == NC_WAIT) {
		c->a.cl = cl;
		wait = sem_init(&c->a.sem, 0, 0) == 0;
		if (!wait)
			fail_note("sem_init: %s", strerror(errno));
	}
	if (polyclient_set_connect_notify(
	        cl, wait ? nslot_endpoint_fn : nslot_fn, &c->a) != 0)
		fail_note("set_connect_notify: %s", strerror(errno));
	/* ECONNREFUSED: the server is refusing; the next accept ends it. */
	give_up = now_ms() + LONG_MS;
	while (polyclient_connect(cl, nc->srv) != 0) {
		if (errno != ECONNREFUSED || now_ms() > give_up) {
			fail_note("polyclient_connect: %s", strerror(errno));
			c->action = NC_CLOSE;
			break;
		}
		sched_yield();
	}
	jitter(rng, 8);
	switch (c->action) {
	case NC_REPLACE:
		if (polyclient_set_connect_notify(cl, nslot_fn, &c->b) != 0)
			fail_note("set_connect_notify: %s", strerror(errno));
		nslot_retire(&c->a, "polyclient_set_connect_notify");
		c->outcome = nc_decision(cl);
		polyclient_close(cl);
		nslot_retire(&c->b, "polyclient_close");
		return;
	case NC_UNSET:
		if (polyclient_set_connect_notify(cl, NULL, NULL) != 0)
			fail_note("set_connect_notify: %s", strerror(errno));
		nslot_retire(&c->a, "polyclient_set_connect_notify");
		c->outcome = nc_decision(cl);
		break;
	case NC_WAIT:
		if (wait && !sem_wait_long(&c->a.sem))
			fail_note("the connect notifier was not called");
		c->outcome = nc_decision(cl);
		if (c->outcome == OC_ACCEPTED && c->a.ep_rc != 0)
			fail_note("accepted, but endpoint failed inside the "
			          "notifier: %s",
			          strerror(c->a.ep_err));
		if (c->outcome == OC_REFUSED &&
		    (c->a.ep_rc != -1 || c->a.ep_err != ECONNREFUSED))
			fail_note("refused, but endpoint inside the notifier "
			          "returned %d: %s",
			          c->a.ep_rc, strerror(c->a.ep_err));
		break;
	default:
		break;
	}
	polyclient_close(cl);
	if (c->action != NC_UNSET)
		nslot_retire(&c->a, "polyclient_close");
}

static void *
nc_client_thread(void *arg)
{
	struct nc_arg *a = arg;
	struct nc *nc = a->nc;
	long i;

	self_tag = a->idx;
	pthread_barrier_wait(&nc->start);
	for (i = 0;
	     i < NC_PER_THREAD && (i < NC_MIN || now_ms() < nc->deadline); i++)
		nc_client_run(nc, &nc->clients[a->idx][i], &a->rng);
	nc->count[a->idx] = i;
	return NULL;
}

static void *
nc_acceptor(void *arg)
{
	struct nc_arg *a = arg;
	struct nc *nc = a->nc;
	polyendpoint eps[3];
	int fd = polyserver_accept_fd(nc->srv);
	bool refusing = false;

	self_tag = a->idx;
	if (fd < 0)
		fail_note("polyserver_accept_fd: %s", strerror(errno));
	pthread_barrier_wait(&nc->start);
	for (;;) {
		ssize_t n;
		int r;

		/* Not while refusing: only the next accept call ends
		 * that, and until then no attempt can be pending. */
		if (fd >= 0 && !refusing && rng_below(&a->rng, 6) == 0) {
			/* Readable once an attempt is pending (or the
			 * server is shut down): refuse it. */
			if (!wait_readable(fd, LONG_MS))
				fail_note("the accept descriptor did not "
				          "become readable");
			if ((r = polyserver_refuse(nc->srv)) < 0)
				fail_note("refuse: %s", strerror(errno));
			else
				nc->refused += r;
			refusing = true;
			continue;
		}
		refusing = false;
		errno = 0;
		n = polyserver_accept_many(nc->srv, eps,
		                           1 + rng_below(&a->rng, 3), LONG_MS);
		if (n < 0 && errno == ESHUTDOWN)
			break;
		if (n < 0) {
			fail_note("accept_many: %s", strerror(errno));
			break;
		}
		nc->accepted += n;
		for (ssize_t i = 0; i < n; i++)
			polyendpoint_close(&eps[i]);
	}
	return NULL;
}

START_TEST(test_stress_notify_connect)
{
	struct nc *nc = calloc(1, sizeof *nc);
	struct nc_arg args[NC_THREADS + 1];
	long clients = 0, calls = 0, waited = 0;
	char what[128];

	stress_begin();
	ck_assert_ptr_nonnull(nc);
	nc->srv = polyserver_create();
	ck_assert_ptr_nonnull(nc->srv);
	nc->deadline = now_ms() + NC_MS;
	ck_assert_int_eq(
	    pthread_barrier_init(&nc->start, NULL, NC_THREADS + 2), 0);
	for (int i = 0; i <= NC_THREADS; i++) {
		args[i] = (struct nc_arg){ .nc = nc,
			                   .idx = i,
			                   .rng = rng_seed(3, (uint64_t)i) };
		spawn(&args[i].thread,
		      i < NC_THREADS ? nc_client_thread : nc_acceptor,
		      &args[i]);
	}
	pthread_barrier_wait(&nc->start);
	for (int i = 0; i < NC_THREADS; i++)
		join(args[i].thread);
	ck_assert_int_eq(polyserver_shutdown(nc->srv), 0);
	join(args[NC_THREADS].thread);
	polyserver_close(nc->srv);
	pthread_barrier_destroy(&nc->start);
	assert_no_failures();

	for (int t = 0; t < NC_THREADS; t++) {
		ck_assert_int_ge(nc->count[t], NC_MIN);
		for (long i = 0; i < nc->count[t]; i++) {
			struct nc_client *c = &nc->clients[t][i];

			clients++;
			/* Called once, when the attempt is decided (again
			 * at once for a notifier set afterwards). */
			snprintf(what, sizeof what,
			         "client %ld (action %d, %s): the notifier "
			         "set before the connect",
			         t * NC_PER_THREAD + i, c->action,
			         c->outcome == OC_ACCEPTED ? "accepted"
			                                   : "refused");
			nslot_check(&c->a, 1, what);
			if (c->action == NC_REPLACE) {
				snprintf(what, sizeof what,
				         "client %ld (%s): the notifier set "
				         "after the connect",
				         t * NC_PER_THREAD + i,
				         c->outcome == OC_ACCEPTED
				             ? "accepted"
				             : "refused");
				nslot_check(&c->b, 1, what);
			}
			if (c->action == NC_WAIT) {
				ck_assert_int_eq(atomic_load(&c->a.calls), 1);
				sem_destroy(&c->a.sem);
				waited++;
			}
			calls += atomic_load(&c->a.calls) +
			         atomic_load(&c->b.calls);
		}
	}
	report("notify_connect: %ld clients (%ld notifiers waited for), "
	       "%ld accepted, %ld refused, %ld notifier calls",
	       clients, waited, nc->accepted, nc->refused, calls);
	free(nc);
}
END_TEST

/* --- connection storms ------------------------------------------------- */

/*
 * Client threads connect one client after the other, directly or by
 * name, synchronously (polyclient_endpoint, then writes) or
 * asynchronously (writes on polyclient_endpoint_async, then the wait);
 * acceptor threads accept (one, or a batch), refuse now and then, read
 * each accepted connection to its end and answer on it once.  Messages
 * carry the client's id and a sequence number.  In the withdraw test,
 * most clients close themselves as soon as they have written, whether
 * accepted yet or not, and nobody refuses.
 */
enum {
	ST_CLIENT_THREADS = 3,
	ST_ACCEPTORS = 2,
	ST_PER_THREAD = 250,
	ST_MIN = 20,
	ST_MS = 1500,
	ST_REPLY = 15, /* the sequence number of the server's answer */
};

enum st_mode { ST_SYNC, ST_ASYNC, ST_WITHDRAW };

#define ST_MSG(id, seq) MSG((uintptr_t)(id) << 4 | (uintptr_t)(seq))

struct st_client {
	bool used;
	enum st_mode mode;
	bool by_name;
	int k;                   /* messages it means to write */
	enum outcome outcome;    /* as the client saw it */
	long written;            /* messages its pipe accepted */
	long destroyed_at_close; /* ST_WITHDRAW: when close returned */
	long reply_read;
	atomic_long destroyed;  /* its messages destroyed */
	atomic_int srv_accepts; /* endpoints accepted for it */
	atomic_long srv_read;   /* its messages the server read */
	atomic_long reply_written;
	atomic_long reply_destroyed;
};

struct st {
	polyserver *srv;
	char name[64];
	bool withdraw; /* the withdraw test: no refusals */
	int64_t deadline;
	struct st_client clients[ST_CLIENT_THREADS][ST_PER_THREAD];
	long count[ST_CLIENT_THREADS];
	atomic_long accepted; /* endpoints accepted */
	atomic_long refused;  /* the sum of refuse's returns */
	pthread_barrier_t start;
};

struct st_arg {
	struct st *st;
	int idx;
	uint64_t rng;
	pthread_t thread;
};

static struct st_client *
st_client_of(struct st *st, uintptr_t id)
{
	uintptr_t t = id / ST_PER_THREAD, i = id % ST_PER_THREAD;

	if (t >= ST_CLIENT_THREADS || !st->clients[t][i].used)
		return NULL;
	return &st->clients[t][i];
}

/* The destructor of a client's messages: arg is the client. */
static void
st_client_dtor(void *msg, void *arg)
{
	struct st_client *c = arg;

	(void)msg;
	atomic_fetch_add(&c->destroyed, 1);
}

/* The destructor of the server's answers: arg is the storm. */
static void
st_reply_dtor(void *msg, void *arg)
{
	struct st_client *c = st_client_of(arg, MSGVAL(msg) >> 4);

	if (c == NULL || (MSGVAL(msg) & 15) != ST_REPLY)
		fail_note("destroyed an answer never written: %#lx",
		          (unsigned long)MSGVAL(msg));
	else
		atomic_fetch_add(&c->reply_destroyed, 1);
}

/* The server's side of an accepted connection. */
static void
st_serve(struct st *st, polyendpoint *ep)
{
	struct st_client *c;
	uintptr_t id, seq;
	long expect = 1;
	void *m = NULL;
	int rc;

	errno = 0;
	rc = polypipe_read(ep->rd, &m, LONG_MS);
	if (rc != 1) {
		/* Every client writes before it closes: an empty
		 * connection is an attempt that should not have been
		 * returned (withdrawn, or refused). */
		fail_note("accepted a connection that carries nothing: read "
		          "returned %d (%s)",
		          rc, strerror(errno));
		polyendpoint_close(ep);
		return;
	}
	id = MSGVAL(m) >> 4;
	seq = MSGVAL(m) & 15;
	c = st_client_of(st, id);
	if (c == NULL || seq != 0) {
		fail_note("accepted a connection whose first message is "
		          "%#lx",
		          (unsigned long)MSGVAL(m));
		polyendpoint_close(ep);
		return;
	}
	if (atomic_fetch_add(&c->srv_accepts, 1) != 0)
		fail_note("client %lu accepted twice", (unsigned long)id);
	if (polypipe_set_destructor(ep->wr, st_reply_dtor, st) != 0)
		fail_note("set_destructor: %s", strerror(errno));
	/* The client may have closed already: EPIPE. */
	errno = 0;
	if (polypipe_write(ep->wr, ST_MSG(id, ST_REPLY), 0) == 0)
		atomic_fetch_add(&c->reply_written, 1);
	else if (errno != EPIPE)
		fail_note("client %lu: answer: %s", (unsigned long)id,
		          strerror(errno));
	while ((rc = polypipe_read(ep->rd, &m, LONG_MS)) == 1) {
		if (MSGVAL(m) != (uintptr_t)ST_MSG(id, expect))
			fail_note("client %lu: message %#lx, expected %ld",
			          (unsigned long)id, (unsigned long)MSGVAL(m),
			          expect);
		expect++;
	}
	if (rc != 0)
		fail_note("client %lu: read: %s", (unsigned long)id,
		          strerror(errno));
	atomic_store(&c->srv_read, expect);
	polyendpoint_close(ep);
}

static void *
st_acceptor(void *arg)
{
	struct st_arg *a = arg;
	struct st *st = a->st;
	polyendpoint eps[4];

	self_tag = 100 + a->idx;
	pthread_barrier_wait(&st->start);
	for (;;) {
		unsigned what = rng_below(&a->rng, 6);
		ssize_t n;
		int r, timeout;

		if (what == 0 && !st->withdraw) {
			if ((r = polyserver_refuse(st->srv)) < 0)
				fail_note("refuse: %s", strerror(errno));
			else
				atomic_fetch_add(&st->refused, r);
			continue;
		}
		/* A quarter of the calls do not wait, or time out after
		 * 1 ms: an attempt may be handed to an accept as it gives
		 * up (server.c), and must still be returned. */
		timeout = rng_below(&a->rng, 4) == 0
		              ? (int)rng_below(&a->rng, 2)
		              : LONG_MS;
		errno = 0;
		if (what <= 2)
			n = polyserver_accept_many(
			    st->srv, eps, 1 + rng_below(&a->rng, 4), timeout);
		else
			n = polyserver_accept(st->srv, eps, timeout) == 0 ? 1
			                                                  : -1;
		if (n < 0 && errno == ESHUTDOWN)
			break;
		if (n < 0 && (errno == ETIMEDOUT || errno == EAGAIN))
			continue;
		if (n < 0) {
			fail_note("accept: %s", strerror(errno));
			break;
		}
		atomic_fetch_add(&st->accepted, n);
		for (ssize_t i = 0; i < n; i++)
			st_serve(st, &eps[i]);
	}
	return NULL;
}

/* Reads the server's answer, sometimes. */
static void
st_read_reply(struct st_client *c, polyendpoint *ep, uintptr_t id,
              uint64_t *rng)
{
	void *m = NULL;

	if (rng_coin(rng))
		return;
	errno = 0;
	if (polypipe_read(ep->rd, &m, LONG_MS) == 1 &&
	    m == ST_MSG(id, ST_REPLY))
		c->reply_read++;
	else
		fail_note("client %lu: no answer: %s", (unsigned long)id,
		          strerror(errno));
}

/* Writes the client's messages without waiting; the pipe has room. */
static void
st_write_all(struct st_client *c, polyendpoint *ep, uintptr_t id)
{
	while (c->written < c->k) {
		errno = 0;
		if (polypipe_write(ep->wr, ST_MSG(id, c->written), 0) != 0) {
			/* Refused meanwhile, or a failure. */
			if (errno != ECONNREFUSED || c->mode != ST_ASYNC)
				fail_note("client %lu: write: %s",
				          (unsigned long)id, strerror(errno));
			return;
		}
		c->written++;
	}
}

static void
st_client_run(struct st *st, struct st_client *c, uintptr_t id, uint64_t *rng)
{
	size_t cap = 1 + rng_below(rng, 4);
	polyclient *cl = polyclient_create(cap);
	polyendpoint ep, ep2;
	int64_t give_up;
	int rc;

	c->used = true;
	c->by_name = rng_coin(rng);
	c->k = 1 + (int)rng_below(rng, (unsigned)cap);
	if (st->withdraw)
		c->mode = rng_below(rng, 4) == 0 ? ST_SYNC : ST_WITHDRAW;
	else
		c->mode = rng_coin(rng) ? ST_SYNC : ST_ASYNC;
	if (cl == NULL) {
		fail_note("polyclient_create: %s", strerror(errno));
		c->outcome = OC_BROKEN;
		return;
	}
	/* ECONNREFUSED: the server is refusing (not queued). */
	give_up = now_ms() + LONG_MS;
	for (;;) {
		errno = 0;
		rc = c->by_name ? polyclient_connect_name(cl, st->name)
		                : polyclient_connect(cl, st->srv);
		if (rc == 0)
			break;
		if (errno != ECONNREFUSED || st->withdraw ||
		    now_ms() > give_up) {
			fail_note("client %lu: connect: %s", (unsigned long)id,
			          strerror(errno));
			c->outcome = OC_BROKEN;
			polyclient_close(cl);
			return;
		}
		sched_yield();
	}
	if (c->mode == ST_SYNC) {
		c->outcome = nc_decision(cl);
		if (polyclient_endpoint(cl, &ep, 0) != 0) {
			if (errno != ECONNREFUSED ||
			    c->outcome != OC_REFUSED ||
			    polyclient_endpoint_async(cl, &ep) != -1 ||
			    errno != ECONNREFUSED)
				fail_note("client %lu: refused, but not for "
				          "good",
				          (unsigned long)id);
		} else {
			st_write_all(c, &ep, id);
			st_read_reply(c, &ep, id, rng);
		}
		polyclient_close(cl);
		return;
	}
	if (polyclient_endpoint_async(cl, &ep) != 0) {
		/* Refused between the connect and here. */
		if (errno != ECONNREFUSED || c->mode == ST_WITHDRAW)
			fail_note("client %lu: endpoint_async: %s",
			          (unsigned long)id, strerror(errno));
		c->outcome = nc_decision(cl);
		polyclient_close(cl);
		return;
	}
	if (polypipe_set_destructor(ep.wr, st_client_dtor, c) != 0)
		fail_note("set_destructor: %s", strerror(errno));
	st_write_all(c, &ep, id);
	if (c->mode == ST_WITHDRAW) {
		jitter(rng, 8);
		polyclient_close(cl);
		c->destroyed_at_close = atomic_load(&c->destroyed);
		return;
	}
	c->outcome = nc_decision(cl);
	if (c->outcome == OC_ACCEPTED) {
		if (polyclient_endpoint(cl, &ep2, 0) != 0 || ep2.rd != ep.rd ||
		    ep2.wr != ep.wr)
			fail_note("client %lu: the endpoints differ",
			          (unsigned long)id);
		if (c->written != c->k)
			fail_note("client %lu: accepted, but a write failed",
			          (unsigned long)id);
		st_read_reply(c, &ep, id, rng);
	} else if (c->outcome == OC_REFUSED &&
	           (polypipe_get_error(ep.wr) != ECONNREFUSED ||
	            polypipe_get_error(ep.rd) != ECONNREFUSED)) {
		fail_note("client %lu: refused, but the pipes carry %d, %d",
		          (unsigned long)id, polypipe_get_error(ep.wr),
		          polypipe_get_error(ep.rd));
	}
	polyclient_close(cl);
}

static void *
st_client_thread(void *arg)
{
	struct st_arg *a = arg;
	struct st *st = a->st;
	long i;

	self_tag = a->idx;
	pthread_barrier_wait(&st->start);
	for (i = 0;
	     i < ST_PER_THREAD && (i < ST_MIN || now_ms() < st->deadline); i++)
		st_client_run(st, &st->clients[a->idx][i],
		              (uintptr_t)(a->idx * ST_PER_THREAD + i),
		              &a->rng);
	st->count[a->idx] = i;
	return NULL;
}

/* Runs a storm; the checks are the caller's. */
static struct st *
st_run(bool withdraw)
{
	struct st *st = calloc(1, sizeof *st);
	struct st_arg cl[ST_CLIENT_THREADS], ac[ST_ACCEPTORS];
	polyendpoint ep;
	polyclient *late;

	ck_assert_ptr_nonnull(st);
	st->withdraw = withdraw;
	snprintf(st->name, sizeof st->name, "check_stress/%ld/storm/%d",
	         (long)getpid(), withdraw);
	st->srv = polyserver_create();
	ck_assert_ptr_nonnull(st->srv);
	ck_assert_int_eq(polyserver_bind(st->srv, st->name), 0);
	st->deadline = now_ms() + ST_MS;
	ck_assert_int_eq(
	    pthread_barrier_init(&st->start, NULL,
	                         ST_CLIENT_THREADS + ST_ACCEPTORS + 1),
	    0);
	for (int i = 0; i < ST_ACCEPTORS; i++) {
		ac[i] = (struct st_arg){ .st = st,
			                 .idx = i,
			                 .rng = rng_seed(4 + withdraw,
			                                 100 + (uint64_t)i) };
		spawn(&ac[i].thread, st_acceptor, &ac[i]);
	}
	for (int i = 0; i < ST_CLIENT_THREADS; i++) {
		cl[i] = (struct st_arg){ .st = st,
			                 .idx = i,
			                 .rng = rng_seed(4 + withdraw,
			                                 (uint64_t)i) };
		spawn(&cl[i].thread, st_client_thread, &cl[i]);
	}
	pthread_barrier_wait(&st->start);
	for (int i = 0; i < ST_CLIENT_THREADS; i++)
		join(cl[i].thread);
	/* Every attempt was decided, or withdrawn. */
	ck_assert(!polyserver_pending(st->srv));
	ck_assert_int_eq(polyserver_shutdown(st->srv), 0);
	for (int i = 0; i < ST_ACCEPTORS; i++)
		join(ac[i].thread);
	pthread_barrier_destroy(&st->start);
	assert_no_failures();

	/* After the shutdown, for good. */
	ck_assert_fail(polyserver_accept(st->srv, &ep, 0), ESHUTDOWN);
	ck_assert_int_eq(polyserver_refuse(st->srv), 0);
	late = polyclient_create(1);
	ck_assert_ptr_nonnull(late);
	ck_assert_fail(polyclient_connect(late, st->srv), ECONNREFUSED);
	ck_assert_fail(polyclient_connect_name(late, st->name), ECONNREFUSED);
	polyclient_close(late);
	polyserver_close(st->srv);
	for (int t = 0; t < ST_CLIENT_THREADS; t++)
		ck_assert_int_ge(st->count[t], ST_MIN);
	return st;
}

/* The answers: each written one was read or destroyed. */
static void
st_check_replies(const struct st_client *c, long id)
{
	ck_assert_msg(atomic_load(&c->reply_written) ==
	                  c->reply_read + atomic_load(&c->reply_destroyed),
	              "client %ld: %ld answers written, %ld read, %ld "
	              "destroyed",
	              id, atomic_load(&c->reply_written), c->reply_read,
	              atomic_load(&c->reply_destroyed));
}

START_TEST(test_stress_connect_storm)
{
	long accepted = 0, refused = 0, msgs = 0, destroyed = 0;
	long by_name = 0, async = 0;
	struct st *st;

	stress_begin();
	st = st_run(false);
	for (int t = 0; t < ST_CLIENT_THREADS; t++) {
		for (long i = 0; i < st->count[t]; i++) {
			struct st_client *c = &st->clients[t][i];
			long id = t * ST_PER_THREAD + i;
			long srv_read = atomic_load(&c->srv_read);
			long lost = atomic_load(&c->destroyed);

			ck_assert_msg(c->outcome == OC_ACCEPTED ||
			                  c->outcome == OC_REFUSED,
			              "client %ld: undecided", id);
			if (c->outcome == OC_ACCEPTED) {
				/* All its messages reached the server. */
				accepted++;
				ck_assert_int_eq(atomic_load(&c->srv_accepts),
				                 1);
				ck_assert_int_eq(c->written, c->k);
				ck_assert_int_eq(srv_read, c->written);
				ck_assert_int_eq(lost, 0);
			} else {
				/* None did: all destroyed. */
				refused++;
				ck_assert_int_eq(atomic_load(&c->srv_accepts),
				                 0);
				ck_assert_int_eq(srv_read, 0);
				ck_assert_int_eq(lost, c->written);
			}
			st_check_replies(c, id);
			msgs += c->written;
			destroyed += lost;
			by_name += c->by_name;
			async += c->mode == ST_ASYNC;
		}
	}
	ck_assert_int_eq(accepted, atomic_load(&st->accepted));
	ck_assert_int_eq(refused, atomic_load(&st->refused));
	report("connect_storm: %ld clients (%ld async, %ld by name), %ld "
	       "accepted, %ld refused, %ld messages written, %ld destroyed",
	       accepted + refused, async, by_name, accepted, refused, msgs,
	       destroyed);
	free(st);
}
END_TEST

START_TEST(test_stress_connect_withdrawn)
{
	long accepted = 0, withdrawn = 0, late = 0, sync = 0;
	struct st *st;

	stress_begin();
	st = st_run(true);
	for (int t = 0; t < ST_CLIENT_THREADS; t++) {
		for (long i = 0; i < st->count[t]; i++) {
			struct st_client *c = &st->clients[t][i];
			long id = t * ST_PER_THREAD + i;
			int accepts = atomic_load(&c->srv_accepts);
			long lost = atomic_load(&c->destroyed);

			ck_assert_int_eq(c->written, c->k);
			st_check_replies(c, id);
			if (c->mode == ST_SYNC) {
				ck_assert_msg(c->outcome == OC_ACCEPTED,
				              "client %ld: not accepted", id);
				sync++;
			}
			if (accepts != 0) {
				/* Accepted before it closed: everything
				 * reached the server. */
				ck_assert_int_eq(accepts, 1);
				ck_assert_int_eq(atomic_load(&c->srv_read),
				                 c->k);
				ck_assert_int_eq(lost, 0);
				accepted++;
				late += c->mode == ST_WITHDRAW;
			} else {
				/* Withdrawn: never accepted, and what it
				 * wrote destroyed before close returned. */
				ck_assert_int_eq(c->mode, ST_WITHDRAW);
				ck_assert_int_eq(lost, c->k);
				ck_assert_int_eq(c->destroyed_at_close, c->k);
				withdrawn++;
			}
		}
	}
	ck_assert_int_eq(accepted, atomic_load(&st->accepted));
	report("connect_withdrawn: %ld clients (%ld synchronous), %ld "
	       "accepted (%ld of them closing), %ld withdrawn",
	       accepted + withdrawn, sync, accepted, late, withdrawn);
	free(st);
}
END_TEST

/* --- polyset: many members, many waiters, members that come and go ---- */

/*
 * Ends the waits of n threads that loop on polyset_wait until they see a
 * stop flag already set, each posting exited as it leaves: wakes the set
 * until all have (a wake sent while none is blocked stays pending for
 * the next wait, so none is lost).  False if they did not leave within
 * LONG_MS.
 */
static bool
set_stop_waiters(polyset *set, sem_t *exited, int n)
{
	int64_t deadline = now_ms() + LONG_MS;
	int left = 0;

	while (left < n && now_ms() < deadline) {
		struct timespec ts;

		if (polyset_wake(set) != 0)
			fail_note("polyset_wake: %s", strerror(errno));
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		while (left < n && sem_timedwait(exited, &ts) == 0)
			left++;
	}
	return left == n;
}

/* A timeout for a producer's write: mostly one that only a lost wake-up
 * reaches, sometimes 0 or a few milliseconds. */
static int
set_pick_timeout(uint64_t *s)
{
	switch (rng_below(s, 8)) {
	case 0:
	case 1:
		return 0;
	case 2:
		return 1 + (int)rng_below(s, 3);
	default:
		return LONG_MS;
	}
}

/*
 * Fan-in: FI_PIPES pipes in one set, FI_PRODUCERS threads writing to
 * pipes at random, one consumer in polyset_wait that drains each reported
 * read end with polypipe_read_many(..., 0).  The consumer is the only
 * reader, so a reported end must not fail with EAGAIN.  At the end every
 * pipe gets EOF (or its write end closed); the consumer removes each
 * ended member, and no removed member is reported again.  Every message
 * is read once, in order per pipe and producer.
 */
enum {
	FI_PIPES = 256,
	FI_PRODUCERS = 2,
	FI_CAPACITY = 4,
	FI_MAX = 400000, /* messages per producer */
	FI_MIN = 5000,
	FI_MS = 1000,
	FI_BATCH = 8,
	FI_EVS = 64,
	FI_READ = 16,
};

/* A message: seq per (producer, pipe) above bit 9, the pipe in bits 1-8,
 * the producer in bit 0. */
#define FI_MSG(p, i, seq)                                                     \
	MSG((uintptr_t)(seq) << 9 | (uintptr_t)(i) << 1 | (uintptr_t)(p))

struct fi {
	polyset *set;
	polypipe *rd[FI_PIPES];
	polypipe *wr[FI_PIPES];
	int64_t deadline;
	long produced[FI_PRODUCERS][FI_PIPES]; /* by each producer */
	long next[FI_PRODUCERS][FI_PIPES];     /* the consumer's */
	bool ended[FI_PIPES];                  /* the consumer's */
	long total[FI_PRODUCERS];
	long consumed, waits, reports;
	pthread_barrier_t start;
};

struct fi_arg {
	struct fi *f;
	int idx;
	uint64_t rng;
	pthread_t thread;
};

static void *
fi_producer(void *arg)
{
	struct fi_arg *a = arg;
	struct fi *f = a->f;
	void *msgs[FI_BATCH];
	long total = 0, loops = 0;

	self_tag = a->idx;
	pthread_barrier_wait(&f->start);
	while (total < FI_MAX) {
		unsigned i = rng_below(&a->rng, FI_PIPES);
		size_t n = 1 + rng_below(&a->rng, FI_BATCH);
		long seq = f->produced[a->idx][i];
		int t = set_pick_timeout(&a->rng);
		ssize_t w;

		if (total >= FI_MIN && ++loops % 16 == 0 &&
		    now_ms() >= f->deadline)
			break;
		for (size_t k = 0; k < n; k++)
			msgs[k] = FI_MSG(a->idx, i, seq + (long)k);
		errno = 0;
		if (n == 1)
			w = polypipe_write(f->wr[i], msgs[0], t) == 0 ? 1 : -1;
		else
			w = polypipe_write_many(f->wr[i], msgs, n, t);
		if (w > 0 && (size_t)w <= n) {
			f->produced[a->idx][i] += w;
			total += w;
			continue;
		}
		if (w < 0 && retry_after(t, errno))
			continue;
		fail_note("producer %d: write of %zu to pipe %u (timeout %d) "
		          "returned %zd: %s",
		          a->idx, n, i, t, w, strerror(errno));
		break;
	}
	f->total[a->idx] = total;
	return NULL;
}

/* Takes what one reported read end holds; true once it has ended. */
static bool
fi_drain(struct fi *f, unsigned i, uint64_t *rng)
{
	void *msgs[FI_READ];
	size_t max = 1 + rng_below(rng, FI_READ);
	ssize_t n;

	errno = 0;
	n = polypipe_read_many(f->rd[i], msgs, max, 0);
	if (n == 0)
		return true;
	if (n < 0) {
		fail_note("consumer: pipe %u was reported ready, but "
		          "polypipe_read_many(0) failed: %s",
		          i, strerror(errno));
		return false;
	}
	for (ssize_t k = 0; k < n; k++) {
		uintptr_t v = MSGVAL(msgs[k]);
		unsigned p = (unsigned)(v & 1), pi = (unsigned)(v >> 1 & 0xff);
		long seq = (long)(v >> 9);

		if (pi != i) {
			fail_note("consumer: pipe %u held pipe %u's message",
			          i, pi);
			continue;
		}
		if (seq != f->next[p][i])
			fail_note(
			    "consumer: pipe %u, producer %u: message %ld "
			    "where %ld was due",
			    i, p, seq, f->next[p][i]);
		f->next[p][i] = seq + 1;
	}
	f->consumed += n;
	return false;
}

static void *
fi_consumer(void *arg)
{
	struct fi_arg *a = arg;
	struct fi *f = a->f;
	struct polyset_event evs[FI_EVS];
	int ended = 0;

	self_tag = FI_PRODUCERS;
	pthread_barrier_wait(&f->start);
	while (ended < FI_PIPES) {
		size_t max =
		    rng_coin(&a->rng) ? FI_EVS : 1 + rng_below(&a->rng, 8);
		ssize_t n;

		errno = 0;
		n = polyset_wait(f->set, evs, max, LONG_MS);
		f->waits++;
		if (n <= 0 || (size_t)n > max) {
			fail_note("consumer: polyset_wait(max %zu) returned "
			          "%zd: %s (%d pipes ended)",
			          max, n, n < 0 ? strerror(errno) : "", ended);
			break;
		}
		f->reports += n;
		for (ssize_t k = 0; k < n; k++) {
			unsigned i = (unsigned)MSGVAL(evs[k].data);

			if (i >= FI_PIPES || evs[k].obj != f->rd[i]) {
				fail_note("consumer: reported %p with data "
				          "%u, not a member's",
				          evs[k].obj, i);
				continue;
			}
			for (ssize_t j = 0; j < k; j++)
				if (evs[j].obj == evs[k].obj)
					fail_note("consumer: pipe %u reported "
					          "twice by one wait",
					          i);
			if (f->ended[i]) {
				fail_note("consumer: pipe %u reported after "
				          "its removal",
				          i);
				continue;
			}
			if (!fi_drain(f, i, &a->rng))
				continue;
			f->ended[i] = true;
			ended++;
			if (polyset_remove(f->set, f->rd[i]) != 0)
				fail_note("consumer: polyset_remove: %s",
				          strerror(errno));
		}
	}
	return NULL;
}

START_TEST(test_stress_set_fan_in)
{
	struct fi *f = calloc(1, sizeof *f);
	struct fi_arg prod[FI_PRODUCERS], cons;
	struct polyset_event ev;
	long produced = 0;
	int64_t t0 = now_ms();

	stress_begin();
	ck_assert_ptr_nonnull(f);
	f->set = polyset_create();
	ck_assert_ptr_nonnull(f->set);
	for (int i = 0; i < FI_PIPES; i++) {
		ck_assert_int_eq(
		    polypipe_create(FI_CAPACITY, &f->rd[i], &f->wr[i]), 0);
		ck_assert_int_eq(
		    polyset_add(f->set, f->rd[i], 0, MSG((uintptr_t)i)), 0);
	}
	ck_assert_int_eq(
	    pthread_barrier_init(&f->start, NULL, FI_PRODUCERS + 2), 0);
	f->deadline = now_ms() + FI_MS;
	cons = (struct fi_arg){ .f = f, .idx = 0, .rng = rng_seed(2, 100) };
	spawn(&cons.thread, fi_consumer, &cons);
	for (int p = 0; p < FI_PRODUCERS; p++) {
		prod[p] = (struct fi_arg){ .f = f,
			                   .idx = p,
			                   .rng = rng_seed(2, (uint64_t)p) };
		spawn(&prod[p].thread, fi_producer, &prod[p]);
	}
	pthread_barrier_wait(&f->start);
	for (int p = 0; p < FI_PRODUCERS; p++)
		join(prod[p].thread);
	/* The end of every stream, by EOF or by closing the write end. */
	for (int i = 0; i < FI_PIPES; i++) {
		if (i % 2 == 0) {
			ck_assert_int_eq(polypipe_write_eof(f->wr[i]), 0);
		} else {
			polypipe_close(f->wr[i]);
			f->wr[i] = NULL;
		}
	}
	join(cons.thread);
	assert_no_failures();
	for (int p = 0; p < FI_PRODUCERS; p++) {
		ck_assert_int_ge(f->total[p], FI_MIN);
		for (int i = 0; i < FI_PIPES; i++) {
			ck_assert_msg(f->next[p][i] == f->produced[p][i],
			              "pipe %d, producer %d: %ld written, %ld "
			              "read (seed %llu)",
			              i, p, f->produced[p][i], f->next[p][i],
			              (unsigned long long)seed);
			produced += f->produced[p][i];
		}
	}
	ck_assert_int_eq(f->consumed, produced);
	ck_assert_fail(polyset_wait(f->set, &ev, 1, 0), EAGAIN);
	report("set_fan_in: %ld messages through %d pipes, %ld waits, %ld "
	       "reports, %lld ms",
	       produced, FI_PIPES, f->waits, f->reports,
	       (long long)(now_ms() - t0));
	polyset_close(f->set);
	for (int i = 0; i < FI_PIPES; i++) {
		polypipe_close(f->rd[i]);
		polypipe_close(f->wr[i]);
	}
	pthread_barrier_destroy(&f->start);
	free(f);
}
END_TEST

/*
 * A pool: OP_WAITERS threads wait on one set whose members, read ends of
 * OP_PIPES pipes, are all POLYSET_ONESHOT; OP_PRODUCERS threads write to
 * the pipes at random.  Each waiter claims what it is handed (an atomic
 * owner per member: no member is handed to two threads at once), drains
 * it, entirely or in part, then releases it and re-arms it with
 * polyset_modify.  A handed member has no other reader, so its first
 * read must not fail with EAGAIN.  Every message is read once, in order
 * per pipe and producer.
 */
enum {
	OP_PIPES = 64,
	OP_WAITERS = 4,
	OP_PRODUCERS = 2,
	OP_CAPACITY = 8,
	OP_MAX = 300000, /* messages per producer */
	OP_MIN = 5000,
	OP_MS = 1000,
	OP_BATCH = 8,
};

struct op {
	polyset *set;
	polypipe *rd[OP_PIPES];
	polypipe *wr[OP_PIPES];
	int64_t deadline;
	atomic_int owner[OP_PIPES]; /* 0, or the holder's tag + 1 */
	/* The reader's side of each pipe: only its owner touches it
	 * (the owner flag's exchange and store order the hand-overs). */
	long next[OP_PIPES][OP_PRODUCERS];
	bool ended[OP_PIPES];
	long produced[OP_PRODUCERS][OP_PIPES];
	long total[OP_PRODUCERS];
	atomic_long consumed;
	atomic_long handed;
	atomic_long rearmed;
	atomic_int nended;
	atomic_bool stop;
	sem_t all_ended; /* posted when the last pipe ended */
	sem_t exited;    /* posted by each waiter as it leaves */
	pthread_barrier_t start;
};

struct op_arg {
	struct op *o;
	int idx;
	uint64_t rng;
	pthread_t thread;
};

static void *
op_producer(void *arg)
{
	struct op_arg *a = arg;
	struct op *o = a->o;
	void *msgs[OP_BATCH];
	long total = 0, loops = 0;

	self_tag = a->idx;
	pthread_barrier_wait(&o->start);
	while (total < OP_MAX) {
		unsigned i = rng_below(&a->rng, OP_PIPES);
		size_t n = 1 + rng_below(&a->rng, OP_BATCH);
		long seq = o->produced[a->idx][i];
		int t = set_pick_timeout(&a->rng);
		ssize_t w;

		if (total >= OP_MIN && ++loops % 16 == 0 &&
		    now_ms() >= o->deadline)
			break;
		for (size_t k = 0; k < n; k++)
			msgs[k] = MSG((uintptr_t)(seq + (long)k) << 1 |
			              (uintptr_t)a->idx);
		errno = 0;
		w = polypipe_write_many(o->wr[i], msgs, n, t);
		if (w > 0 && (size_t)w <= n) {
			o->produced[a->idx][i] += w;
			total += w;
			continue;
		}
		if (w < 0 && retry_after(t, errno))
			continue;
		fail_note("producer %d: write of %zu to pipe %u (timeout %d) "
		          "returned %zd: %s",
		          a->idx, n, i, t, w, strerror(errno));
		break;
	}
	o->total[a->idx] = total;
	return NULL;
}

/* Drains a handed member, all of it or some; true once it has ended. */
static bool
op_drain(struct op *o, unsigned i, uint64_t *rng)
{
	void *msgs[OP_BATCH];
	bool all = rng_coin(rng);

	for (int round = 0;; round++) {
		ssize_t n;

		errno = 0;
		n = polypipe_read_many(o->rd[i], msgs,
		                       1 + rng_below(rng, OP_BATCH), 0);
		if (n == 0)
			return true;
		if (n < 0) {
			if (errno != EAGAIN || round == 0)
				fail_note(
				    "waiter %d: pipe %u was handed to it, "
				    "but polypipe_read_many(0) failed: "
				    "%s",
				    self_tag, i, strerror(errno));
			return false;
		}
		for (ssize_t k = 0; k < n; k++) {
			uintptr_t v = MSGVAL(msgs[k]);
			unsigned p = (unsigned)(v & 1);
			long seq = (long)(v >> 1);

			if (seq != o->next[i][p])
				fail_note("waiter %d: pipe %u, producer %u: "
				          "message %ld where %ld was due",
				          self_tag, i, p, seq, o->next[i][p]);
			o->next[i][p] = seq + 1;
		}
		atomic_fetch_add(&o->consumed, n);
		if (!all)
			return false;
	}
}

static void *
op_waiter(void *arg)
{
	struct op_arg *a = arg;
	struct op *o = a->o;
	struct polyset_event evs[OP_BATCH];

	self_tag = OP_PRODUCERS + a->idx;
	pthread_barrier_wait(&o->start);
	while (!atomic_load(&o->stop)) {
		size_t max = 1 + rng_below(&a->rng, OP_BATCH);
		ssize_t n;

		errno = 0;
		n = polyset_wait(o->set, evs, max, LONG_MS);
		if (n == 0)
			continue; /* woken: look at stop */
		if (n < 0 || (size_t)n > max) {
			fail_note("waiter %d: polyset_wait(max %zu) returned "
			          "%zd: %s",
			          self_tag, max, n,
			          n < 0 ? strerror(errno) : "");
			break;
		}
		for (ssize_t k = 0; k < n; k++) {
			unsigned i = (unsigned)MSGVAL(evs[k].data);
			int prev;

			if (i >= OP_PIPES || evs[k].obj != o->rd[i]) {
				fail_note("waiter %d: reported %p with data "
				          "%u, not a member's",
				          self_tag, evs[k].obj, i);
				continue;
			}
			/* seq_cst: the exchange acquires what the last
			 * holder wrote before its release below. */
			prev = atomic_exchange(&o->owner[i], self_tag + 1);
			if (prev != 0) {
				fail_note("waiter %d: pipe %u handed to it "
				          "while waiter %d holds it",
				          self_tag, i, prev - 1);
				continue;
			}
			atomic_fetch_add(&o->handed, 1);
			if (o->ended[i]) {
				fail_note(
				    "waiter %d: pipe %u handed again "
				    "after it ended and was not re-armed",
				    self_tag, i);
				atomic_store(&o->owner[i], 0);
				continue;
			}
			if (op_drain(o, i, &a->rng)) {
				o->ended[i] = true;
				atomic_store(&o->owner[i], 0);
				/* Ended: held for good, never re-armed. */
				if (atomic_fetch_add(&o->nended, 1) + 1 ==
				    OP_PIPES)
					sem_post(&o->all_ended);
				continue;
			}
			/* Released before the re-arm: once re-armed it may
			 * be handed to another waiter at once. */
			atomic_store(&o->owner[i], 0);
			if (polyset_modify(o->set, o->rd[i], POLYSET_ONESHOT,
			                   evs[k].data) != 0)
				fail_note("waiter %d: polyset_modify: %s",
				          self_tag, strerror(errno));
			atomic_fetch_add(&o->rearmed, 1);
		}
	}
	sem_post(&o->exited);
	return NULL;
}

START_TEST(test_stress_set_oneshot_pool)
{
	struct op *o = calloc(1, sizeof *o);
	struct op_arg prod[OP_PRODUCERS], wait[OP_WAITERS];
	struct polyset_event ev;
	long produced = 0;
	int64_t t0 = now_ms();
	bool ended, left;

	stress_begin();
	ck_assert_ptr_nonnull(o);
	o->set = polyset_create();
	ck_assert_ptr_nonnull(o->set);
	for (int i = 0; i < OP_PIPES; i++) {
		ck_assert_int_eq(
		    polypipe_create(OP_CAPACITY, &o->rd[i], &o->wr[i]), 0);
		ck_assert_int_eq(polyset_add(o->set, o->rd[i], POLYSET_ONESHOT,
		                             MSG((uintptr_t)i)),
		                 0);
	}
	ck_assert_int_eq(sem_init(&o->all_ended, 0, 0), 0);
	ck_assert_int_eq(sem_init(&o->exited, 0, 0), 0);
	ck_assert_int_eq(pthread_barrier_init(&o->start, NULL,
	                                      OP_PRODUCERS + OP_WAITERS + 1),
	                 0);
	o->deadline = now_ms() + OP_MS;
	for (int w = 0; w < OP_WAITERS; w++) {
		wait[w] = (struct op_arg){
			.o = o, .idx = w, .rng = rng_seed(3, 100 + (uint64_t)w)
		};
		spawn(&wait[w].thread, op_waiter, &wait[w]);
	}
	for (int p = 0; p < OP_PRODUCERS; p++) {
		prod[p] = (struct op_arg){ .o = o,
			                   .idx = p,
			                   .rng = rng_seed(3, (uint64_t)p) };
		spawn(&prod[p].thread, op_producer, &prod[p]);
	}
	pthread_barrier_wait(&o->start);
	for (int p = 0; p < OP_PRODUCERS; p++)
		join(prod[p].thread);
	for (int i = 0; i < OP_PIPES; i++)
		ck_assert_int_eq(polypipe_write_eof(o->wr[i]), 0);
	ended = sem_wait_long(&o->all_ended);
	atomic_store(&o->stop, true);
	left = set_stop_waiters(o->set, &o->exited, OP_WAITERS);
	ck_assert_msg(left,
	              "waiters still blocked in polyset_wait after "
	              "%d wakes' worth of time (seed %llu)",
	              LONG_MS, (unsigned long long)seed);
	for (int w = 0; w < OP_WAITERS; w++)
		join(wait[w].thread);
	assert_no_failures();
	ck_assert_msg(ended,
	              "only %d of %d pipes were seen to end: a member ready "
	              "was never handed out (seed %llu)",
	              atomic_load(&o->nended), OP_PIPES,
	              (unsigned long long)seed);
	for (int p = 0; p < OP_PRODUCERS; p++) {
		ck_assert_int_ge(o->total[p], OP_MIN);
		for (int i = 0; i < OP_PIPES; i++) {
			ck_assert_msg(o->next[i][p] == o->produced[p][i],
			              "pipe %d, producer %d: %ld written, %ld "
			              "read (seed %llu)",
			              i, p, o->produced[p][i], o->next[i][p],
			              (unsigned long long)seed);
			produced += o->produced[p][i];
		}
	}
	ck_assert_int_eq(atomic_load(&o->consumed), produced);
	/* Every member ended and is held: nothing is due. */
	ck_assert_fail(polyset_wait(o->set, &ev, 1, 0), EAGAIN);
	report("set_oneshot_pool: %ld messages through %d pipes, %ld "
	       "handed to %d waiters, %ld re-armed, %lld ms",
	       produced, OP_PIPES, atomic_load(&o->handed), OP_WAITERS,
	       atomic_load(&o->rearmed), (long long)(now_ms() - t0));
	polyset_close(o->set);
	for (int i = 0; i < OP_PIPES; i++) {
		polypipe_close(o->rd[i]);
		polypipe_close(o->wr[i]);
	}
	sem_destroy(&o->all_ended);
	sem_destroy(&o->exited);
	pthread_barrier_destroy(&o->start);
	free(o);
}
END_TEST

/*
 * Churn: members join, leave and close while threads wait, with
 * messages in flight.  Each slot is a pipe whose read end is a
 * POLYSET_ONESHOT member.  The test's thread makes new slots and adds
 * them while CH_CONSUMERS threads wait; one producer owns every write
 * end, writes to slots at random, and closes write ends at random (or on
 * EPIPE).  A consumer handed a member does one of: drain and re-arm;
 * read a little, remove it and add it again; close the read end at once
 * (its messages go to the destructor; it was handed and not re-armed, so
 * no other wait can report it); remove it and park it for the test's
 * thread to add back.  A read end that reads EOF is closed.  Every
 * accepted message is read or destroyed, exactly once.
 */
enum {
	CH_SLOTS = 4000, /* slots made over the test, at most */
	CH_MIN_SLOTS = 24,
	CH_LIVE = 24, /* open write ends at once, at most */
	CH_CONSUMERS = 2,
	CH_CAPACITY = 4,
	CH_MAX_IDS = 1 << 20,
	CH_MS = 1000,
	CH_BATCH = 4,
};

enum { CH_ACCEPTED = 1, CH_READ = 2, CH_DESTROYED = 4 };

enum ch_act { CH_DRAIN, CH_READD, CH_CLOSE, CH_PARK, CH_NACTS };

struct churn;

struct ch_slot {
	struct churn *c;
	int idx;
	polypipe *rd; /* whoever holds the membership (or the parker) */
	polypipe *wr; /* the producer's */
	long last;    /* the last id read, by whoever holds the member */
	atomic_bool rd_closed; /* set as its close begins */
};

struct churn {
	polyset *set;
	struct ch_slot slots[CH_SLOTS];
	atomic_int nslots;    /* made and added */
	atomic_int rd_closed; /* read ends closed */
	bool making;          /* lock: the test's thread makes slots */
	atomic_long next_id;
	atomic_uchar flags[CH_MAX_IDS];
	atomic_long acts[CH_NACTS];
	atomic_long eofs;
	atomic_bool stop;
	/* Slots whose write ends the producer has not taken yet, and read
	 * ends parked for the test's thread: under lock. */
	pthread_mutex_t lock;
	pthread_cond_t cond; /* parked, or every read end closed */
	int new_wr[CH_SLOTS];
	int nnew;
	int parked[CH_SLOTS];
	int nparked;
	sem_t exited;
	pthread_barrier_t start;
	uint64_t rng_p;
	uint64_t rng_c[CH_CONSUMERS];
};

static void
ch_dtor(void *msg, void *arg)
{
	struct ch_slot *s = arg;
	uintptr_t id = MSGVAL(msg);
	unsigned prev;

	if (id >= CH_MAX_IDS) {
		fail_note("slot %d: destructor got %#lx, never written",
		          s->idx, (unsigned long)id);
		return;
	}
	prev = atomic_fetch_or(&s->c->flags[id], CH_DESTROYED);
	if (prev & (CH_READ | CH_DESTROYED))
		fail_note("slot %d: message %lu destroyed after it was %s",
		          s->idx, (unsigned long)id,
		          prev & CH_READ ? "read" : "destroyed");
}

/* Closes a slot's read end, which its caller holds. */
static void
ch_close_rd(struct churn *c, struct ch_slot *s)
{
	/* Before the close: the producer's write may fail with EPIPE
	 * while it runs. */
	atomic_store(&s->rd_closed, true);
	polypipe_close(s->rd);
	pthread_mutex_lock(&c->lock);
	atomic_fetch_add(&c->rd_closed, 1);
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

/* Waits on c->cond for up to ms (c->lock held). */
static void
ch_wait(struct churn *c, int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += ms * 1000000L;
	while (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&c->cond, &c->lock, &ts);
}

static void *
ch_producer(void *arg)
{
	struct churn *c = arg;
	int live[CH_SLOTS];
	int nlive = 0;
	bool exhausted = false;

	self_tag = 0;
	pthread_barrier_wait(&c->start);
	for (;;) {
		bool more;
		unsigned k;
		struct ch_slot *s;
		void *msgs[CH_BATCH];
		size_t n;
		long id;
		ssize_t w;
		int t;

		pthread_mutex_lock(&c->lock);
		while (c->nnew > 0)
			live[nlive++] = c->new_wr[--c->nnew];
		more = c->making;
		if (nlive == 0 && more)
			ch_wait(c, 1);
		pthread_mutex_unlock(&c->lock);
		if (nlive == 0) {
			if (!more)
				break;
			continue;
		}
		k = rng_below(&c->rng_p, (unsigned)nlive);
		s = &c->slots[live[k]];
		/* Closes a write end now and then, and all of them at
		 * the end: the stream ends, the reader sees EOF. */
		if (!more || exhausted || rng_below(&c->rng_p, 64) == 0) {
			polypipe_close(s->wr);
			live[k] = live[--nlive];
			continue;
		}
		n = 1 + rng_below(&c->rng_p, CH_BATCH);
		id = atomic_fetch_add(&c->next_id, (long)n);
		if (id + (long)n > CH_MAX_IDS) {
			/* Out of ids: only closes from now on. */
			exhausted = true;
			continue;
		}
		for (size_t j = 0; j < n; j++)
			msgs[j] = MSG((uintptr_t)(id + (long)j));
		t = rng_coin(&c->rng_p) ? 0 : 1;
		errno = 0;
		w = polypipe_write_many(s->wr, msgs, n, t);
		if (w > 0 && (size_t)w <= n) {
			for (ssize_t j = 0; j < w; j++)
				atomic_fetch_or(&c->flags[id + j],
				                CH_ACCEPTED);
			continue;
		}
		if (w < 0 && (errno == EAGAIN || errno == ETIMEDOUT))
			continue;
		if (w < 0 && errno == EPIPE && atomic_load(&s->rd_closed)) {
			polypipe_close(s->wr);
			live[k] = live[--nlive];
			continue;
		}
		fail_note("producer: write to slot %d returned %zd: %s",
		          s->idx, w, strerror(errno));
		break;
	}
	/* (on a failure, the write ends left open) */
	for (int j = 0; j < nlive; j++)
		polypipe_close(c->slots[live[j]].wr);
	return NULL;
}

/* Reads up to a few messages from a handed slot: 1 once it has ended. */
static int
ch_read(struct churn *c, struct ch_slot *s, bool all, bool first)
{
	void *msgs[CH_BATCH];

	for (;;) {
		ssize_t n;

		errno = 0;
		n = polypipe_read_many(s->rd, msgs, CH_BATCH, 0);
		if (n == 0) {
			atomic_fetch_add(&c->eofs, 1);
			return 1;
		}
		if (n < 0) {
			if (errno != EAGAIN || first)
				fail_note("consumer %d: slot %d handed to it, "
				          "but polypipe_read_many(0): %s",
				          self_tag, s->idx, strerror(errno));
			return 0;
		}
		first = false;
		for (ssize_t j = 0; j < n; j++) {
			uintptr_t id = MSGVAL(msgs[j]);
			unsigned prev;

			if (id >= CH_MAX_IDS || (long)id <= s->last) {
				fail_note("consumer %d: slot %d: message %lu "
				          "after %ld",
				          self_tag, s->idx, (unsigned long)id,
				          s->last);
				continue;
			}
			s->last = (long)id;
			prev = atomic_fetch_or(&c->flags[id], CH_READ);
			if (prev & (CH_READ | CH_DESTROYED))
				fail_note(
				    "consumer %d: message %lu read after "
				    "it was %s",
				    self_tag, (unsigned long)id,
				    prev & CH_READ ? "read" : "destroyed");
		}
		if (!all)
			return 0;
	}
}

static void
ch_handle(struct churn *c, struct ch_slot *s, uint64_t *rng)
{
	/* Mostly drains, so that slots live a while. */
	static const enum ch_act acts[10] = {
		CH_DRAIN, CH_DRAIN, CH_DRAIN, CH_DRAIN, CH_DRAIN,
		CH_READD, CH_READD, CH_CLOSE, CH_PARK,  CH_PARK,
	};
	enum ch_act act = acts[rng_below(rng, 10)];
	int rc;

	atomic_fetch_add(&c->acts[act], 1);
	if (act == CH_CLOSE) {
		ch_close_rd(c, s);
		return;
	}
	if (ch_read(c, s, act == CH_DRAIN, true)) {
		ch_close_rd(c, s);
		return;
	}
	switch (act) {
	case CH_DRAIN:
		rc = polyset_modify(c->set, s->rd, POLYSET_ONESHOT, s);
		break;
	case CH_READD:
		rc = polyset_remove(c->set, s->rd);
		if (rc == 0)
			rc = polyset_add(c->set, s->rd, POLYSET_ONESHOT, s);
		break;
	default: /* CH_PARK */
		rc = polyset_remove(c->set, s->rd);
		pthread_mutex_lock(&c->lock);
		c->parked[c->nparked++] = s->idx;
		pthread_cond_broadcast(&c->cond);
		pthread_mutex_unlock(&c->lock);
		break;
	}
	if (rc != 0)
		fail_note("consumer %d: slot %d, act %d: %s", self_tag, s->idx,
		          (int)act, strerror(errno));
}

struct ch_arg {
	struct churn *c;
	int idx;
	pthread_t thread;
};

static void *
ch_consumer(void *arg)
{
	struct ch_arg *a = arg;
	struct churn *c = a->c;
	uint64_t *rng = &c->rng_c[a->idx];
	struct polyset_event evs[4];

	self_tag = 1 + a->idx;
	pthread_barrier_wait(&c->start);
	while (!atomic_load(&c->stop)) {
		size_t max = 1 + rng_below(rng, 4);
		ssize_t n;

		errno = 0;
		n = polyset_wait(c->set, evs, max, LONG_MS);
		if (n == 0)
			continue;
		if (n < 0 || (size_t)n > max) {
			fail_note(
			    "consumer %d: polyset_wait(max %zu) returned "
			    "%zd: %s",
			    self_tag, max, n, n < 0 ? strerror(errno) : "");
			break;
		}
		for (ssize_t k = 0; k < n; k++) {
			struct ch_slot *s = evs[k].data;

			if (s == NULL || s->rd != evs[k].obj ||
			    atomic_load(&s->rd_closed)) {
				fail_note("consumer %d: reported %p, not an "
				          "open member's",
				          self_tag, evs[k].obj);
				continue;
			}
			ch_handle(c, s, rng);
		}
	}
	sem_post(&c->exited);
	return NULL;
}

/* The test's thread: makes a slot and adds it. */
static void
ch_make(struct churn *c)
{
	int i = atomic_load(&c->nslots);
	struct ch_slot *s = &c->slots[i];

	s->c = c;
	s->idx = i;
	s->last = -1;
	ck_assert_int_eq(polypipe_create(CH_CAPACITY, &s->rd, &s->wr), 0);
	ck_assert_int_eq(polypipe_set_destructor(s->rd, ch_dtor, s), 0);
	ck_assert_int_eq(polyset_add(c->set, s->rd, POLYSET_ONESHOT, s), 0);
	atomic_store(&c->nslots, i + 1);
	pthread_mutex_lock(&c->lock);
	c->new_wr[c->nnew++] = i;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

/* The test's thread: adds back the parked read ends. */
static void
ch_unpark(struct churn *c)
{
	int parked[CH_SLOTS], n;

	pthread_mutex_lock(&c->lock);
	n = c->nparked;
	memcpy(parked, c->parked, (size_t)n * sizeof parked[0]);
	c->nparked = 0;
	pthread_mutex_unlock(&c->lock);
	for (int k = 0; k < n; k++) {
		struct ch_slot *s = &c->slots[parked[k]];

		if (polyset_add(c->set, s->rd, POLYSET_ONESHOT, s) != 0)
			fail_note("adding back slot %d: %s", s->idx,
			          strerror(errno));
	}
}

START_TEST(test_stress_set_churn)
{
	struct churn *c = calloc(1, sizeof *c);
	struct ch_arg cons[CH_CONSUMERS];
	pthread_t prod;
	long accepted = 0, nread = 0, destroyed = 0, bad = 0;
	int64_t t0 = now_ms(), deadline = t0 + CH_MS;
	uint64_t rng = rng_seed(4, 0);
	bool done = false, left;
	long ids;

	stress_begin();
	ck_assert_ptr_nonnull(c);
	c->set = polyset_create();
	ck_assert_ptr_nonnull(c->set);
	ck_assert_int_eq(pthread_mutex_init(&c->lock, NULL), 0);
	ck_assert_int_eq(pthread_cond_init(&c->cond, NULL), 0);
	ck_assert_int_eq(sem_init(&c->exited, 0, 0), 0);
	ck_assert_int_eq(
	    pthread_barrier_init(&c->start, NULL, CH_CONSUMERS + 2), 0);
	c->making = true;
	c->rng_p = rng_seed(4, 1);
	for (int i = 0; i < CH_CONSUMERS; i++) {
		c->rng_c[i] = rng_seed(4, 10 + (uint64_t)i);
		cons[i] = (struct ch_arg){ .c = c, .idx = i };
		spawn(&cons[i].thread, ch_consumer, &cons[i]);
	}
	for (int i = 0; i < CH_LIVE / 2; i++)
		ch_make(c);
	spawn(&prod, ch_producer, c);
	pthread_barrier_wait(&c->start);
	/* Make slots while the others run, and add parked ones back. */
	while (
	    atomic_load(&c->nslots) < CH_SLOTS &&
	    (atomic_load(&c->nslots) < CH_MIN_SLOTS || now_ms() < deadline)) {
		int open =
		    atomic_load(&c->nslots) - atomic_load(&c->rd_closed);

		if (open < CH_LIVE) {
			ch_make(c);
			jitter(&rng, 64);
		}
		ch_unpark(c);
		pthread_mutex_lock(&c->lock);
		if (c->nparked == 0 &&
		    atomic_load(&c->nslots) - atomic_load(&c->rd_closed) >=
		        CH_LIVE)
			ch_wait(c, 1);
		pthread_mutex_unlock(&c->lock);
	}
	pthread_mutex_lock(&c->lock);
	c->making = false;
	pthread_mutex_unlock(&c->lock);
	/* Until every read end is closed: add back what is parked. */
	while (now_ms() < deadline + LONG_MS) {
		ch_unpark(c);
		pthread_mutex_lock(&c->lock);
		done = atomic_load(&c->rd_closed) == atomic_load(&c->nslots);
		if (!done && c->nparked == 0)
			ch_wait(c, 10);
		pthread_mutex_unlock(&c->lock);
		if (done)
			break;
	}
	join(prod);
	atomic_store(&c->stop, true);
	left = set_stop_waiters(c->set, &c->exited, CH_CONSUMERS);
	ck_assert_msg(left,
	              "consumers still blocked in polyset_wait "
	              "(seed %llu)",
	              (unsigned long long)seed);
	for (int i = 0; i < CH_CONSUMERS; i++)
		join(cons[i].thread);
	assert_no_failures();
	ck_assert_msg(done,
	              "%d of %d read ends closed: a member ready (EOF) was "
	              "never handed out (seed %llu)",
	              atomic_load(&c->rd_closed), atomic_load(&c->nslots),
	              (unsigned long long)seed);
	ck_assert_int_ge(atomic_load(&c->nslots), CH_MIN_SLOTS);
	ids = atomic_load(&c->next_id);
	if (ids > CH_MAX_IDS)
		ids = CH_MAX_IDS;
	for (long id = 0; id < ids; id++) {
		unsigned f = atomic_load(&c->flags[id]);

		if (f & CH_ACCEPTED) {
			accepted++;
			nread += (f & CH_READ) != 0;
			destroyed += (f & CH_DESTROYED) != 0;
			bad += f != (CH_ACCEPTED | CH_READ) &&
			       f != (CH_ACCEPTED | CH_DESTROYED);
		} else {
			bad += f != 0;
		}
	}
	ck_assert_msg(bad == 0,
	              "%ld messages not read or destroyed exactly once "
	              "(%ld accepted, %ld read, %ld destroyed; seed %llu)",
	              bad, accepted, nread, destroyed,
	              (unsigned long long)seed);
	ck_assert_int_gt(accepted, 0);
	report("set_churn: %d slots, %ld messages (%ld read, %ld destroyed), "
	       "acts: %ld drain, %ld re-add, %ld close, %ld park; %ld EOF, "
	       "%lld ms",
	       atomic_load(&c->nslots), accepted, nread, destroyed,
	       atomic_load(&c->acts[CH_DRAIN]),
	       atomic_load(&c->acts[CH_READD]),
	       atomic_load(&c->acts[CH_CLOSE]), atomic_load(&c->acts[CH_PARK]),
	       atomic_load(&c->eofs), (long long)(now_ms() - t0));
	polyset_close(c->set);
	sem_destroy(&c->exited);
	pthread_barrier_destroy(&c->start);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
END_TEST

/*
 * Mode changes in the middle of traffic: MC_WRITERS writers and
 * MC_READERS readers on one small pipe, some in blocking calls, some in
 * poll(2) on the ends' descriptors, one in polyset_wait, while a mode
 * thread takes the descriptors again, sets and removes both notifiers,
 * and adds the ends to a set, removes them, re-arms them and waits on the
 * set with timeout 0.  Every wait that only the other side's action ends
 * is bounded by LONG_MS: reaching it is a lost wake-up.  Every message
 * is read once, and each reader sees each writer's messages in order.
 * A member the mode thread removed is never reported by its later waits,
 * and a notifier removed is not running once its removal returned.
 */
enum {
	MC_WRITERS = 2,
	MC_READERS = 3, /* blocking, by descriptor, by set */
	MC_CAPACITY = 4,
	MC_MAX = 300000, /* messages per writer */
	MC_MIN = 3000,
	MC_MS = 1000,
	MC_BATCH = 4,
	MC_SET_MS = 5, /* the set reader's wait: the member may be gone */
};

struct mc_note {
	atomic_int inside;
	atomic_int calls;
	atomic_int late;
	atomic_bool retired;
};

struct mc {
	polypipe *rd;
	polypipe *wr;
	polyset *set;
	int rfd, wfd;
	int64_t deadline;
	atomic_uchar *seen; /* [writer * MC_MAX + seq] */
	long written[MC_WRITERS];
	long got[MC_READERS];
	atomic_bool stop_mode;
	long mode_ops;
	struct mc_note notes[4]; /* two per side, used in turn */
	pthread_barrier_t start;
};

struct mc_arg {
	struct mc *m;
	int idx;
	uint64_t rng;
	pthread_t thread;
};

static void
mc_note_fn(void *arg)
{
	struct mc_note *n = arg;

	atomic_fetch_add(&n->inside, 1);
	if (atomic_load(&n->retired))
		atomic_fetch_add(&n->late, 1);
	atomic_fetch_add(&n->calls, 1);
	atomic_fetch_sub(&n->inside, 1);
}

static void *
mc_writer(void *arg)
{
	struct mc_arg *a = arg;
	struct mc *m = a->m;
	void *msgs[MC_BATCH];
	long seq = 0, loops = 0;

	self_tag = a->idx;
	pthread_barrier_wait(&m->start);
	while (seq < MC_MAX) {
		size_t n = 1 + rng_below(&a->rng, MC_BATCH);
		ssize_t w;

		if (seq >= MC_MIN && ++loops % 16 == 0 &&
		    now_ms() >= m->deadline)
			break;
		if (n > (size_t)(MC_MAX - seq))
			n = (size_t)(MC_MAX - seq);
		for (size_t k = 0; k < n; k++)
			msgs[k] = MSG((uintptr_t)(seq + (long)k) << 1 |
			              (uintptr_t)a->idx);
		errno = 0;
		if (a->idx == 0) {
			/* Blocking. */
			w = polypipe_write_many(m->wr, msgs, n, LONG_MS);
		} else {
			/* By descriptor: poll, then a write that may
			 * find the slot taken by the other writer. */
			if (!wait_readable(m->wfd, LONG_MS)) {
				fail_note("writer %d: write_fd not readable "
				          "within %d ms",
				          a->idx, LONG_MS);
				break;
			}
			w = polypipe_write_many(m->wr, msgs, n, 0);
			if (w < 0 && errno == EAGAIN)
				continue;
		}
		if (w <= 0 || (size_t)w > n) {
			fail_note("writer %d: write of %zu returned %zd: %s",
			          a->idx, n, w, strerror(errno));
			break;
		}
		seq += w;
	}
	m->written[a->idx] = seq;
	return NULL;
}

/* Records what a reader read; false on a message never written. */
static void
mc_account(struct mc *m, long *last, void *const *msgs, ssize_t n, int reader)
{
	for (ssize_t k = 0; k < n; k++) {
		uintptr_t v = MSGVAL(msgs[k]);
		unsigned w = (unsigned)(v & 1);
		long seq = (long)(v >> 1);

		if (seq >= MC_MAX) {
			fail_note("reader %d: message %#lx never written",
			          reader, (unsigned long)v);
			continue;
		}
		if (seq <= last[w])
			fail_note("reader %d: writer %u's message %ld after "
			          "%ld",
			          reader, w, seq, last[w]);
		last[w] = seq;
		if (atomic_exchange(&m->seen[w * MC_MAX + seq], 1))
			fail_note("reader %d: writer %u's message %ld read "
			          "twice",
			          reader, w, seq);
	}
	m->got[reader] += n;
}

static void *
mc_reader(void *arg)
{
	struct mc_arg *a = arg;
	struct mc *m = a->m;
	long last[MC_WRITERS] = { -1, -1 };
	void *msgs[MC_BATCH];
	struct polyset_event evs[2];

	self_tag = MC_WRITERS + a->idx;
	pthread_barrier_wait(&m->start);
	for (;;) {
		size_t max = 1 + rng_below(&a->rng, MC_BATCH);
		ssize_t n;

		errno = 0;
		switch (a->idx) {
		case 0: /* blocking */
			n = polypipe_read_many(m->rd, msgs, max, LONG_MS);
			break;
		case 1: /* by descriptor */
			if (!wait_readable(m->rfd, LONG_MS)) {
				fail_note("reader 1: read_fd not readable "
				          "within %d ms",
				          LONG_MS);
				n = -2;
				break;
			}
			n = polypipe_read_many(m->rd, msgs, max, 0);
			break;
		default: /* by set, while the member comes and goes */
			n = polyset_wait(m->set, evs, 2, MC_SET_MS);
			if (n > 0 && (evs[0].obj == m->rd ||
			              (n > 1 && evs[1].obj == m->rd)))
				n = polypipe_read_many(m->rd, msgs, max, 0);
			else
				n = polypipe_read_many(m->rd, msgs, max,
				                       MC_SET_MS);
			break;
		}
		if (n == 0)
			break;
		if (n < 0 && n != -2 && a->idx != 0 &&
		    (errno == EAGAIN || errno == ETIMEDOUT))
			continue;
		if (n < 0) {
			if (n != -2)
				fail_note("reader %d: read returned %zd: %s",
				          a->idx, n, strerror(errno));
			break;
		}
		mc_account(m, last, msgs, n, a->idx);
	}
	return NULL;
}

/* Sets a side's notifier to note (NULL: none) and retires the one it
 * replaces. */
static void
mc_set_note(struct mc *m, bool rd_side, struct mc_note **cur,
            struct mc_note *note)
{
	int rc;

	if (note != NULL)
		atomic_store(&note->retired, false);
	if (rd_side)
		rc = polypipe_set_read_notify(m->rd, note ? mc_note_fn : NULL,
		                              note);
	else
		rc = polypipe_set_write_notify(m->wr, note ? mc_note_fn : NULL,
		                               note);
	if (rc != 0)
		fail_note("mode: set notify: %s", strerror(errno));
	if (*cur != NULL && *cur != note) {
		if (atomic_load(&(*cur)->inside) != 0)
			fail_note("mode: a notifier was running after its "
			          "replacement returned");
		atomic_store(&(*cur)->retired, true);
	}
	*cur = note;
}

static void *
mc_mode(void *arg)
{
	struct mc_arg *a = arg;
	struct mc *m = a->m;
	bool member[2] = { false, false }; /* rd, wr in m->set */
	struct mc_note *cur[2] = { NULL, NULL };
	polypipe *ends[2] = { m->rd, m->wr };
	struct polyset_event evs[4];
	long ops = 0;

	self_tag = MC_WRITERS + MC_READERS;
	pthread_barrier_wait(&m->start);
	while (!atomic_load(&m->stop_mode)) {
		unsigned op = rng_below(&a->rng, 8);
		unsigned e = rng_below(&a->rng, 2);
		ssize_t n;

		ops++;
		errno = 0;
		switch (op) {
		case 0:
			if (polypipe_read_fd(m->rd) != m->rfd ||
			    polypipe_write_fd(m->wr) != m->wfd)
				fail_note("mode: an end's descriptor changed");
			break;
		case 1:
			mc_set_note(
			    m, e == 0, &cur[e],
			    rng_below(&a->rng, 3) == 0
			        ? NULL
			        : &m->notes[e * 2 + rng_below(&a->rng, 2)]);
			break;
		case 2:
		case 3:
			if (member[e]) {
				if (polyset_remove(m->set, ends[e]) != 0)
					fail_note("mode: polyset_remove: %s",
					          strerror(errno));
				member[e] = false;
			} else {
				if (polyset_add(m->set, ends[e],
				                rng_coin(&a->rng)
				                    ? POLYSET_ONESHOT
				                    : 0,
				                MSG(e)) != 0)
					fail_note("mode: polyset_add: %s",
					          strerror(errno));
				member[e] = true;
			}
			break;
		case 4:
			if (member[e] &&
			    polyset_modify(m->set, ends[e],
			                   rng_coin(&a->rng) ? POLYSET_ONESHOT
			                                     : 0,
			                   MSG(e)) != 0)
				fail_note("mode: polyset_modify: %s",
				          strerror(errno));
			break;
		case 5:
		case 6:
			/* Only this thread adds and removes: a wait it
			 * begins reports members only. */
			n = polyset_wait(m->set, evs, 4, 0);
			for (ssize_t k = 0; k < n; k++) {
				uintptr_t d = MSGVAL(evs[k].data);

				if (d > 1 || evs[k].obj != ends[d])
					fail_note("mode: reported %p with "
					          "data %lu",
					          evs[k].obj,
					          (unsigned long)d);
				else if (!member[d])
					fail_note("mode: the %s end reported "
					          "after its removal",
					          d == 0 ? "read" : "write");
			}
			if (n < 0 && errno != EAGAIN)
				fail_note("mode: polyset_wait: %s",
				          strerror(errno));
			break;
		default:
			jitter(&a->rng, 16);
			break;
		}
	}
	for (int k = 0; k < 2; k++) {
		mc_set_note(m, k == 0, &cur[k], NULL);
		if (member[k] && polyset_remove(m->set, ends[k]) != 0)
			fail_note("mode: polyset_remove: %s", strerror(errno));
	}
	m->mode_ops = ops;
	return NULL;
}

START_TEST(test_stress_set_mode_changes)
{
	struct mc *m = calloc(1, sizeof *m);
	struct mc_arg wr[MC_WRITERS], rd[MC_READERS], mode;
	long written = 0, got = 0, missing = 0, extra = 0;
	int64_t t0 = now_ms();

	stress_begin();
	ck_assert_ptr_nonnull(m);
	m->seen = calloc((size_t)MC_WRITERS * MC_MAX, 1);
	ck_assert_ptr_nonnull(m->seen);
	ck_assert_int_eq(polypipe_create(MC_CAPACITY, &m->rd, &m->wr), 0);
	m->set = polyset_create();
	ck_assert_ptr_nonnull(m->set);
	m->rfd = polypipe_read_fd(m->rd);
	m->wfd = polypipe_write_fd(m->wr);
	ck_assert_int_ge(m->rfd, 0);
	ck_assert_int_ge(m->wfd, 0);
	ck_assert_int_eq(
	    pthread_barrier_init(&m->start, NULL, MC_WRITERS + MC_READERS + 2),
	    0);
	m->deadline = now_ms() + MC_MS;
	mode = (struct mc_arg){ .m = m, .idx = 0, .rng = rng_seed(5, 200) };
	spawn(&mode.thread, mc_mode, &mode);
	for (int i = 0; i < MC_READERS; i++) {
		rd[i] = (struct mc_arg){
			.m = m, .idx = i, .rng = rng_seed(5, 100 + (uint64_t)i)
		};
		spawn(&rd[i].thread, mc_reader, &rd[i]);
	}
	for (int i = 0; i < MC_WRITERS; i++) {
		wr[i] = (struct mc_arg){ .m = m,
			                 .idx = i,
			                 .rng = rng_seed(5, (uint64_t)i) };
		spawn(&wr[i].thread, mc_writer, &wr[i]);
	}
	pthread_barrier_wait(&m->start);
	for (int i = 0; i < MC_WRITERS; i++)
		join(wr[i].thread);
	ck_assert_int_eq(polypipe_write_eof(m->wr), 0);
	for (int i = 0; i < MC_READERS; i++)
		join(rd[i].thread);
	atomic_store(&m->stop_mode, true);
	join(mode.thread);
	assert_no_failures();
	for (int w = 0; w < MC_WRITERS; w++) {
		ck_assert_int_ge(m->written[w], MC_MIN);
		written += m->written[w];
		for (long s = 0; s < MC_MAX; s++) {
			bool seen = atomic_load(&m->seen[w * MC_MAX + s]);

			if (s < m->written[w] && !seen)
				missing++;
			else if (s >= m->written[w] && seen)
				extra++;
		}
	}
	for (int r = 0; r < MC_READERS; r++)
		got += m->got[r];
	ck_assert_msg(missing == 0 && extra == 0,
	              "%ld messages lost, %ld read but never written "
	              "(seed %llu)",
	              missing, extra, (unsigned long long)seed);
	ck_assert_int_eq(got, written);
	for (int k = 0; k < 4; k++) {
		ck_assert_int_eq(atomic_load(&m->notes[k].inside), 0);
		ck_assert_msg(atomic_load(&m->notes[k].late) == 0,
		              "a notifier ran after its removal returned "
		              "(seed %llu)",
		              (unsigned long long)seed);
	}
	report("set_mode_changes: %ld messages (readers %ld/%ld/%ld), %ld "
	       "mode changes, %lld ms",
	       written, m->got[0], m->got[1], m->got[2], m->mode_ops,
	       (long long)(now_ms() - t0));
	polyset_close(m->set);
	polypipe_close(m->rd);
	polypipe_close(m->wr);
	pthread_barrier_destroy(&m->start);
	free(m->seen);
	free(m);
}
END_TEST

/* --- connects and closes racing on many servers ------------------------ */

/*
 * Client threads connect to MS_SERVERS servers, each with an acceptor
 * thread of its own, and close at every point of an attempt's life.
 * Even servers are stable and taken by handle or by name; odd ones are
 * shut down, closed and replaced under the same name by their acceptor
 * every few accepts, so clients reach them by name only and race with
 * the refusals and with a name that is briefly unbound.  Stable
 * acceptors sometimes refuse their backlog; backlogs are 1 to 3, so that
 * connects also fail with EAGAIN.
 *
 * Each client that gets its endpoint writes one hello carrying its id:
 * synchronous ones after polyclient_endpoint, asynchronous ones before
 * the decision (counted only if then accepted).  Acceptors read every
 * endpoint to its end.  Both sides' counts must agree: every hello a
 * client counts arrived exactly once, at the server it chose, and no
 * other id arrived; every accepted endpoint brought a hello or came from
 * a client that closed before writing one.
 */
enum {
	MS_SERVERS = 6,
	MS_CLIENT_THREADS = 4,
	MS_PER_THREAD = 20000,
	MS_MIN = 100,
	MS_MS = 1500,
	MS_CHURN = 40,   /* accepts between two replacements */
	MS_POLL_MS = 20, /* an acceptor's look at the stop flag */
};

enum ms_mode { MS_SYNC, MS_SYNC_REPLY, MS_ASYNC, MS_EARLY, MS_MODES };

struct ms;

struct ms_server {
	struct ms *ms;
	int idx;
	polyserver *srv; /* its acceptor's; stable ones never change */
	char name[64];
	uint64_t rng;
	pthread_t thread;
	long accepted, hellos, empty, replaced, refused;
};

struct ms {
	struct ms_server servers[MS_SERVERS];
	atomic_uchar *seen;  /* [id]: hellos that arrived */
	atomic_uchar *where; /* [id]: 1 + the server it arrived at */
	atomic_int stop;
	int64_t deadline;
	pthread_barrier_t start;
	/* Per client thread, what its clients saw. */
	struct {
		long count, delivered, refused, again, early, unbound;
		uint64_t rng;
		pthread_t thread;
	} th[MS_CLIENT_THREADS];
	unsigned char *chosen;    /* [id]: 1 + the server chosen */
	unsigned char *delivered; /* [id]: its hello is owed */
};

#define MS_ID(t, i) ((long)(t)*MS_PER_THREAD + (i))

static polyserver *
ms_new_server(struct ms_server *s)
{
	polyserver *srv = polyserver_create();

	if (srv == NULL ||
	    polyserver_set_backlog(srv, 1 + (size_t)s->idx % 3) != 0 ||
	    polyserver_bind(srv, s->name) != 0) {
		fail_note("server %d: create or bind: %s", s->idx,
		          strerror(errno));
		polyserver_close(srv);
		return NULL;
	}
	return srv;
}

/* Reads an accepted endpoint to its end, and closes it. */
static void
ms_serve(struct ms_server *s, polyendpoint *ep)
{
	struct ms *ms = s->ms;
	bool hello = false;
	void *m;
	int r;

	while ((r = polypipe_read(ep->rd, &m, LONG_MS)) == 1) {
		long id = (long)MSGVAL(m);

		if (id < 0 || id >= MS_ID(MS_CLIENT_THREADS, 0) || hello) {
			fail_note("server %d: unexpected message %ld", s->idx,
			          id);
			break;
		}
		hello = true;
		if (atomic_fetch_add(&ms->seen[id], 1) != 0)
			fail_note("hello %ld arrived twice", id);
		atomic_store(&ms->where[id], (unsigned char)(s->idx + 1));
		s->hellos++;
		/* The answer, which the client may not wait for. */
		(void)polypipe_write(ep->wr, MSG(id + 1), 0);
	}
	if (r < 0)
		fail_note("server %d: read: %s", s->idx, strerror(errno));
	if (!hello)
		s->empty++;
	polyendpoint_close(ep);
}

static void *
ms_acceptor(void *arg)
{
	struct ms_server *s = arg;
	bool churn = s->idx % 2 == 1;
	polyendpoint eps[4];
	long since = 0;
	ssize_t n;
	int r;

	pthread_barrier_wait(&s->ms->start);
	while (!atomic_load(&s->ms->stop)) {
		if (!churn && rng_below(&s->rng, 64) == 0) {
			r = polyserver_refuse(s->srv);
			if (r < 0)
				fail_note("refuse: %s", strerror(errno));
			else
				s->refused += r;
		}
		n = polyserver_accept_many(
		    s->srv, eps, 1 + rng_below(&s->rng, 4), MS_POLL_MS);
		if (n < 0) {
			if (errno != ETIMEDOUT)
				fail_note("server %d: accept: %s", s->idx,
				          strerror(errno));
			continue;
		}
		s->accepted += n;
		for (ssize_t i = 0; i < n; i++)
			ms_serve(s, &eps[i]);
		since += n;
		if (churn && since >= MS_CHURN) {
			/* Refuses the backlog, releases the name. */
			polyserver_close(s->srv);
			s->srv = ms_new_server(s);
			if (s->srv == NULL)
				return NULL;
			s->replaced++;
			since = 0;
		}
	}
	/* The clients are done: nothing is left pending. */
	if (polyserver_pending(s->srv))
		fail_note("server %d: an attempt pending at the end", s->idx);
	polyserver_close(s->srv);
	return NULL;
}

/*
 * Hand-offs through two sets (or blocking reads), one message at a time:
 * thread A writes into pipe P, whose read end is in B's set, and waits on
 * its own set for the answer on pipe Q; B does the reverse.  Each wait is
 * for a rise that the peer makes without any further action from the
 * waiter, so a wait that reaches its limit slept through a rise: the lost
 * wake-up that longer tests hide, since their next rise wakes the waiter
 * anyway.  Random delays before each write (handoff_delay) let the
 * waiter's spin run out, so that rises meet waiters asleep or on their
 * way to sleep; half the rounds give the sets (or the pipes) a
 * descriptor.
 */
#define HO_STALL_MS 5000

struct handoff;

struct handoff_arg {
	struct handoff *h;
	int idx; /* 0: A, 1: B */
};

struct handoff {
	polypipe *rd[2], *wr[2]; /* [0]: A to B, [1]: B to A */
	polyset *set[2];         /* [0]: B's, holds rd[0]; [1]: A's */
	bool use_set;            /* else blocking reads */
	pthread_barrier_t start;
	long trips[2], stalls[2]; /* each written by its thread */
	uint64_t rs;
};

/* Before a hand-off's write: mostly a few short delays, sometimes one of
 * 20 to 100 us, past the peer's spin, so that the write meets a waiter
 * that has gone to sleep, or is on its way there. */
static void
handoff_delay(uint64_t *rng)
{
	struct timespec t0, t;
	long us;

	if (rng_below(rng, 8) != 0) {
		jitter(rng, 16);
		return;
	}
	us = 20 + (long)rng_below(rng, 81);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do
		clock_gettime(CLOCK_MONOTONIC, &t);
	while ((t.tv_sec - t0.tv_sec) * 1000000 +
	           (t.tv_nsec - t0.tv_nsec) / 1000 <
	       us);
}

static void *
handoff_main(void *arg)
{
	struct handoff_arg *a = arg;
	struct handoff *h = a->h;
	bool b = a->idx == 1;
	polyset *mine = h->set[b ? 0 : 1];
	polypipe *in = h->rd[b ? 0 : 1], *out = h->wr[b ? 1 : 0];
	uint64_t rng = rng_seed(h->rs, (uint64_t)a->idx);
	struct polyset_event ev[4];
	struct budget bud;
	ssize_t n;
	void *m;
	long i;
	int r;

	self_tag = a->idx;
	pthread_barrier_wait(&h->start);
	budget_start(&bud, 200, 20000, 1500);
	/* A makes the trips its budget allows, then sends EOF; B answers
	 * until it reads that EOF. */
	for (i = 0; b || budget_more(&bud); i++, bud.done++) {
		if (!b) {
			handoff_delay(&rng);
			if (polypipe_write(out, (void *)(uintptr_t)(i + 1),
			                   0) != 0) {
				fail_note("A: write %ld: %s", i,
				          strerror(errno));
				break;
			}
		}
		if (h->use_set) {
			n = polyset_wait(mine, ev, 1 + rng_below(&rng, 4),
			                 HO_STALL_MS);
			if (n != 1 || ev[0].obj != in) {
				if (n < 0 && errno == ETIMEDOUT)
					h->stalls[a->idx]++;
				fail_note("%c: wait %ld: %zd, %s",
				          b ? 'B' : 'A', i, n,
				          n < 0 ? strerror(errno)
				                : "not the pipe");
				break;
			}
		}
		r = polypipe_read(in, &m, h->use_set ? 0 : HO_STALL_MS);
		if (r < 0 && errno == ETIMEDOUT)
			h->stalls[a->idx]++;
		if (b && r == 0)
			break; /* A's EOF */
		if (r != 1 || (uintptr_t)m != (uintptr_t)(i + 1)) {
			fail_note("%c: read %ld: %d, not message %ld",
			          b ? 'B' : 'A', i, r, i + 1);
			break;
		}
		if (b) {
			handoff_delay(&rng);
			if (polypipe_write(out, m, 0) != 0) {
				fail_note("B: write %ld: %s", i,
				          strerror(errno));
				break;
			}
		}
	}
	h->trips[a->idx] = i;
	if (!b)
		polypipe_write_eof(out);
	return NULL;
}

/* Four rounds: sets without and with a descriptor, or (use_set false)
 * blocking reads on pipes without and with a read descriptor. */
static void
handoff_run(bool use_set)
{
	struct handoff h = { .use_set = use_set };
	struct handoff_arg args[2] = { { &h, 0 }, { &h, 1 } };
	pthread_t t[2];
	long total = 0, stalls = 0;

	stress_begin();
	for (int round = 0; round < 4; round++) {
		for (int k = 0; k < 2; k++) {
			ck_assert_int_eq(
			    polypipe_create(1, &h.rd[k], &h.wr[k]), 0);
			h.set[k] = NULL;
			if (use_set) {
				h.set[k] = polyset_create();
				ck_assert_ptr_nonnull(h.set[k]);
				ck_assert_int_eq(
				    polyset_add(h.set[k], h.rd[k], 0, NULL),
				    0);
			}
			if (round % 2 == 1)
				ck_assert_int_ge(
				    use_set ? polyset_fd(h.set[k])
				            : polypipe_read_fd(h.rd[k]),
				    0);
		}
		h.rs = (uint64_t)round;
		pthread_barrier_init(&h.start, NULL, 2);
		for (int k = 0; k < 2; k++)
			spawn(&t[k], handoff_main, &args[k]);
		for (int k = 0; k < 2; k++)
			join(t[k]);
		pthread_barrier_destroy(&h.start);
		/* B answered every trip of A's, and no more. */
		if (h.trips[1] != h.trips[0])
			fail_note("A made %ld trips, B answered %ld",
			          h.trips[0], h.trips[1]);
		total += h.trips[0];
		stalls += h.stalls[0] + h.stalls[1];
		h.stalls[0] = h.stalls[1] = 0;
		for (int k = 0; k < 2; k++) {
			polyset_close(h.set[k]);
			polypipe_close(h.wr[k]);
			polypipe_close(h.rd[k]);
		}
	}
	report("%s_handoff: %ld round trips, %ld waits past %d ms",
	       use_set ? "set" : "pipe", total, stalls, HO_STALL_MS);
	assert_no_failures();
}

START_TEST(test_stress_set_handoff)
{
	handoff_run(true);
}
END_TEST

START_TEST(test_stress_pipe_handoff)
{
	handoff_run(false);
}
END_TEST

/* One client: connects to server k by handle or name, then acts as its
 * mode says. */
static void
ms_client(struct ms *ms, int t, long i)
{
	long id = MS_ID(t, i);
	uint64_t *rng = &ms->th[t].rng;
	int k = (int)rng_below(rng, MS_SERVERS);
	enum ms_mode mode = (enum ms_mode)rng_below(rng, MS_MODES);
	struct ms_server *s = &ms->servers[k];
	bool by_name = k % 2 == 1 || rng_coin(rng);
	polyendpoint ep;
	polyclient *cl = polyclient_create(2);
	void *m;
	int r;

	if (cl == NULL) {
		fail_note("polyclient_create: %s", strerror(errno));
		return;
	}
	ms->chosen[id] = (unsigned char)(k + 1);
	r = by_name ? polyclient_connect_name(cl, s->name)
	            : polyclient_connect(cl, s->srv);
	if (r != 0) {
		if (errno == EAGAIN)
			ms->th[t].again++;
		else if (errno == ECONNREFUSED)
			ms->th[t].unbound++;
		else
			fail_note("client %ld: connect: %s", id,
			          strerror(errno));
		polyclient_close(cl);
		return;
	}
	switch (mode) {
	case MS_EARLY:
		jitter(rng, 4);
		ms->th[t].early++;
		break;
	case MS_ASYNC:
		if (polyclient_endpoint_async(cl, &ep) != 0) {
			if (errno != ECONNREFUSED)
				fail_note("client %ld: endpoint_async: %s", id,
				          strerror(errno));
			ms->th[t].refused++;
			break;
		}
		r = polypipe_write(ep.wr, MSG(id), 0);
		if (polyclient_endpoint(cl, &ep, LONG_MS) == 0) {
			if (r != 0)
				fail_note("client %ld: accepted, but the "
				          "write failed: %s",
				          id, strerror(errno));
			ms->delivered[id] = 1;
			ms->th[t].delivered++;
		} else if (errno == ECONNREFUSED) {
			ms->th[t].refused++;
		} else {
			fail_note("client %ld: endpoint: %s", id,
			          strerror(errno));
		}
		break;
	default:
		if (polyclient_endpoint(cl, &ep, LONG_MS) != 0) {
			if (errno != ECONNREFUSED)
				fail_note("client %ld: endpoint: %s", id,
				          strerror(errno));
			ms->th[t].refused++;
			break;
		}
		if (polypipe_write(ep.wr, MSG(id), 0) != 0) {
			fail_note("client %ld: write: %s", id,
			          strerror(errno));
			break;
		}
		ms->delivered[id] = 1;
		ms->th[t].delivered++;
		if (mode == MS_SYNC_REPLY &&
		    (polypipe_read(ep.rd, &m, LONG_MS) != 1 ||
		     MSGVAL(m) != (uintptr_t)id + 1))
			fail_note("client %ld: no answer", id);
		break;
	}
	polyclient_close(cl);
}

struct ms_arg {
	struct ms *ms;
	int t;
};

static void *
ms_client_thread(void *arg)
{
	struct ms_arg *a = arg;
	struct ms *ms = a->ms;
	long i;

	self_tag = a->t;
	pthread_barrier_wait(&ms->start);
	for (i = 0;
	     i < MS_PER_THREAD && (i < MS_MIN || now_ms() < ms->deadline); i++)
		ms_client(ms, a->t, i);
	ms->th[a->t].count = i;
	return NULL;
}

START_TEST(test_stress_connect_many_servers)
{
	size_t ids = (size_t)MS_ID(MS_CLIENT_THREADS, 0);
	struct ms *ms = calloc(1, sizeof *ms);
	struct ms_arg args[MS_CLIENT_THREADS];
	long accepted = 0, hellos = 0, empty = 0, delivered = 0;
	long early = 0, refused = 0, again = 0, unbound = 0;
	long replaced = 0, srv_refused = 0, clients = 0;

	stress_begin();
	ck_assert_ptr_nonnull(ms);
	ms->seen = calloc(ids, sizeof *ms->seen);
	ms->where = calloc(ids, sizeof *ms->where);
	ms->chosen = calloc(ids, 1);
	ms->delivered = calloc(ids, 1);
	ck_assert(ms->seen && ms->where && ms->chosen && ms->delivered);
	ck_assert_int_eq(
	    pthread_barrier_init(&ms->start, NULL,
	                         MS_SERVERS + MS_CLIENT_THREADS + 1),
	    0);
	for (int k = 0; k < MS_SERVERS; k++) {
		struct ms_server *s = &ms->servers[k];

		s->ms = ms;
		s->idx = k;
		s->rng = rng_seed(14, (uint64_t)k);
		snprintf(s->name, sizeof s->name, "check_stress/%ld/many/%d",
		         (long)getpid(), k);
		s->srv = ms_new_server(s);
		ck_assert_ptr_nonnull(s->srv);
		spawn(&s->thread, ms_acceptor, s);
	}
	for (int t = 0; t < MS_CLIENT_THREADS; t++) {
		ms->th[t].rng = rng_seed(14, 100 + (uint64_t)t);
		args[t].ms = ms;
		args[t].t = t;
		spawn(&ms->th[t].thread, ms_client_thread, &args[t]);
	}
	ms->deadline = now_ms() + MS_MS;
	pthread_barrier_wait(&ms->start);
	for (int t = 0; t < MS_CLIENT_THREADS; t++)
		join(ms->th[t].thread);
	atomic_store(&ms->stop, 1);
	for (int k = 0; k < MS_SERVERS; k++)
		join(ms->servers[k].thread);
	pthread_barrier_destroy(&ms->start);
	assert_no_failures();

	for (int k = 0; k < MS_SERVERS; k++) {
		struct ms_server *s = &ms->servers[k];

		accepted += s->accepted;
		hellos += s->hellos;
		empty += s->empty;
		replaced += s->replaced;
		srv_refused += s->refused;
	}
	for (int t = 0; t < MS_CLIENT_THREADS; t++) {
		ck_assert_int_ge(ms->th[t].count, MS_MIN);
		clients += ms->th[t].count;
		delivered += ms->th[t].delivered;
		early += ms->th[t].early;
		refused += ms->th[t].refused;
		again += ms->th[t].again;
		unbound += ms->th[t].unbound;
		for (long i = 0; i < ms->th[t].count; i++) {
			long id = MS_ID(t, i);
			int seen = atomic_load(&ms->seen[id]);

			/* Owed: arrived once, where it was sent.  Not owed:
			 * never written, or destroyed with its refusal. */
			ck_assert_msg(seen == ms->delivered[id],
			              "client %ld: hello seen %d times, owed "
			              "%d (seed %llu)",
			              id, seen, ms->delivered[id],
			              (unsigned long long)seed);
			if (seen)
				ck_assert_int_eq(atomic_load(&ms->where[id]),
				                 ms->chosen[id]);
		}
	}
	ck_assert_int_eq(hellos, delivered);
	ck_assert_int_eq(accepted, hellos + empty);
	/* An endpoint without a hello: its client closed first. */
	ck_assert_int_le(empty, early);
	report("connect_many_servers: %ld clients, %ld accepted (%ld "
	       "closed early), %ld refused, %ld EAGAIN, %ld refused at once; "
	       "%ld replacements, %ld refused by refuse",
	       clients, accepted, empty, refused, again, unbound, replaced,
	       srv_refused);
	free(ms->seen);
	free(ms->where);
	free(ms->chosen);
	free(ms->delivered);
	free(ms);
}
END_TEST

/* --- a watched pipe settles exact ------------------------------------ */

/*
 * Once the traffic stops, a watched pipe's descriptors say exactly what a
 * call would do, whichever thread moved last.  Two writers and two
 * blocking readers stream through a pipe of capacity 4 whose read and
 * write descriptors were taken, so that the readers empty it and the
 * writers fill it again and again: each such call lingers for the other
 * side's next moves (psync_linger) and lowers the descriptor only if they
 * do not come.  A linger that returns on a move another thread then
 * undoes, or a lower lost between two lingers, would leave a descriptor
 * readable on an empty pipe.  After each round, with every thread
 * joined: the pipe is empty, the read descriptor says so and the write
 * descriptor says a write would not wait; filled from this thread, the
 * write descriptor says full and the read one not empty.  Every message
 * is read exactly once.
 */
enum { WS_ROUNDS = 40, WS_MSGS = 3000, WS_SIDES = 2, WS_CAP = 4 };

struct ws {
	polypipe *rd, *wr;
	_Atomic long left; /* messages not read yet */
	_Atomic uint8_t *seen;
	pthread_barrier_t start;
	uint64_t seed;
};

struct ws_arg {
	struct ws *ws;
	int idx; /* writers 0 .. WS_SIDES - 1, then readers */
};

static void *
ws_main(void *arg)
{
	struct ws_arg *a = arg;
	struct ws *ws = a->ws;
	uint64_t rng = rng_seed(ws->seed, (uint64_t)a->idx);
	uintptr_t id;
	void *m;
	long i;
	int r;

	self_tag = a->idx;
	pthread_barrier_wait(&ws->start);
	if (a->idx < WS_SIDES) {
		for (i = 0; i < WS_MSGS; i++) {
			if (rng_below(&rng, 64) == 0)
				jitter(&rng, 16);
			id = (uintptr_t)(a->idx * WS_MSGS + i);
			if (polypipe_write(ws->wr, (void *)id, LONG_MS) != 0) {
				fail_note("writer %d: write %ld: %s", a->idx,
				          i, strerror(errno));
				break;
			}
		}
		return NULL;
	}
	/* Readers: until every message is read; a read that times out
	 * looks again whether another reader took the last ones. */
	while (atomic_load_explicit(&ws->left, memory_order_relaxed) > 0) {
		if (rng_below(&rng, 64) == 0)
			jitter(&rng, 16);
		r = polypipe_read(ws->rd, &m, 20);
		if (r < 0 && errno == ETIMEDOUT)
			continue;
		if (r != 1) {
			fail_note("reader %d: read: %d, %s", a->idx, r,
			          r < 0 ? strerror(errno) : "end of stream");
			break;
		}
		id = (uintptr_t)m;
		if (id >= WS_SIDES * WS_MSGS ||
		    atomic_fetch_add(&ws->seen[id], 1) != 0) {
			fail_note("reader %d: message %ju read twice or "
			          "unknown",
			          a->idx, (uintmax_t)id);
			break;
		}
		atomic_fetch_sub_explicit(&ws->left, 1, memory_order_relaxed);
	}
	return NULL;
}

START_TEST(test_stress_watched_settles)
{
	struct ws ws = { 0 };
	struct ws_arg args[2 * WS_SIDES];
	pthread_t t[2 * WS_SIDES];
	int rfd, wfd, k, round, bad = 0;
	void *m;

	stress_begin();
	ws.seen = calloc(WS_SIDES * WS_MSGS, sizeof *ws.seen);
	ck_assert_ptr_nonnull(ws.seen);
	for (round = 0; round < WS_ROUNDS; round++) {
		ck_assert_int_eq(polypipe_create(WS_CAP, &ws.rd, &ws.wr), 0);
		rfd = polypipe_read_fd(ws.rd);
		wfd = polypipe_write_fd(ws.wr);
		ck_assert_int_ge(rfd, 0);
		ck_assert_int_ge(wfd, 0);
		memset((void *)ws.seen, 0, WS_SIDES * WS_MSGS);
		atomic_store(&ws.left, WS_SIDES * WS_MSGS);
		ws.seed = (uint64_t)round;
		pthread_barrier_init(&ws.start, NULL, 2 * WS_SIDES);
		for (k = 0; k < 2 * WS_SIDES; k++) {
			args[k] = (struct ws_arg){ &ws, k };
			spawn(&t[k], ws_main, &args[k]);
		}
		for (k = 0; k < 2 * WS_SIDES; k++)
			join(t[k]);
		pthread_barrier_destroy(&ws.start);
		/* Nobody acts on the pipe now: the descriptors are exact. */
		if (polypipe_length(ws.rd) != 0 || fd_readable(rfd) ||
		    !fd_readable(wfd)) {
			fail_note("round %d: empty pipe, %zu buffered: read "
			          "fd %d, write fd %d",
			          round, polypipe_length(ws.rd),
			          fd_readable(rfd), fd_readable(wfd));
			bad++;
		}
		for (k = 0; k < WS_CAP; k++)
			ck_assert_int_eq(polypipe_write(ws.wr, MSG(k), 0), 0);
		if (fd_readable(wfd) || !fd_readable(rfd)) {
			fail_note("round %d: full pipe: read fd %d, write fd "
			          "%d",
			          round, fd_readable(rfd), fd_readable(wfd));
			bad++;
		}
		for (k = 0; k < WS_CAP; k++)
			ck_assert_int_eq(polypipe_read(ws.rd, &m, 0), 1);
		if (fd_readable(rfd) || !fd_readable(wfd)) {
			fail_note("round %d: emptied from here: read fd %d, "
			          "write fd %d",
			          round, fd_readable(rfd), fd_readable(wfd));
			bad++;
		}
		polypipe_close(ws.wr);
		polypipe_close(ws.rd);
		if (bad > 0)
			break;
	}
	report("watched_settles: %d rounds of %d messages through a pipe "
	       "of %d, %d threads",
	       round, WS_SIDES * WS_MSGS, WS_CAP, 2 * WS_SIDES);
	free((void *)ws.seen);
	assert_no_failures();
}
END_TEST

/* --- names bound and released under connects -------------------------- */

/*
 * Each of RB_NAMES names has an owner thread that binds a new server
 * under it, accepts what comes for a few calls (waiting 0 or 1 ms, so
 * that some connects are handed to a waiting accept), and closes it,
 * which refuses the rest and releases the name; client threads connect
 * by name meanwhile.  A connect finds the name bound or fails with
 * ECONNREFUSED; an attempt queued is accepted or refused, never lost;
 * the accepts the owners count equal the connections the clients saw
 * accepted.  A lookup that let go of the name's lock before queuing
 * could queue on a server being freed.  Half the servers have an accept
 * notifier, called by connecting threads as the owner closes the
 * server: the call must keep the server alive.
 */
enum { RB_NAMES = 2, RB_CLIENTS = 2, RB_MS = 1000, RB_CALLS = 8 };

struct rebind {
	int64_t deadline;
	atomic_long servers;      /* bound */
	atomic_long srv_accepted; /* connections accepted by the owners */
	atomic_long cl_accepted;  /* connections the clients saw accepted */
	atomic_long cl_refused;   /* attempts queued, then refused */
	atomic_long unbound;      /* connects that found no server */
	atomic_long notified;     /* accept notifier calls */
	pthread_barrier_t start;
};

struct rebind_arg {
	struct rebind *rb;
	int idx;
	uint64_t rng;
	pthread_t thread;
};

static void
rebind_name(char *buf, size_t size, unsigned k)
{
	snprintf(buf, size, "stress-churn-%u", k);
}

static void
rebind_note(void *arg)
{
	atomic_fetch_add(&((struct rebind *)arg)->notified, 1);
}

static void *
rebind_owner(void *arg)
{
	struct rebind_arg *a = arg;
	struct rebind *rb = a->rb;
	polyendpoint eps[4];
	polyserver *srv;
	char name[32];
	ssize_t n;

	self_tag = 300 + a->idx;
	rebind_name(name, sizeof name, (unsigned)a->idx);
	pthread_barrier_wait(&rb->start);
	while (now_ms() < rb->deadline) {
		srv = polyserver_create();
		if (srv == NULL || polyserver_bind(srv, name) != 0) {
			fail_note("owner %d: bind: %s", a->idx,
			          strerror(errno));
			polyserver_close(srv);
			break;
		}
		atomic_fetch_add(&rb->servers, 1);
		if (rng_coin(&a->rng) &&
		    polyserver_set_accept_notify(srv, rebind_note, rb) != 0)
			fail_note("owner %d: notify: %s", a->idx,
			          strerror(errno));
		for (unsigned i = rng_below(&a->rng, RB_CALLS); i > 0; i--) {
			n = polyserver_accept_many(srv, eps, 4,
			                           (int)rng_below(&a->rng, 2));
			if (n < 0) {
				if (errno != EAGAIN && errno != ETIMEDOUT)
					fail_note("owner %d: accept: %s",
					          a->idx, strerror(errno));
				continue;
			}
			atomic_fetch_add(&rb->srv_accepted, n);
			for (ssize_t j = 0; j < n; j++)
				polyendpoint_close(&eps[j]);
		}
		polyserver_close(srv);
	}
	return NULL;
}

static void *
rebind_client(void *arg)
{
	struct rebind_arg *a = arg;
	struct rebind *rb = a->rb;
	polyendpoint ep;
	polyclient *cl;
	char name[32];

	self_tag = 310 + a->idx;
	pthread_barrier_wait(&rb->start);
	while (now_ms() < rb->deadline) {
		cl = polyclient_create(1);
		if (cl == NULL) {
			fail_note("client: create: %s", strerror(errno));
			break;
		}
		rebind_name(name, sizeof name, rng_below(&a->rng, RB_NAMES));
		if (polyclient_connect_name(cl, name) != 0) {
			if (errno == ECONNREFUSED)
				atomic_fetch_add(&rb->unbound, 1);
			else
				fail_note("client: connect: %s",
				          strerror(errno));
		} else if (polyclient_endpoint(cl, &ep, LONG_MS) == 0) {
			atomic_fetch_add(&rb->cl_accepted, 1);
		} else if (errno == ECONNREFUSED) {
			atomic_fetch_add(&rb->cl_refused, 1);
		} else {
			fail_note("client: endpoint: %s", strerror(errno));
		}
		polyclient_close(cl);
	}
	return NULL;
}

START_TEST(test_stress_connect_name_churn)
{
	struct rebind rb = { 0 };
	struct rebind_arg args[RB_NAMES + RB_CLIENTS];
	int k;

	stress_begin();
	ck_assert_int_eq(
	    pthread_barrier_init(&rb.start, NULL, RB_NAMES + RB_CLIENTS + 1),
	    0);
	rb.deadline = now_ms() + RB_MS;
	for (k = 0; k < RB_NAMES + RB_CLIENTS; k++) {
		args[k] =
		    (struct rebind_arg){ .rb = &rb,
			                 .idx =
			                     k < RB_NAMES ? k : k - RB_NAMES,
			                 .rng = rng_seed(15, (uint64_t)k) };
		spawn(&args[k].thread,
		      k < RB_NAMES ? rebind_owner : rebind_client, &args[k]);
	}
	pthread_barrier_wait(&rb.start);
	for (k = 0; k < RB_NAMES + RB_CLIENTS; k++)
		join(args[k].thread);
	pthread_barrier_destroy(&rb.start);
	report("connect_name_churn: %ld servers bound, %ld accepted, %ld "
	       "refused, %ld connects found no server, %ld notifier calls",
	       atomic_load(&rb.servers), atomic_load(&rb.cl_accepted),
	       atomic_load(&rb.cl_refused), atomic_load(&rb.unbound),
	       atomic_load(&rb.notified));
	ck_assert_int_eq(atomic_load(&rb.srv_accepted),
	                 atomic_load(&rb.cl_accepted));
	ck_assert_int_gt(atomic_load(&rb.servers), 0);
	assert_no_failures();
}
END_TEST

/* --- the suite --------------------------------------------------------- */

Suite *
stress_suite(void)
{
	Suite *s = suite_create("stress");
	TCase *tc;

	tc = new_tcase(s, "mpmc", 60);
	tcase_add_test(tc, test_stress_mpmc_single);
	tcase_add_test(tc, test_stress_mpmc_batch);
	tcase_add_test(tc, test_stress_mpmc_stream);
	tcase_add_test(tc, test_stress_watched_settles);

	tc = new_tcase(s, "teardown", 60);
	tcase_add_test(tc, test_stress_teardown_close_write);
	tcase_add_test(tc, test_stress_teardown_close_read);
	tcase_add_test(tc, test_stress_teardown_close_both);
	tcase_add_test(tc, test_stress_teardown_eof);
	tcase_add_test(tc, test_stress_teardown_error);

	tc = new_tcase(s, "notify", 60);
	tcase_add_test(tc, test_stress_notify_pipe);
	tcase_add_test(tc, test_stress_notify_accept);
	tcase_add_test(tc, test_stress_notify_connect);

	tc = new_tcase(s, "connect", 60);
	tcase_add_test(tc, test_stress_connect_storm);
	tcase_add_test(tc, test_stress_connect_withdrawn);

	tc = new_tcase(s, "set", 60);
	tcase_add_test(tc, test_stress_set_fan_in);
	tcase_add_test(tc, test_stress_set_oneshot_pool);
	tcase_add_test(tc, test_stress_set_churn);
	tcase_add_test(tc, test_stress_set_mode_changes);
	tcase_add_test(tc, test_stress_set_handoff);
	tcase_add_test(tc, test_stress_pipe_handoff);

	tc = new_tcase(s, "connect-many", 60);
	tcase_add_test(tc, test_stress_connect_many_servers);
	tcase_add_test(tc, test_stress_connect_name_churn);
	return s;
}
