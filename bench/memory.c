/*
 * memory.c - what a polypipe costs in memory, measured with a counting
 * allocator.
 *
 * The benchmark defines malloc and its relatives; the dynamic linker
 * binds the library's calls to them, and they hand on to glibc's own
 * (__libc_malloc and friends).  Only the thread that switched counting on
 * is counted, so the threads of ZeroMQ and nng, or a stray free of
 * memory allocated earlier, cannot move the figures.  Sizes are
 * malloc_usable_size: what the process actually gives up, rounding
 * included.  Sanitizers replace malloc themselves: those builds skip
 * this.  The same allocator measures a set of many idle pipes, with the
 * descriptors it opens (none, if it keeps its word).
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <polysocket/polyset.h>

#include "bench/bench.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define NO_COUNTING 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||    \
    __has_feature(memory_sanitizer)
#define NO_COUNTING 1
#endif
#endif

#ifndef NO_COUNTING
static _Thread_local bool counting;
static _Thread_local long live;            /* usable bytes held now */
static _Thread_local long requested;       /* bytes asked for, frees ignored */
static _Thread_local unsigned long allocs; /* calls that allocated */

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);
extern void __libc_free(void *p);

static void *
counted(void *p, size_t n)
{
	if (counting && p != NULL) {
		live += (long)malloc_usable_size(p);
		requested += (long)n;
		allocs++;
	}
	return p;
}

void *
malloc(size_t n)
{
	return counted(__libc_malloc(n), n);
}

void *
calloc(size_t n, size_t size)
{
	return counted(__libc_calloc(n, size), n * size);
}

void *
realloc(void *p, size_t n)
{
	long old = counting && p != NULL ? (long)malloc_usable_size(p) : 0;
	void *q = __libc_realloc(p, n);

	if (counting && (q != NULL || n == 0)) {
		live -= old; /* glibc frees p for n == 0 */
		counted(q, n);
	}
	return q;
}

/* glibc's reallocarray would reach its realloc without passing here. */
void *
reallocarray(void *p, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, n * size);
}

/* A library that aligns its state to cache lines must be counted too. */
void *
memalign(size_t align, size_t n)
{
	return counted(__libc_memalign(align, n), n);
}

void *
aligned_alloc(size_t align, size_t n)
{
	return memalign(align, n);
}

int
posix_memalign(void **pp, size_t align, size_t n)
{
	void *p;

	if (align < sizeof(void *) || (align & (align - 1)) != 0)
		return EINVAL;
	p = memalign(align, n);
	if (p == NULL)
		return ENOMEM;
	*pp = p;
	return 0;
}

void
free(void *p)
{
	if (counting && p != NULL)
		live -= (long)malloc_usable_size(p);
	__libc_free(p);
}
#endif /* NO_COUNTING */

/* Counting on (from zero), what is held, counting off. */
#ifdef NO_COUNTING
static void
count_begin(bool from_zero)
{
	(void)from_zero;
}

static long
count_live(void)
{
	return 0;
}

static void
count_end(void)
{
}
#else
static void
count_begin(bool from_zero)
{
	if (from_zero)
		live = requested = 0;
	counting = true;
}

static long
count_live(void)
{
	return live;
}

static void
count_end(void)
{
	counting = false;
}
#endif

/*
 * A daemon's idle connections: pipes pipes, each read end in one set,
 * nothing buffered.  Counts the bytes (the set's included, spread over
 * the pipes), and the descriptors open before and after: a membership
 * must take none.
 */
void
scale_measure(struct scale_report *r, size_t pipes, bool print)
{
	polypipe **rd = malloc(pipes * sizeof *rd);
	polypipe **wr = malloc(pipes * sizeof *wr);
	struct polyset_event ev;
	long pipe_bytes, all;
	uint64_t t0, t1;
	polyset *set;
	size_t i;

	if (rd == NULL || wr == NULL)
		bench_die("out of memory");
	memset(r, 0, sizeof *r);
#ifndef NO_COUNTING
	r->counted = true;
#endif
	r->pipes = pipes;
	r->fds_before = count_fds();
	count_begin(true);
	for (i = 0; i < pipes; i++)
		if (polypipe_create(FANIN_CAPACITY, &rd[i], &wr[i]) < 0)
			bench_die("polypipe_create: %s", strerror(errno));
	pipe_bytes = count_live();
	set = polyset_create();
	if (set == NULL)
		bench_die("polyset_create: %s", strerror(errno));
	t0 = now_ns();
	for (i = 0; i < pipes; i++)
		if (polyset_add(set, rd[i], 0, NULL) < 0)
			bench_die("polyset_add: %s", strerror(errno));
	t1 = now_ns();
	all = count_live();
	count_end();
	r->fds_after = count_fds();
	/* All idle: nothing to report, and nothing to wait for. */
	if (polyset_wait(set, &ev, 1, 0) != -1 || errno != EAGAIN)
		bench_error("scale: polyset_wait found an idle member ready");
	count_begin(false);
	polyset_close(set);
	for (i = 0; i < pipes; i++) {
		polypipe_close(wr[i]);
		polypipe_close(rd[i]);
	}
	r->leaked = count_live();
	count_end();
	free(wr);
	free(rd);
	r->per_pipe = (double)all / (double)pipes;
	r->pipe_only = (double)pipe_bytes / (double)pipes;
	r->add_ns = (double)(t1 - t0) / (double)pipes;
	if (!print)
		return;
	printf("scale: %zu idle pipes (capacity %d), each read end in one "
	       "set:\n",
	       pipes, FANIN_CAPACITY);
	if (r->counted)
		printf("  %.1f bytes per pipe, set and membership included "
		       "(%.1f for the pipe,\n  %.1f for the membership); "
		       "after closing all: %ld\n",
		       r->per_pipe, r->pipe_only, r->per_pipe - r->pipe_only,
		       r->leaked);
	else
		printf("  bytes not measured (a sanitizer owns malloc)\n");
	printf("  descriptors open: %d before, %d with every pipe in the "
	       "set; polyset_add:\n  %.0f ns per member\n",
	       r->fds_before, r->fds_after, r->add_ns);
}

