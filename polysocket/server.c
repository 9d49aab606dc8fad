/*
 * server.c - polyserver: a backlog of connection attempts.
 *
 * Every field of a server is guarded by its own lock, unless said
 * otherwise: connects to different servers share nothing.  A decision
 * on an attempt is made under that lock (attempt_take) and completed
 * once it is released (attempt_finish), so no lock is held across a
 * polypipe call or a callback.  A server is freed when it is closed and
 * no notifier call is in flight (refs).
 *
 * An accept that finds the backlog empty and waits is put on a list of
 * accepters.  While one is there, a connect does not queue its attempt:
 * it takes the oldest accepter off the list and accepts the attempt into
 * that accept's first slot there and then, under the server's lock, as
 * that accept would have on waking.  The connecting thread then completes
 * the decision itself (attempt_finish), so the client has its endpoint
 * without waiting for the accepting thread to run, and the accepting
 * thread, when it runs, finds its connection made.  Fewer hand-offs
 * between threads per connection: one instead of two before the first
 * request can be written.  The backlog is empty whenever an accept
 * waits, so this keeps the attempts' order.
 *
 * Lock order: a registry bucket's lock (bind), then the server's lock,
 * then a polyset's lock.  An attempt's lock may be held on entry to
 * server_enqueue and server_withdraw (attempt.h); the server never takes
 * one.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/ready.h"
#include "common/sync.h"
#include "polysocket/attempt.h"
#include "polysocket/registry.h"
#include "polysocket/server.h"

/* An accept waiting for an attempt, on its caller's stack: on the
 * server's list from when it finds the backlog empty until it returns. */
struct accepter {
	struct accepter *prev, *next; /* the server's lock */
	polyendpoint *ep;             /* where an attempt handed goes */
	struct attempt *handed;       /* the server's lock */
	/* Set when an attempt is handed or the server shuts down, under
	 * the server's lock; the accept spinning reads it without (relaxed:
	 * it takes the lock before it looks at handed). */
	_Atomic uint32_t moved;
	struct psync_event wake; /* the server's lock: the accept asleep */
};

struct polyserver {
	uint32_t tag; /* PTAG_SERVER */
	pthread_mutex_t lock;
	struct attempt *head; /* the backlog, oldest first */
	struct attempt *tail;
	size_t pending; /* attempts in the backlog */
	size_t backlog; /* most attempts allowed */
	bool refusing;  /* until the next accept call */
	bool shut;
	struct binding *binding; /* its name, if bound */
	/* The accepts waiting, oldest first; only while pending is 0. */
	struct accepter *waiting, *waiting_tail;
	struct psync_spin spin;
	struct psync_event settle; /* notifier calls ending */
	_Atomic unsigned refs;     /* 1 + notifier calls in flight */
	struct pready rdy;         /* pending > 0 || shut */
	struct psync_notifier notify;
};

/* psync_spin's counter, which never moves here: a spinning accept
 * watches its own record alone. */
static const _Atomic size_t still;

polyserver *
polyserver_create(void)
{
	polyserver *srv = psync_calloc(1, sizeof *srv);
	int err;

	if (srv == NULL)
		return NULL;
	err = pthread_mutex_init(&srv->lock, NULL);
	if (err != 0) {
		free(srv);
		errno = err;
		return NULL;
	}
	srv->tag = PTAG_SERVER;
	srv->backlog = SIZE_MAX;
	atomic_init(&srv->refs, 1);
	pready_init(&srv->rdy, false);
	return srv;
}

struct pready *
server_ready_lock(polyserver *srv)
{
	pthread_mutex_lock(&srv->lock);
	return &srv->rdy;
}

bool
server_ready_trylock(polyserver *srv)
{
	return pthread_mutex_trylock(&srv->lock) == 0;
}

void
server_ready_unlock(polyserver *srv)
{
	pthread_mutex_unlock(&srv->lock);
	CHAOS_POINT();
}

/* Readiness follows the backlog (lock held).  The descriptor is brought
 * up to date under the lock too: the server may go once it is released. */
