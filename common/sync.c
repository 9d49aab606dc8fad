/*
 * sync.c - waiting, eventfd readiness and notifier callbacks.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
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
#endif

int
psync_cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t attr;
	int err;

	err = pthread_condattr_init(&attr);
	if (err != 0)
		return err;
	err = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (err == 0)
		err = pthread_cond_init(cv, &attr);
	pthread_condattr_destroy(&attr);
	return err;
}

int
psync_wait(pthread_cond_t *cv, pthread_mutex_t *lock, struct psync_timer *t)
{
	struct timespec now;
	int err;

	assert(t->timeout_ms != 0);
	if (t->timeout_ms < 0) {
		err = pthread_cond_wait(cv, lock);
		assert(err == 0);
		return 0;
	}
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
	err = pthread_cond_timedwait(cv, lock, &t->deadline);
	if (err == ETIMEDOUT)
		return ETIMEDOUT;
	assert(err == 0);
	/* A wake-up right at the deadline counts as timed out too, so the
	 * caller never waits again past it. */
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec > t->deadline.tv_sec ||
	    (now.tv_sec == t->deadline.tv_sec &&
	     now.tv_nsec >= t->deadline.tv_nsec))
		return ETIMEDOUT;
	return 0;
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

	if (e->fd < 0 || e->ready == ready)
		return;
	/* The counter is only ever 0 or 1, so neither call can block or
	 * overflow: a failure here is a bug in the library. */
	if (ready)
		n = write(e->fd, &v, sizeof v);
	else
		n = read(e->fd, &v, sizeof v);
	assert(n == (ssize_t)sizeof v);
	(void)n;
	e->ready = ready;
}

int
psync_efd_release(struct psync_efd *e)
{
	int fd = e->fd;

	e->fd = -1;
	e->ready = false;
	return fd;
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
                 pthread_mutex_t *lock, pthread_cond_t *cv)
{
	n->fn = fn;
	n->arg = arg;
	n->gen++;
	n->stale += n->running;
	n->running = 0;
	if (psync_inside(n))
		return;
	while (n->stale > 0) {
		n->waiters++;
		(void)pthread_cond_wait(cv, lock); /* cannot fail here */
		n->waiters--;
	}
}

void
psync_notify_fire(struct psync_notifier *n, pthread_mutex_t *lock,
                  pthread_cond_t *cv)
{
	struct psync_frame f = { .n = n, .up = psync_frames };
	polypipe_notify_fn *fn = n->fn;
	void *arg = n->arg;
	unsigned gen = n->gen;

	if (fn == NULL)
		return;
	n->running++;
	pthread_mutex_unlock(lock);
	psync_frames = &f;
	fn(arg);
	psync_frames = f.up;
	pthread_mutex_lock(lock);
	if (gen == n->gen) {
		n->running--;
		return;
	}
	/* Replaced while we ran: a setter may be waiting for us. */
	n->stale--;
	if (n->stale == 0 && n->waiters > 0)
		pthread_cond_broadcast(cv);
}