#ifdef NO_COUNTING
void
memory_measure(struct mem_report *r, bool print)
{
	memset(r, 0, sizeof *r);
	if (print)
		printf("memory: not measured (a sanitizer owns malloc)\n");
}
#else
/* The buffered counts tried: just above each doubling is where a ring
 * that grows by doubling holds the most slots per message. */
static const size_t sizes[] = { 0, 1, 2, 9, 17, 65, 257, 513, 1000, 1024 };
#define NSIZES (sizeof sizes / sizeof sizes[0])

/* The bound: 256 bytes per pipe plus 8 per buffered message. */
static long
limit(size_t n)
{
	return 256 + 8 * (long)n;
}

/*
 * Bytes held by a pipe of the given capacity with n messages buffered;
 * *req gets the bytes its creation asked for, *drained what it holds
 * once they are read again, *leaked what is left after closing both ends.
 */
static long
pipe_bytes(size_t capacity, size_t n, long *req, long *drained, long *leaked)
{
	polypipe *rd, *wr;
	long held;
	void *m;
	size_t i;

	live = requested = 0;
	counting = true;
	if (polypipe_create(capacity, &rd, &wr) < 0)
		bench_die("polypipe_create: %s", strerror(errno));
	*req = requested;
	for (i = 0; i < n; i++)
		if (polypipe_write(wr, (void *)i, 0) < 0)
			bench_die("polypipe_write: %s", strerror(errno));
	held = live;
	for (i = 0; i < n; i++)
		if (polypipe_read(rd, &m, 0) != 1 || m != (void *)i)
			bench_error("memory: message %zu lost", i);
	*drained = live;
	polypipe_close(wr);
	polypipe_close(rd);
	*leaked = live;
	counting = false;
	return held;
}

static void
print_sizes(const char *label, const long *v)
{
	size_t i;

	printf("  %-16s", label);
	for (i = 0; i < NSIZES; i++)
		printf("%6ld", v[i]);
	printf("\n");
}

void
memory_measure(struct mem_report *r, bool print)
{
	static const size_t caps[2] = { CAPACITY, POLYPIPE_UNBOUNDED };
	long held[2][NSIZES], lim[NSIZES], ns[NSIZES], drained = 0, leaked;
	long req = 0;
	size_t c, i;

	memset(r, 0, sizeof *r);
	r->counted = true;
	r->worst_excess = LONG_MIN;
	for (c = 0; c < 2; c++) {
		for (i = 0; i < NSIZES; i++) {
			held[c][i] = pipe_bytes(caps[c], sizes[i], &req,
			                        &drained, &leaked);
			if (held[c][i] - limit(sizes[i]) > r->worst_excess) {
				r->worst_excess = held[c][i] - limit(sizes[i]);
				r->worst_n = sizes[i];
				r->worst_held = held[c][i];
			}
			if (leaked > r->leaked)
				r->leaked = leaked;
		}
	}
	r->idle = held[0][0];
	r->idle_req = req; /* the same for every pipe */
	r->one_bounded = held[0][1];
	r->one_unbounded = held[1][1];
	if (!print)
		return;
	for (i = 0; i < NSIZES; i++) {
		ns[i] = (long)sizes[i];
		lim[i] = limit(sizes[i]);
	}
	printf("memory per pipe, bytes (malloc_usable_size of what the "
	       "library allocates;\n  its eventfds, if asked for, are "
	       "kernel memory, not counted here):\n");
	print_sizes("n buffered", ns);
	print_sizes("capacity 1024", held[0]);
	print_sizes("unbounded", held[1]);
	print_sizes("limit 256 + 8n", lim);
	printf("  idle: %ld bytes (%ld requested); after draining %zu "
	       "messages: %ld;\n  after closing both ends: %ld\n",
	       r->idle, r->idle_req, sizes[NSIZES - 1], drained, r->leaked);
}
#endif /* NO_COUNTING */

/* For connect.c: the same counting, with the calls counted too. */
bool
bench_count_available(void)
{
#ifdef NO_COUNTING
	return false;
#else
	return true;
#endif
}

void
bench_count_begin(void)
{
#ifndef NO_COUNTING
	allocs = 0;
#endif
	count_begin(true);
}

long
bench_count_live(void)
{
	return count_live();
}

unsigned long
bench_count_allocs(void)
{
#ifdef NO_COUNTING
	return 0;
#else
	return allocs;
#endif
}

void
bench_count_end(void)
{
	count_end();
}
