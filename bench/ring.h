/*
 * ring.h - the two rings the benchmark compares polypipe with.
 *
 * spsc: a lock-free single-producer single-consumer ring that waits by
 * spinning.  It is the physical limit of the table: one cache line
 * handed between two cores per message (fewer when batched), no lock, no
 * system call.
 *
 * cvring: a mutex, two condition variables and a fixed ring, what a user
 * writes by hand when no library is at hand.  It is the baseline every
 * row is also compared with.
 */
#ifndef BENCH_RING_H
#define BENCH_RING_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#define CACHE_LINE 64

static inline void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ __volatile__("pause");
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/*
 * Spins; after a while gives the CPU away, because with both threads on
 * one CPU the peer cannot run while we spin, and on a loaded machine it
 * may have been preempted.  On two idle CPUs a message arrives well
 * within the spin.
 */
#define SPSC_SPINS 1024

static inline void
spsc_pause(unsigned *spins)
{
	if (++*spins < SPSC_SPINS) {
		cpu_relax();
	} else {
		*spins = 0;
		sched_yield();
	}
}

/* Each index on its own line, next to the copy of the other index its
 * owner caches, so the lines move only when a cached copy runs out. */
struct spsc {
	_Alignas(CACHE_LINE) _Atomic size_t tail; /* written by producer */
	size_t head_seen;                         /* producer's copy */
	_Alignas(CACHE_LINE) _Atomic size_t head; /* written by consumer */
	size_t tail_seen;                         /* consumer's copy */
	_Alignas(CACHE_LINE) size_t mask;
	void **slot;
};

static inline struct spsc *
spsc_new(size_t capacity) /* a power of two */
{
	struct spsc *r = aligned_alloc(CACHE_LINE, sizeof *r);

	if (r == NULL)
		return NULL;
	r->slot = malloc(capacity * sizeof *r->slot);
	if (r->slot == NULL) {
		free(r);
		return NULL;
	}
	atomic_init(&r->tail, 0);
	atomic_init(&r->head, 0);
	r->head_seen = r->tail_seen = 0;
	r->mask = capacity - 1;
	return r;
}

static inline void
spsc_free(struct spsc *r)
{
	free(r->slot);
	free(r);
}

/* Appends up to n, at least 1, and returns how many. */
static inline size_t
spsc_push(struct spsc *r, void *const *v, size_t n)
{
	size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	size_t room = r->mask + 1 - (tail - r->head_seen);
	unsigned spins = 0;
	size_t i;

	while (room == 0) {
		spsc_pause(&spins);
		r->head_seen =
		    atomic_load_explicit(&r->head, memory_order_acquire);
		room = r->mask + 1 - (tail - r->head_seen);
	}
	if (n > room)
		n = room;
	for (i = 0; i < n; i++)
		r->slot[(tail + i) & r->mask] = v[i];
	atomic_store_explicit(&r->tail, tail + n, memory_order_release);
	return n;
}

/* Takes 1 to max and returns how many. */
static inline size_t
spsc_pop(struct spsc *r, void **v, size_t max)
{
	size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	size_t avail = r->tail_seen - head;
	unsigned spins = 0;
	size_t i;

	while (avail == 0) {
		spsc_pause(&spins);
		r->tail_seen =
		    atomic_load_explicit(&r->tail, memory_order_acquire);
		avail = r->tail_seen - head;
	}
	if (max > avail)
		max = avail;
	for (i = 0; i < max; i++)
		v[i] = r->slot[(head + i) & r->mask];
	atomic_store_explicit(&r->head, head + max, memory_order_release);
	return max;
}

/*
 * The hand-rolled ring, written the way such code usually is: signal on
 * every change (glibc makes a signal without waiters cheap), wait in a
 * loop for spurious wake-ups.  Batched calls take the lock once.
 */
struct cvring {
	pthread_mutex_t lock;
	pthread_cond_t not_empty;
	pthread_cond_t not_full;
	size_t head, len, cap;
	void **slot;
};

static inline struct cvring *
cvring_new(size_t capacity)
{
	struct cvring *r = malloc(sizeof *r);

	if (r == NULL)
		return NULL;
	r->slot = malloc(capacity * sizeof *r->slot);
	if (r->slot == NULL) {
		free(r);
		return NULL;
	}
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->not_empty, NULL);
	pthread_cond_init(&r->not_full, NULL);
	r->head = r->len = 0;
	r->cap = capacity;
	return r;
}

static inline void
cvring_free(struct cvring *r)
{
	pthread_cond_destroy(&r->not_full);
	pthread_cond_destroy(&r->not_empty);
	pthread_mutex_destroy(&r->lock);
	free(r->slot);
	free(r);
}

/* No division per message: the baseline should not lose on that. */
static inline size_t
cvring_wrap(const struct cvring *r, size_t i)
{
	return i >= r->cap ? i - r->cap : i;
}

static inline size_t
cvring_push(struct cvring *r, void *const *v, size_t n)
{
	size_t i, tail;

	pthread_mutex_lock(&r->lock);
	while (r->len == r->cap)
		pthread_cond_wait(&r->not_full, &r->lock);
	if (n > r->cap - r->len)
		n = r->cap - r->len;
	tail = cvring_wrap(r, r->head + r->len);
	for (i = 0; i < n; i++) {
		r->slot[tail] = v[i];
		tail = cvring_wrap(r, tail + 1);
	}
	r->len += n;
	if (n == 1)
		pthread_cond_signal(&r->not_empty);
	else
		pthread_cond_broadcast(&r->not_empty);
	pthread_mutex_unlock(&r->lock);
	return n;
}

static inline size_t
cvring_pop(struct cvring *r, void **v, size_t max)
{
	size_t i;

	pthread_mutex_lock(&r->lock);
	while (r->len == 0)
		pthread_cond_wait(&r->not_empty, &r->lock);
	if (max > r->len)
		max = r->len;
	for (i = 0; i < max; i++) {
		v[i] = r->slot[r->head];
		r->head = cvring_wrap(r, r->head + 1);
	}
	r->len -= max;
	if (max == 1)
		pthread_cond_signal(&r->not_full);
	else
		pthread_cond_broadcast(&r->not_full);
	pthread_mutex_unlock(&r->lock);
	return max;
}

#endif /* BENCH_RING_H */