static void
server_update_fd(polyserver *srv)
{
	bool up = srv->pending > 0 || srv->shut;

	if (up == atomic_load_explicit(&srv->rdy.up, memory_order_relaxed))
		return;
	pready_flip(&srv->rdy, up);
}

/* Drops a reference (no lock held). */
static void
server_unref(polyserver *srv)
{
	/* Acq_rel: whoever frees sees every other holder's last writes. */
	if (atomic_fetch_sub_explicit(&srv->refs, 1, memory_order_acq_rel) !=
	    1)
		return;
	pready_destroy(&srv->rdy);
	pthread_mutex_destroy(&srv->lock);
	free(srv);
}

/* Puts a waiting accept on the list, last (lock held). */
static void
accepter_link(polyserver *srv, struct accepter *w)
{
	w->next = NULL;
	w->prev = srv->waiting_tail;
	if (srv->waiting_tail != NULL)
		srv->waiting_tail->next = w;
	else
		srv->waiting = w;
	srv->waiting_tail = w;
}

static void
accepter_unlink(polyserver *srv, struct accepter *w)
{
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		srv->waiting = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	else
		srv->waiting_tail = w->prev;
}

/* Tells a waiting accept to look again, spinning or asleep (lock held:
 * it cannot leave, so its record is alive, kick included). */
static void
accepter_wake(struct accepter *w)
{
	atomic_store_explicit(&w->moved, 1, memory_order_relaxed);
	psync_event_wake(&w->wake, false);
}

int
server_enqueue(polyserver *srv, struct attempt *a, bool *fire, bool *accepted)
{
	struct accepter *w;
	int err = 0;

	*fire = *accepted = false;
	pthread_mutex_lock(&srv->lock);
	if (srv->shut || srv->refusing)
		err = ECONNREFUSED;
	else if (srv->pending >= srv->backlog)
		err = EAGAIN;
	if (err != 0) {
		pthread_mutex_unlock(&srv->lock);
		CHAOS_POINT();
		return err;
	}
	attempt_queued(a, srv);
	w = srv->waiting;
	if (w != NULL) {
		/* An accept waits, so the backlog is empty: the attempt is
		 * the oldest, and that accept's. */
		accepter_unlink(srv, w);
		attempt_take(a, w->ep);
		w->handed = a;
		accepter_wake(w);
		*accepted = true;
	} else {
		a->next = NULL;
		a->prev = srv->tail;
		if (srv->tail != NULL)
			srv->tail->next = a;
		else
			srv->head = a;
		srv->tail = a;
		if (srv->pending++ == 0)
			server_update_fd(srv);
	}
	/* The backlog went from empty to not, if only for this instant
	 * when an accept took the attempt: the notifier's edge.  One set
	 * later is not owed it. */
	if (srv->pending <= 1 && srv->notify.fn != NULL) {
		atomic_fetch_add_explicit(&srv->refs, 1, memory_order_relaxed);
		*fire = true;
	}
	pthread_mutex_unlock(&srv->lock);
	CHAOS_POINT();
	return 0;
}

void
server_fire(polyserver *srv)
{
	pthread_mutex_lock(&srv->lock);
	psync_notify_fire(&srv->notify, &srv->lock, &srv->settle);
	pthread_mutex_unlock(&srv->lock);
	CHAOS_POINT();
	server_unref(srv);
}

bool
server_withdraw(polyserver *srv, struct attempt *a)
{
	bool queued;

	pthread_mutex_lock(&srv->lock);
	queued = attempt_pending(a);
	if (queued) {
		if (a->prev != NULL)
			a->prev->next = a->next;
		else
			srv->head = a->next;
		if (a->next != NULL)
			a->next->prev = a->prev;
		else
			srv->tail = a->prev;
		srv->pending--;
		server_update_fd(srv);
	}
	pthread_mutex_unlock(&srv->lock);
	CHAOS_POINT();
	return queued;
}

/* Takes the n oldest attempts out of the backlog (lock held), to accept
 * into eps or, with eps NULL, to refuse; returns them still linked,
 * oldest first, the last one's next NULL. */
