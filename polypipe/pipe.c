/*
 * pipe.c - polypipe: a bounded MPMC FIFO of void * messages.
 *
 * Both ends live in one allocation with the shared state.  One mutex
 * guards everything.  Readiness of each side is recomputed after every
 * change: the eventfds are written only when a side's readiness flips,
 * and notifiers are called for the flips to ready, after the mutex is
 * released.  The pipe is freed when both ends are closed and
 * no notifier call is in flight (refs).
 *
 * The two sides never both wait for data (a pipe cannot be both empty
 * and full), and each has its own psync_event: a waiter spins briefly,
 * then sleeps on it; writers and readers wake it only when somebody
 * waits, so the fast path makes no system call.
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/sync.h"
#include "polypipe/pipe.h"

struct polypipe {
	bool reader;                  /* the read end; else the write end */
	bool closed;                  /* lock */
	struct psync_efd efd;         /* lock */
	struct psync_notifier notify; /* lock */
};

struct pipe {
	pthread_mutex_t lock;
	size_t capacity; /* immutable */

	/* All below: lock. */
	struct psync_event readers; /* a read may not wait; notifier idle */
	struct psync_event writers; /* a write may not wait; notifier idle */
	void **ring;                /* buffered messages, ring[head] oldest */
	size_t size;                /* slots allocated in ring */
	size_t head;
	size_t len;
	size_t taken;  /* read since the last shrink check */
	int error;     /* first error set, or 0 */
	bool eof;      /* EOF sent or write end closed */
	unsigned refs; /* open ends + notifier calls in flight */
	polypipe_dtor_fn *dtor;
	void *dtor_arg;
	struct polypipe rd;
	struct polypipe wr;
};

/* The pipe an end belongs to. */
static struct pipe *
pipe_of(const polypipe *p)
{
	const char *end = (const char *)p;

	return (struct pipe *)(end - (p->reader ? offsetof(struct pipe, rd)
	                                        : offsetof(struct pipe, wr)));
}

/* The ring starts this small and is not shrunk below it. */
#define RING_MIN 8

/* Which sides flipped to ready, for pipe_unlock_fire. */
enum { RISE_RD = 1, RISE_WR = 2 };

struct readiness {
	bool rd;
	bool wr;
};

static bool
pipe_ended(const struct pipe *pp)
{
	return pp->eof || pp->error != 0;
}

static struct readiness
pipe_readiness(const struct pipe *pp)
{
	struct readiness r = {
		.rd = pp->len > 0 || pipe_ended(pp),
		.wr =
		    pp->len < pp->capacity || pipe_ended(pp) || pp->rd.closed,
	};

	return r;
}

/* Brings the eventfds up to date after a change (lock held) and says
 * which sides became ready. */
static unsigned
pipe_changed(struct pipe *pp, struct readiness before)
{
	struct readiness now = pipe_readiness(pp);
	unsigned rise = 0;

	if (now.rd != before.rd) {
		psync_efd_update(&pp->rd.efd, now.rd);
		if (now.rd)
			rise |= RISE_RD;
	}
	if (now.wr != before.wr) {
		psync_efd_update(&pp->wr.efd, now.wr);
		if (now.wr)
			rise |= RISE_WR;
	}
	return rise;
}

static void
pipe_free(struct pipe *pp)
{
	pthread_mutex_destroy(&pp->lock);
	free(pp->ring);
	free(pp);
}

/*
 * Releases the lock after a change, calling the notifiers of the sides in
 * rise one after the other, and gives up drop references (an end being
 * closed).  A reference keeps the pipe alive across the calls, even if a
 * callback closes both ends.  kick sleepers of ev are woken (see
 * psync_event_signal): after the unlock when no callback can free the
 * pipe meanwhile, before the callbacks otherwise.
 */
static void
pipe_unlock_fire(struct pipe *pp, unsigned rise, unsigned drop,
                 struct psync_event *ev, int kick)
{
	bool last;

