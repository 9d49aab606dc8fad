/*
 * server.c - polyserver: a backlog of connection attempts.
 *
 * Every field of a server is guarded by psock_lock (registry.h).  A
 * decision on an attempt is made under that lock and completed by the
 * client afterwards (client_finish), so no lock is held across a polypipe
 * call or a callback.  A server is freed when it is closed and no
 * notifier call is in flight (refs).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/ready.h"
#include "common/sync.h"
#include "polysocket/client.h"
#include "polysocket/registry.h"
#include "polysocket/server.h"

struct polyserver {
	uint32_t tag;                 /* PTAG_SERVER */
	struct psync_event accepters; /* accept may not wait */
	struct psync_event settle;    /* notifier calls ending */
	struct attempt *head;         /* the backlog, oldest first */
	struct attempt *tail;
	size_t pending; /* attempts in the backlog */
	size_t backlog; /* most attempts allowed */
	bool refusing;  /* until the next accept call */
	bool shut;
	bool named;
	unsigned refs;     /* 1 + notifier calls in flight */
	struct pready rdy; /* pending > 0 || shut */
	struct psync_notifier notify;
};

polyserver *
polyserver_create(void)
{
	polyserver *srv = psync_calloc(1, sizeof *srv);

	if (srv == NULL)
		return NULL;
	srv->tag = PTAG_SERVER;
	srv->backlog = SIZE_MAX;
	srv->refs = 1;
	pready_init(&srv->rdy, false);
	return srv;
}

struct pready *
server_ready(polyserver *srv)
{
	return &srv->rdy;
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
	pready_after(&srv->rdy, false);
}

/* Drops a reference (lock held, and released here). */
static void
server_unlock_unref(polyserver *srv)
{
	bool last = --srv->refs == 0;

	pthread_mutex_unlock(&psock_lock);
	CHAOS_POINT();
	if (last) {
		pready_destroy(&srv->rdy);
		free(srv);
	}
}

int
server_enqueue(polyserver *srv, struct attempt *a, bool *fire)
{
	*fire = false;
	CHAOS_POINT();
	if (srv->shut || srv->refusing)
		return ECONNREFUSED;
	if (srv->pending >= srv->backlog)
		return EAGAIN;
	a->next = NULL;
	a->prev = srv->tail;
	if (srv->tail != NULL)
		srv->tail->next = a;
	else
		srv->head = a;
	srv->tail = a;
	if (srv->pending++ == 0) {
		server_update_fd(srv);
		srv->refs++;
		*fire = true;
	}
	CHAOS_POINT();
	psync_event_wake(&srv->accepters, false);
	return 0;
}

void
server_fire(polyserver *srv)
{
	CHAOS_POINT();
	pthread_mutex_lock(&psock_lock);
	psync_notify_fire(&srv->notify, &psock_lock, &srv->settle);
	CHAOS_POINT();
	server_unlock_unref(srv);
}

void
server_withdraw(polyserver *srv, struct attempt *a)
{
	CHAOS_POINT();
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

/* Takes the n oldest attempts out of the backlog (lock held), still
 * linked oldest first, the last one's next NULL. */
static struct attempt *
server_take(polyserver *srv, size_t n)
{
	struct attempt *list = srv->head, *last = list;
	size_t i;

	for (i = 1; i < n; i++)
		last = last->next;
	srv->head = last->next;
	if (srv->head != NULL)
		srv->head->prev = NULL;
	else
		srv->tail = NULL;
	last->next = NULL;
	srv->pending -= n;
	server_update_fd(srv);
	return list;
}

/* Completes the decisions on a list of attempts taken out of the
 * backlog; the clients' references keep them alive. */
static void
server_finish_all(struct attempt *list)
{
	struct attempt *a, *next;

	for (a = list; a != NULL; a = next) {
		next = a->next; /* a lives in a client that may now go */
		CHAOS_POINT();
		client_finish(a->cl);
	}
}

int
polyserver_set_backlog(polyserver *srv, size_t max)
{
	if (srv == NULL || max == 0) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&psock_lock);
	if (!srv->shut)
		srv->backlog = max;
	pthread_mutex_unlock(&psock_lock);
	return 0;
}