static struct attempt *
server_take(polyserver *srv, size_t n, polyendpoint *eps)
{
	struct attempt *list = srv->head, *a = list;
	size_t i;

	for (i = 0; i < n; i++, a = a->next)
		attempt_take(a, eps != NULL ? &eps[i] : NULL);
	a = list;
	for (i = 1; i < n; i++)
		a = a->next;
	srv->head = a->next;
	if (srv->head != NULL)
		srv->head->prev = NULL;
	else
		srv->tail = NULL;
	a->next = NULL;
	srv->pending -= n;
	server_update_fd(srv);
	return list;
}

/* Completes the decisions on a list of attempts taken out of the
 * backlog (no lock held); each may go once completed. */
static void
server_finish_all(struct attempt *list)
{
	struct attempt *a, *next;

	for (a = list; a != NULL; a = next) {
		next = a->next;
		attempt_finish(a);
	}
}

int
polyserver_set_backlog(polyserver *srv, size_t max)
{
	if (srv == NULL || max == 0) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&srv->lock);
	if (!srv->shut)
		srv->backlog = max;
	pthread_mutex_unlock(&srv->lock);
	CHAOS_POINT();
	return 0;
}

ssize_t
polyserver_accept_many(polyserver *srv, polyendpoint *eps, size_t max,
                       int timeout_ms)
{
	struct psync_timer timer = psync_timer(timeout_ms);
	struct accepter me = { .ep = eps };
	bool timed_out = false, spun = false, linked = false;
	struct attempt *list = NULL;
	size_t n = 0;
	int err;

	if (srv == NULL || eps == NULL || max == 0 ||
	    !psync_timeout_valid(timeout_ms)) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&srv->lock);
	srv->refusing = false;
	for (;;) {
		if (me.handed != NULL) {
			/* Accepted into eps[0] by its connect, which
			 * completes it and took us off the list. */
			n = 1;
			break;
		}
		if (srv->shut)
			err = ESHUTDOWN;
		else if (srv->pending > 0)
			break;
		else if (timeout_ms == 0)
			err = EAGAIN;
		else if (timed_out)
			err = ETIMEDOUT;
		else {
			if (!linked) {
				accepter_link(srv, &me);
				linked = true;
			}
			if (!spun) {
				/* A client connecting on another CPU is
				 * likely here within microseconds: cheaper
				 * to wait for it running, by the pipes'
				 * adaptive rule (sync.h). */
				spun = true;
				pthread_mutex_unlock(&srv->lock);
				CHAOS_POINT();
				psync_spin(&srv->spin, &still, 0, 1, &me.moved,
				           0);
				pthread_mutex_lock(&srv->lock);
			} else {
				timed_out =
				    psync_event_wait(&me.wake, &srv->lock,
				                     &timer) != 0;
			}
			continue;
		}
		if (linked)
			accepter_unlink(srv, &me);
		pthread_mutex_unlock(&srv->lock);
		CHAOS_POINT();
		errno = err;
		return -1;
	}
	if (linked && me.handed == NULL)
		accepter_unlink(srv, &me);
	/* The rest of the batch from the backlog, newer than one handed. */
	if (srv->pending > 0 && n < max) {
		size_t more = srv->pending < max - n ? srv->pending : max - n;

		list = server_take(srv, more, eps + n);
		n += more;
	}
	pthread_mutex_unlock(&srv->lock);
	CHAOS_POINT();
	server_finish_all(list);
	return (ssize_t)n;
}

int
polyserver_accept(polyserver *srv, polyendpoint *ep, int timeout_ms)
{
	return polyserver_accept_many(srv, ep, 1, timeout_ms) < 0 ? -1 : 0;
}

/* Takes every pending attempt to refuse it (lock held), for
 * server_finish_all. */
static struct attempt *
server_refuse_all(polyserver *srv, size_t *count)
{
	*count = srv->pending;
	if (srv->pending == 0)
		return NULL;
	return server_take(srv, srv->pending, NULL);
}