	if (rise == 0 && drop == 0) {
		pthread_mutex_unlock(&pp->lock);
		psync_event_kick(ev, kick); /* the caller's end is open */
		return;
	}
	psync_event_kick(ev, kick);
	if (rise != 0) {
		pp->refs++;
		drop++;
	}
	if (rise & RISE_RD)
		psync_notify_fire(&pp->rd.notify, &pp->lock, &pp->readers);
	if (rise & RISE_WR)
		psync_notify_fire(&pp->wr.notify, &pp->lock, &pp->writers);
	pp->refs -= drop;
	last = pp->refs == 0;
	pthread_mutex_unlock(&pp->lock);
	if (last)
		pipe_free(pp);
}

/* Wakes the waiters of both sides, for the end of the stream. */
static void
pipe_wake_all(struct pipe *pp)
{
	psync_event_wake(&pp->readers, true);
	psync_event_wake(&pp->writers, true);
}

/* Moves the messages into a ring of newsize slots, oldest first at 0.
 * False if the memory is not there; the ring is unchanged then. */
static bool
ring_resize(struct pipe *pp, size_t newsize)
{
	void **ring;
	size_t first;

	if (newsize > SIZE_MAX / sizeof *ring)
		return false;
	ring = psync_malloc(newsize * sizeof *ring);
	if (ring == NULL)
		return false;
	first = pp->size - pp->head < pp->len ? pp->size - pp->head : pp->len;
	if (pp->len > 0) {
		memcpy(ring, pp->ring + pp->head, first * sizeof *ring);
		memcpy(ring + first, pp->ring,
		       (pp->len - first) * sizeof *ring);
	}
	free(pp->ring);
	pp->ring = ring;
	pp->size = newsize;
	pp->head = 0;
	return true;
}

/* Room for n more messages (len + n <= capacity): doubling, never past
 * the capacity. */
static bool
ring_reserve(struct pipe *pp, size_t n)
{
	size_t need = pp->len + n;
	size_t newsize = pp->size < RING_MIN ? RING_MIN : pp->size;

	if (need <= pp->size)
		return true;
	while (newsize < need)
		newsize = newsize > SIZE_MAX / 2 ? SIZE_MAX : newsize * 2;
	if (newsize > pp->capacity)
		newsize = pp->capacity; /* still >= need */
	return ring_resize(pp, newsize);
}

/*
 * Gives back memory after a burst: once per ring's worth of reads, if the
 * pipe then holds at most a quarter of its ring.  Checking only that
 * often keeps a busy pipe whose fill swings from empty to full from
 * resizing at every swing, while memory still follows what is held.
 */
static void
ring_shrink(struct pipe *pp, size_t n)
{
	pp->taken += n;
	if (pp->taken < pp->size)
		return;
	pp->taken = 0;
	if (pp->size > 4 * RING_MIN && pp->len <= pp->size / 4)
		(void)ring_resize(pp, pp->size / 2); /* kept as is if not */
}

static void
ring_push(struct pipe *pp, void *msg)
{
	size_t tail = pp->head + pp->len;

	if (tail >= pp->size)
		tail -= pp->size;
	pp->ring[tail] = msg;
	pp->len++;
}

static void *
ring_pop(struct pipe *pp)
{
	void *msg = pp->ring[pp->head];

	if (++pp->head == pp->size)
		pp->head = 0;
	pp->len--;
	return msg;
}

/* Messages taken out of a pipe to be destroyed without its lock. */
struct orphans {
	void **ring;
	size_t size;
	size_t head;
	size_t len;
	polypipe_dtor_fn *dtor;
	void *dtor_arg;
};

/* Takes every buffered message out of the pipe (lock held). */
static struct orphans
pipe_take_all(struct pipe *pp)
{
	struct orphans o = {
		.ring = pp->ring,
		.size = pp->size,
		.head = pp->head,
		.len = pp->len,
		.dtor = pp->dtor,
		.dtor_arg = pp->dtor_arg,
	};

	pp->ring = NULL;
	pp->size = pp->head = pp->len = 0;
	return o;
}