ssize_t
polyserver_accept_many(polyserver *srv, polyendpoint *eps, size_t max,
                       int timeout_ms)
{
	struct psync_timer timer = psync_timer(timeout_ms);
	struct attempt *list, *a;
	bool timed_out = false;
	size_t i, n;
	int err;

	if (srv == NULL || eps == NULL || max == 0 ||
	    !psync_timeout_valid(timeout_ms)) {
		errno = EINVAL;
		return -1;
	}
	CHAOS_POINT();
	pthread_mutex_lock(&psock_lock);
	srv->refusing = false;
	for (;;) {
		if (srv->shut)
			err = ESHUTDOWN;
		else if (srv->pending > 0)
			break;
		else if (timeout_ms == 0)
			err = EAGAIN;
		else if (timed_out)
			err = ETIMEDOUT;
		else {
			timed_out = psync_event_wait(&srv->accepters,
			                             &psock_lock, &timer) != 0;
			continue;
		}
		pthread_mutex_unlock(&psock_lock);
		errno = err;
		return -1;
	}
	n = srv->pending < max ? srv->pending : max;
	list = server_take(srv, n);
	for (i = 0, a = list; i < n; i++, a = a->next)
		client_accept(a->cl, &eps[i]);
	CHAOS_POINT();
	pthread_mutex_unlock(&psock_lock);
	CHAOS_POINT();
	server_finish_all(list);
	return (ssize_t)n;
}

int
polyserver_accept(polyserver *srv, polyendpoint *ep, int timeout_ms)
{
	return polyserver_accept_many(srv, ep, 1, timeout_ms) < 0 ? -1 : 0;
}

/* Refuses every pending attempt (lock held) and returns them for
 * server_finish_all. */
static struct attempt *
server_refuse_all(polyserver *srv, size_t *count)
{
	struct attempt *list, *a;

	*count = srv->pending;
	if (srv->pending == 0)
		return NULL;
	list = server_take(srv, srv->pending);
	for (a = list; a != NULL; a = a->next)
		client_refuse(a->cl);
	return list;
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
	pthread_mutex_lock(&psock_lock);
	if (srv->shut) {
		pthread_mutex_unlock(&psock_lock);
		return 0;
	}
	srv->refusing = true;
	list = server_refuse_all(srv, &n);
	pthread_mutex_unlock(&psock_lock);
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
	pthread_mutex_lock(&psock_lock);
	pending = srv->pending > 0;
	pthread_mutex_unlock(&psock_lock);
	return pending;
}

int
polyserver_accept_fd(polyserver *srv)
{
	int fd = -1;

	if (srv == NULL) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&psock_lock);
	fd = pready_efd(&srv->rdy);
	pthread_mutex_unlock(&psock_lock);
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
	pthread_mutex_lock(&psock_lock);
	psync_notify_set(&srv->notify, fn, arg, &psock_lock, &srv->settle);
	pthread_mutex_unlock(&psock_lock);
	return 0;
}

int
polyserver_bind(polyserver *srv, const char *name)
{
	int err;

	err = srv == NULL ? EINVAL : registry_check_name(name);
	if (err != 0) {
		errno = err;
		return -1;
	}
	CHAOS_POINT();
	pthread_mutex_lock(&psock_lock);
	if (srv->named)
		err = EINVAL;
	else if (srv->shut)
		err = ESHUTDOWN;
	else
		err = registry_add(srv, name);
	if (err == 0)
		srv->named = true;
	pthread_mutex_unlock(&psock_lock);
	if (err != 0) {
		errno = err;
		return -1;
	}
	return 0;
}

int
polyserver_shutdown(polyserver *srv)
{
	struct attempt *list;
	size_t n;

	if (srv == NULL) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&psock_lock);
	if (srv->shut) {
		pthread_mutex_unlock(&psock_lock);
		return 0;
	}
	srv->shut = true;
	list = server_refuse_all(srv, &n);
	server_update_fd(srv); /* readable for good */
	if (srv->named) {
		registry_remove(srv);
		srv->named = false;
	}
	psync_event_wake(&srv->accepters, true);
	srv->refs++;
	pthread_mutex_unlock(&psock_lock);
	CHAOS_POINT();
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
	pthread_mutex_lock(&psock_lock);
	psync_notify_set(&srv->notify, NULL, NULL, &psock_lock, &srv->settle);
	pthread_mutex_unlock(&psock_lock);
	CHAOS_POINT();
	polyserver_shutdown(srv);
	CHAOS_POINT();
	pthread_mutex_lock(&psock_lock);
	if (srv->rdy.member.set != NULL)
		pset_detach(&srv->rdy);
	fd = pready_release(&srv->rdy);
	server_unlock_unref(srv);
	if (fd >= 0)
		close(fd);
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
