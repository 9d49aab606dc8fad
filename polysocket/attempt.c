/*
 * attempt.c - a connection attempt between a client and a server
 * (attempt.h).
 *
 * A refused attempt is DECIDING from the moment the server takes it out
 * of its backlog until attempt_finish has set ECONNREFUSED on both pipes
 * and closed the server's side; only then does the client see REFUSED.
 * An accepted one is ACCEPTED as soon as it is taken: the client's wait
 * may return before attempt_finish runs, which then only shows the
 * decision to the descriptor, the set and the notifier.
 *
 * Lock order: the attempt's lock, then a registry bucket's lock, then a
 * server's lock, then a polyset's lock.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "polypipe/pipe.h"
#include "polysocket/attempt.h"
#include "polysocket/registry.h"
#include "polysocket/server.h"

/* psync_spin's counter, which never moves here: a wait for the decision
 * watches the state alone. */
static const _Atomic size_t still;

int
attempt_init(struct attempt *a, void *block, size_t capacity)
{
	polypipe *c2s_rd, *c2s_wr, *s2c_rd, *s2c_wr;
	int err;

	err = pthread_mutex_init(&a->lock, NULL);
	if (err != 0) {
		errno = err;
		return -1;
	}
	if (pipe_create_pair(capacity, &c2s_rd, &c2s_wr, &s2c_rd, &s2c_wr) < 0)
		goto fail;
	a->mine = (polyendpoint){ .rd = s2c_rd, .wr = c2s_wr };
	a->theirs = (polyendpoint){ .rd = c2s_rd, .wr = s2c_wr };
	atomic_init(&a->state, AT_IDLE);
	atomic_init(&a->refs, 1);
	pready_init(&a->rdy, false);
	a->block = block;
	return 0;

fail:
	err = errno;
	pthread_mutex_destroy(&a->lock);
	errno = err;
	return -1;
}

static void
attempt_unref(struct attempt *a)
{
	/* Acq_rel: whoever frees sees every other holder's last writes,
	 * each made before its own decrement. */
	if (atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) != 1)
		return;
	pready_destroy(&a->rdy);
	pthread_mutex_destroy(&a->lock);
	free(a->block);
}

/* --- the server's side ---------------------------------------------- */

void
attempt_queued(struct attempt *a, polyserver *srv)
{
	a->srv = srv;
	/* The backlog's reference, before any server can take it. */
	atomic_fetch_add_explicit(&a->refs, 1, memory_order_relaxed);
	atomic_store_explicit(&a->state, AT_PENDING, memory_order_relaxed);
}

bool
attempt_pending(const struct attempt *a)
{
	return atomic_load_explicit(&a->state, memory_order_relaxed) ==
	       AT_PENDING;
}

void
attempt_take(struct attempt *a, polyendpoint *ep)
{
	if (ep == NULL) {
		atomic_store_explicit(&a->state, AT_DECIDING,
		                      memory_order_relaxed);
		return;
	}
	*ep = a->theirs;
	/* Release: the client that reads ACCEPTED without a lock returns
	 * its side at once; pairs with the acquire in attempt_endpoint. */
	atomic_store_explicit(&a->state, AT_ACCEPTED, memory_order_release);
}

/* Whether the client can see the decision (lock held: REFUSED is set
 * under it, ACCEPTED may be at any time). */
static bool
attempt_decided(const struct attempt *a)
{
	uint32_t s = atomic_load_explicit(&a->state, memory_order_acquire);

	return s == AT_ACCEPTED || s == AT_REFUSED;
}

/* Shows the decision to the descriptor, the set and the waiters asleep
 * (lock held), once: by attempt_finish, or earlier by a setter that
 * finds the attempt accepted and calls its notifier, which may poll. */
static void
attempt_show(struct attempt *a)
{
	if (a->shown)
		return;
	a->shown = true;
	/* The descriptor with it: it may be polled as soon as the lock is
	 * released. */
	pready_flip(&a->rdy, true);
	psync_event_wake(&a->waiters, true);
}

void
attempt_finish(struct attempt *a)
{
	if (atomic_load_explicit(&a->state, memory_order_relaxed) ==
	    AT_DECIDING) {
		/* The server's side is the decider's until the client sees
		 * REFUSED; closing its read end destroys the messages the
		 * client wrote. */
		polypipe_set_error(a->theirs.rd, ECONNREFUSED);
		polypipe_set_error(a->theirs.wr, ECONNREFUSED);
		polypipe_close(a->theirs.rd);
		polypipe_close(a->theirs.wr);
		pthread_mutex_lock(&a->lock);
		/* Release: a client that reads REFUSED without the lock
		 * finds the pipes' error set. */
		atomic_store_explicit(&a->state, AT_REFUSED,
		                      memory_order_release);
	} else {
		pthread_mutex_lock(&a->lock);
	}
	attempt_show(a);
	/* Owed no call if its setter made it, having found the attempt
	 * decided; a notifier set later is its setter's to call. */
	if (a->notify.gen != a->called_gen)
		psync_notify_fire(&a->notify, &a->lock, &a->settle);
	pthread_mutex_unlock(&a->lock);
	CHAOS_POINT();
	attempt_unref(a);
}

/* --- the client's side ---------------------------------------------- */