static void
orphans_destroy(struct orphans *o)
{
	size_t i, j;

	for (i = 0, j = o->head; o->dtor != NULL && i < o->len; i++) {
		o->dtor(o->ring[j], o->dtor_arg);
		if (++j == o->size)
			j = 0;
	}
	free(o->ring);
}

int
polypipe_create(size_t capacity, polypipe **rd, polypipe **wr)
{
	struct pipe *pp;
	int err;

	if (capacity == 0 || rd == NULL || wr == NULL) {
		errno = EINVAL;
		return -1;
	}
	pp = psync_calloc(1, sizeof *pp);
	if (pp == NULL)
		return -1;
	err = pthread_mutex_init(&pp->lock, NULL);
	if (err != 0) {
		free(pp);
		errno = err;
		return -1;
	}
	pp->capacity = capacity;
	pp->refs = 2;
	pp->rd = (struct polypipe){ .reader = true, .efd = psync_efd_none() };
	pp->wr = (struct polypipe){ .efd = psync_efd_none() };
	*rd = &pp->rd;
	*wr = &pp->wr;
	return 0;
}

/* The checks every read makes before it looks at the pipe. */
static int
pipe_check_read(const polypipe *rd, const void *msgs, size_t max,
                int timeout_ms)
{
	if (rd == NULL || msgs == NULL || max == 0 ||
	    !psync_timeout_valid(timeout_ms))
		return EINVAL;
	if (!rd->reader)
		return EBADF;
	return 0;
}

ssize_t
polypipe_read_many(polypipe *rd, void **msgs, size_t max, int timeout_ms)
{
	struct psync_timer timer = psync_timer(timeout_ms);
	struct readiness before;
	struct pipe *pp;
	bool timed_out = false, spun = false;
	size_t i, n;
	int err, kick;

	err = pipe_check_read(rd, msgs, max, timeout_ms);
	if (err != 0) {
		errno = err;
		return -1;
	}
	pp = pipe_of(rd);
	pthread_mutex_lock(&pp->lock);
	while (pp->len == 0) {
		if (pipe_ended(pp)) {
			err = pp->error;
			pthread_mutex_unlock(&pp->lock);
			if (err == 0)
				return 0;
			errno = err;
			return -1;
		}
		if (timeout_ms == 0 || timed_out) {
			pthread_mutex_unlock(&pp->lock);
			errno = timeout_ms == 0 ? EAGAIN : ETIMEDOUT;
			return -1;
		}
		if (!spun) {
			/* The lock is released meanwhile: check again. */
			spun = true;
			psync_event_spin(&pp->readers, &pp->lock);
			continue;
		}
		timed_out =
		    psync_event_wait(&pp->readers, &pp->lock, &timer) != 0;
	}
	before = pipe_readiness(pp);
	n = pp->len < max ? pp->len : max;
	for (i = 0; i < n; i++)
		msgs[i] = ring_pop(pp);
	ring_shrink(pp, n);
	kick = psync_event_signal(&pp->writers, n > 1);
	pipe_unlock_fire(pp, pipe_changed(pp, before), 0, &pp->writers, kick);
	return (ssize_t)n;
}

int
polypipe_read(polypipe *rd, void **msg, int timeout_ms)
{
	return (int)polypipe_read_many(rd, msg, 1, timeout_ms);
}