int
polyserver_refuse(polyserver *srv)
{
	struct attempt *list;
	size_t n;

	if (srv == NULL) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&srv->lock);
	if (srv->shut) {
		pthread_mutex_unlock(&srv->lock);
		CHAOS_POINT();
		return 0;
	}
	srv->refusing = true;
	list = server_refuse_all(srv, &n);
	pthread_mutex_unlock(&srv->lock);
	CHAOS_POINT();
	server_finish_all(list);
	return n > INT_MAX ? INT_MAX : (int)n;
}

bool
polyserver_pending(polyserver *srv)
{
	bool pending;

	if (srv == NULL)
		return false;
	pthread_mutex_lock(&srv->lock);
	pending = srv->pending > 0;
	pthread_mutex_unlock(&srv->lock);
	CHAOS_POINT();
	return pending;
}

int
polyserver_accept_fd(polyserver *srv)
{
	int fd;

	if (srv == NULL) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&srv->lock);
	fd = pready_efd(&srv->rdy);
	pthread_mutex_unlock(&srv->lock);
	CHAOS_POINT();
	return fd;
}

int
polyserver_set_accept_notify(polyserver *srv, polypipe_notify_fn *fn,
                             void *arg)
{
	if (srv == NULL) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&srv->lock);
	psync_notify_set(&srv->notify, fn, arg, &srv->lock, &srv->settle);
	pthread_mutex_unlock(&srv->lock);
	CHAOS_POINT();
	return 0;
}

int
polyserver_bind(polyserver *srv, const char *name)
{
	struct rbucket *b;
	int err;

	err = srv == NULL ? EINVAL : registry_check_name(name);
	if (err != 0) {
		errno = err;
		return -1;
	}
	b = registry_lock(name, true);
	pthread_mutex_lock(&srv->lock);
	if (srv->binding != NULL)
		err = EINVAL;
	else if (srv->shut)
		err = ESHUTDOWN;
	else
		err = registry_add(b, srv, name, &srv->binding);
	pthread_mutex_unlock(&srv->lock);
	CHAOS_POINT();
	registry_unlock(b);
	if (err != 0) {
		errno = err;
		return -1;
	}
	return 0;
}

int
polyserver_shutdown(polyserver *srv)
{
	struct binding *binding;
	struct accepter *w;
	struct attempt *list;
	size_t n;

	if (srv == NULL) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&srv->lock);
	if (srv->shut) {
		pthread_mutex_unlock(&srv->lock);
		CHAOS_POINT();
		return 0;
	}
	srv->shut = true;
	list = server_refuse_all(srv, &n);
	server_update_fd(srv); /* readable for good */
	binding = srv->binding;
	srv->binding = NULL;
	for (w = srv->waiting; w != NULL; w = w->next)
		accepter_wake(w);
	atomic_fetch_add_explicit(&srv->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&srv->lock);
	CHAOS_POINT();
	/* Found by name until here, and refused then: shut. */
	if (binding != NULL)
		registry_remove(binding);
	server_finish_all(list);
	server_fire(srv);
	return 0;
}

void
polyserver_close(polyserver *srv)
{
	int fd;

	if (srv == NULL)
		return;
	pthread_mutex_lock(&srv->lock);
	psync_notify_set(&srv->notify, NULL, NULL, &srv->lock, &srv->settle);
	pthread_mutex_unlock(&srv->lock);
	CHAOS_POINT();
	polyserver_shutdown(srv);
	pthread_mutex_lock(&srv->lock);
	if (srv->rdy.member.set != NULL)
		pset_detach(&srv->rdy);
	fd = pready_efd_release(&srv->rdy);
	pthread_mutex_unlock(&srv->lock);
	CHAOS_POINT();
	server_unref(srv);
	psync_efd_close(fd);
}

void
polyendpoint_close(polyendpoint *ep)
{
	if (ep == NULL)
		return;
	polypipe_close(ep->rd);
	polypipe_close(ep->wr);
	ep->rd = ep->wr = NULL;
}