int
attempt_connect(struct attempt *a, polyserver *srv, const char *name)
{
	struct rbucket *b = NULL;
	bool fire = false, accepted = false;
	int err;

	pthread_mutex_lock(&a->lock);
	/* IDLE moves only under this lock: stable. */
	switch (atomic_load_explicit(&a->state, memory_order_relaxed)) {
	case AT_IDLE:
		if (name != NULL) {
			b = registry_lock(name, false);
			srv = registry_find(b, name);
		}
		err = srv == NULL ? ECONNREFUSED
		                  : server_enqueue(srv, a, &fire, &accepted);
		if (b != NULL)
			registry_unlock(b);
		break;
	case AT_PENDING:
	case AT_DECIDING:
		err = EALREADY;
		break;
	case AT_ACCEPTED:
		err = EISCONN;
		break;
	default:
		err = ECONNREFUSED;
		break;
	}
	pthread_mutex_unlock(&a->lock);
	CHAOS_POINT();
	if (fire)
		server_fire(srv); /* alive: the reference fire took */
	/* Handed to an accept that was waiting (server.c), which leaves
	 * the decision's completion to us: no thread waits for it, and the
	 * client's descriptor and notifier are its own. */
	if (accepted)
		attempt_finish(a);
	return err;
}

int
attempt_endpoint(struct attempt *a, polyendpoint *ep, int timeout_ms)
{
	struct psync_timer timer = psync_timer(timeout_ms);
	bool spun = false, timed_out = false;
	uint32_t s;

	for (;;) {
		/* Acquire: pairs with the release of the decision. */
		s = atomic_load_explicit(&a->state, memory_order_acquire);
		if (s == AT_ACCEPTED) {
			*ep = a->mine;
			return 0;
		}
		if (s == AT_IDLE)
			return ENOTCONN;
		if (s == AT_REFUSED)
			return ECONNREFUSED;
		if (timeout_ms == 0)
			return EAGAIN;
		if (timed_out)
			return ETIMEDOUT;
		if (!spun) {
			/* A server accepting on another CPU decides within
			 * a microsecond or two; a sleep and wake-up costs
			 * tens.  The pipes' adaptive rule (sync.h). */
			spun = true;
			psync_spin(&a->spin, &still, 0, 1, &a->state, s);
			continue;
		}
		/* Every decision ends in attempt_finish, which wakes us
		 * under this lock after the state moved. */
		pthread_mutex_lock(&a->lock);
		if (atomic_load_explicit(&a->state, memory_order_relaxed) == s)
			timed_out = psync_event_wait(&a->waiters, &a->lock,
			                             &timer) != 0;
		pthread_mutex_unlock(&a->lock);
		CHAOS_POINT();
	}
}

int
attempt_endpoint_async(struct attempt *a, polyendpoint *ep)
{
	/* Acquire: as in attempt_endpoint. */
	switch (atomic_load_explicit(&a->state, memory_order_acquire)) {
	case AT_IDLE:
		return ENOTCONN;
	case AT_REFUSED:
		return ECONNREFUSED;
	default:
		*ep = a->mine;
		return 0;
	}
}

int
attempt_fd(struct attempt *a)
{
	int fd = -1;

	pthread_mutex_lock(&a->lock);
	if (atomic_load_explicit(&a->state, memory_order_relaxed) == AT_IDLE)
		errno = ENOTCONN;
	else
		fd = pready_efd(&a->rdy);
	pthread_mutex_unlock(&a->lock);
	CHAOS_POINT();
	return fd;
}

void
attempt_set_notify(struct attempt *a, polypipe_notify_fn *fn, void *arg)
{
	pthread_mutex_lock(&a->lock);
	psync_notify_set(&a->notify, fn, arg, &a->lock, &a->settle);
	if (!attempt_decided(a)) {
		pthread_mutex_unlock(&a->lock);
		CHAOS_POINT();
		return;
	}
	/* Already decided: call it now, and not again when the decision
	 * completes, keeping the attempt alive in case the callback closes
	 * the client. */
	attempt_show(a);
	a->called_gen = a->notify.gen;
	atomic_fetch_add_explicit(&a->refs, 1, memory_order_relaxed);
	psync_notify_fire(&a->notify, &a->lock, &a->settle);
	pthread_mutex_unlock(&a->lock);
	CHAOS_POINT();
	attempt_unref(a);
}

void
attempt_close(struct attempt *a)
{
	bool withdrawn = false;
	uint32_t s;
	int fd;

	pthread_mutex_lock(&a->lock);
	psync_notify_set(&a->notify, NULL, NULL, &a->lock, &a->settle);
	if (attempt_pending(a))
		withdrawn = server_withdraw(a->srv, a);
	/* Stable now: only PENDING moved without this lock. */
	s = atomic_load_explicit(&a->state, memory_order_acquire);
	if (a->rdy.member.set != NULL)
		pset_detach(&a->rdy);
	fd = pready_efd_release(&a->rdy);
	pthread_mutex_unlock(&a->lock);
	CHAOS_POINT();
	if (withdrawn) /* the backlog's reference; ours is still held */
		atomic_fetch_sub_explicit(&a->refs, 1, memory_order_relaxed);
	/* Being refused: the decider closes the server's side, maybe only
	 * after we return, so destroy what we wrote ourselves. */
	if (s == AT_DECIDING)
		pipe_discard(a->mine.wr);
	polypipe_close(a->mine.wr);
	if (s == AT_IDLE || withdrawn)        /* never handed out: ours */
		polypipe_close(a->theirs.rd); /* destroys what we wrote */
	polypipe_close(a->mine.rd);
	if (s == AT_IDLE || withdrawn)
		polypipe_close(a->theirs.wr);
	psync_efd_close(fd);
	attempt_unref(a);
}

struct pready *
attempt_ready_lock(struct attempt *a)
{
	pthread_mutex_lock(&a->lock);
	return &a->rdy;
}

bool
attempt_ready_trylock(struct attempt *a)
{
	return pthread_mutex_trylock(&a->lock) == 0;
}

void
attempt_ready_unlock(struct attempt *a)
{
	pthread_mutex_unlock(&a->lock);
	CHAOS_POINT();
}