ssize_t
polypipe_write_many(polypipe *wr, void *const *msgs, size_t n, int timeout_ms)
{
	struct psync_timer timer = psync_timer(timeout_ms);
	struct readiness before;
	struct pipe *pp;
	bool timed_out = false, spun = false;
	size_t i, room;
	int err, kick;

	if (wr == NULL || msgs == NULL || n == 0 ||
	    !psync_timeout_valid(timeout_ms)) {
		errno = EINVAL;
		return -1;
	}
	if (wr->reader) {
		errno = EBADF;
		return -1;
	}
	pp = pipe_of(wr);
	pthread_mutex_lock(&pp->lock);
	for (;;) {
		if (pp->error != 0)
			err = pp->error;
		else if (pp->eof || pp->rd.closed)
			err = EPIPE;
		else if (pp->len < pp->capacity)
			break;
		else if (timeout_ms == 0)
			err = EAGAIN;
		else if (timed_out)
			err = ETIMEDOUT;
		else {
			if (!spun) {
				/* The lock is released meanwhile. */
				spun = true;
				psync_event_spin(&pp->writers, &pp->lock);
				continue;
			}
			timed_out = psync_event_wait(&pp->writers, &pp->lock,
			                             &timer) != 0;
			continue;
		}
		pthread_mutex_unlock(&pp->lock);
		errno = err;
		return -1;
	}
	room = pp->capacity - pp->len;
	if (n > room)
		n = room;
	if (!ring_reserve(pp, n)) {
		/* Take what the ring holds already, if anything. */
		n = pp->size - pp->len < n ? pp->size - pp->len : n;
		if (n == 0) {
			pthread_mutex_unlock(&pp->lock);
			errno = ENOMEM;
			return -1;
		}
	}
	before = pipe_readiness(pp);
	for (i = 0; i < n; i++)
		ring_push(pp, msgs[i]);
	kick = psync_event_signal(&pp->readers, n > 1);
	pipe_unlock_fire(pp, pipe_changed(pp, before), 0, &pp->readers, kick);
	return (ssize_t)n;
}

int
polypipe_write(polypipe *wr, void *msg, int timeout_ms)
{
	ssize_t n = polypipe_write_many(wr, &msg, 1, timeout_ms);

	return n < 0 ? -1 : 0;
}

int
polypipe_write_eof(polypipe *wr)
{
	struct readiness before;
	struct pipe *pp;

	if (wr == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (wr->reader) {
		errno = EBADF;
		return -1;
	}
	pp = pipe_of(wr);
	pthread_mutex_lock(&pp->lock);
	before = pipe_readiness(pp);
	pp->eof = true;
	pipe_wake_all(pp);
	pipe_unlock_fire(pp, pipe_changed(pp, before), 0, NULL, 0);
	return 0;
}

int
polypipe_set_error(polypipe *p, int err)
{
	struct readiness before;
	struct pipe *pp;

	if (p == NULL || err <= 0) {
		errno = EINVAL;
		return -1;
	}
	pp = pipe_of(p);
	pthread_mutex_lock(&pp->lock);
	if (pp->error != 0) {
		pthread_mutex_unlock(&pp->lock);
		return 0;
	}
	before = pipe_readiness(pp);
	pp->error = err;
	pipe_wake_all(pp);
	pipe_unlock_fire(pp, pipe_changed(pp, before), 0, NULL, 0);
	return 0;
}

int
polypipe_get_error(const polypipe *p)
{
	struct pipe *pp;
	int err;

	if (p == NULL)
		return 0;
	pp = pipe_of(p);
	pthread_mutex_lock(&pp->lock);
	err = pp->error;
	pthread_mutex_unlock(&pp->lock);
	return err;
}

size_t
polypipe_length(const polypipe *p)
{
	struct pipe *pp;
	size_t len;

	if (p == NULL)
		return 0;
	pp = pipe_of(p);
	pthread_mutex_lock(&pp->lock);
	len = pp->len;
	pthread_mutex_unlock(&pp->lock);
	return len;
}

size_t
polypipe_capacity(const polypipe *p)
{
	return p == NULL ? 0 : pipe_of(p)->capacity;
}

bool
polypipe_eof(const polypipe *p)
{
	struct pipe *pp;
	bool ended;

	if (p == NULL)
		return false;
	pp = pipe_of(p);
	pthread_mutex_lock(&pp->lock);
	ended = pipe_ended(pp);
	pthread_mutex_unlock(&pp->lock);
	return ended;
}

/* The descriptor of an end, created on first use. */
static int
pipe_fd(polypipe *p)
{
	struct pipe *pp = pipe_of(p);
	struct readiness now;
	int fd;

	pthread_mutex_lock(&pp->lock);
	if (p->efd.fd < 0) {
		now = pipe_readiness(pp);
		if (psync_efd_open(&p->efd, p->reader ? now.rd : now.wr) < 0) {
			pthread_mutex_unlock(&pp->lock);
			return -1;
		}
	}
	fd = p->efd.fd;
	pthread_mutex_unlock(&pp->lock);
	return fd;
}

/* EINVAL for NULL, EBADF unless p is the reader (or the writer). */
static bool
pipe_check_end(const polypipe *p, bool reader)
{
	if (p == NULL)
		errno = EINVAL;
	else if (p->reader != reader)
		errno = EBADF;
	else
		return true;
	return false;
}

int
polypipe_read_fd(polypipe *rd)
{
	return pipe_check_end(rd, true) ? pipe_fd(rd) : -1;
}

int
polypipe_write_fd(polypipe *wr)
{
	return pipe_check_end(wr, false) ? pipe_fd(wr) : -1;
}

static int
pipe_set_notify(polypipe *p, polypipe_notify_fn *fn, void *arg)
{
	struct pipe *pp = pipe_of(p);

	pthread_mutex_lock(&pp->lock);
	psync_notify_set(&p->notify, fn, arg, &pp->lock,
	                 p->reader ? &pp->readers : &pp->writers);
	pthread_mutex_unlock(&pp->lock);
	return 0;
}

int
polypipe_set_read_notify(polypipe *rd, polypipe_notify_fn *fn, void *arg)
{
	return pipe_check_end(rd, true) ? pipe_set_notify(rd, fn, arg) : -1;
}

int
polypipe_set_write_notify(polypipe *wr, polypipe_notify_fn *fn, void *arg)
{
	return pipe_check_end(wr, false) ? pipe_set_notify(wr, fn, arg) : -1;
}

int
polypipe_set_destructor(polypipe *p, polypipe_dtor_fn *fn, void *arg)
{
	struct pipe *pp;

	if (p == NULL) {
		errno = EINVAL;
		return -1;
	}
	pp = pipe_of(p);
	pthread_mutex_lock(&pp->lock);
	pp->dtor = fn;
	pp->dtor_arg = arg;
	pthread_mutex_unlock(&pp->lock);
	return 0;
}

void
pipe_discard(polypipe *wr)
{
	struct pipe *pp = pipe_of(wr);
	struct readiness before;
	struct orphans o;

	pthread_mutex_lock(&pp->lock);
	before = pipe_readiness(pp);
	o = pipe_take_all(pp);
	psync_event_wake(&pp->writers, true);
	pipe_unlock_fire(pp, pipe_changed(pp, before), 0, NULL, 0);
	orphans_destroy(&o);
}

void
polypipe_close(polypipe *p)
{
	struct orphans o = { 0 };
	struct readiness before;
	struct pipe *pp;
	int fd;

	if (p == NULL)
		return;
	pp = pipe_of(p);
	pthread_mutex_lock(&pp->lock);
	/* Our own callback first, so the close never calls it. */
	psync_notify_set(&p->notify, NULL, NULL, &pp->lock,
	                 p->reader ? &pp->readers : &pp->writers);
	before = pipe_readiness(pp);
	p->closed = true;
	fd = psync_efd_release(&p->efd);
	if (p->reader)
		o = pipe_take_all(pp);
	else
		pp->eof = true;
	pipe_wake_all(pp);
	pipe_unlock_fire(pp, pipe_changed(pp, before), 1, NULL, 0);
	if (fd >= 0)
		close(fd);
	orphans_destroy(&o);
}
