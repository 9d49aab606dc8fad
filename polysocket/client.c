/*
 * client.c - polyclient: one connection attempt and its endpoint.
 *
 * A client makes both pipes of its connection when it is created: the
 * client's side (mine) stays with it, the server's side (theirs) goes to
 * the server at accept.  State and references are guarded by psock_lock
 * (registry.h).
 *
 * A refused attempt is DECIDING from the moment the server takes it out
 * of its backlog until client_finish has set ECONNREFUSED on both pipes
 * and closed the server's side; only then does the client see REFUSED.
 * The thread deciding holds a reference, so the client may be closed
 * meanwhile.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/ready.h"
#include "common/sync.h"
#include "polypipe/pipe.h"
#include "polysocket/client.h"
#include "polysocket/registry.h"
#include "polysocket/server.h"

enum client_state {
	CLIENT_IDLE,     /* no attempt queued */
	CLIENT_PENDING,  /* in srv's backlog */
	CLIENT_DECIDING, /* being refused */
	CLIENT_ACCEPTED,
	CLIENT_REFUSED,
};

struct polyclient {
	uint32_t tag;               /* PTAG_CLIENT */
	struct psync_event decided; /* endpoint may not wait */
	struct psync_event settle;  /* notifier calls ending */
	polyendpoint mine;          /* the client's side; immutable */
	polyendpoint theirs;        /* the server's side; immutable */
	struct attempt attempt;     /* links: the server's backlog */
	polyserver *srv;            /* while PENDING */
	enum client_state state;
	unsigned decided_gen; /* notify.gen when decided */
	unsigned refs;        /* 1 + deciders in flight */
	struct pready rdy;    /* decided */
	struct psync_notifier notify;
};

polyclient *
polyclient_create(size_t capacity)
{
	polypipe *c2s_rd, *c2s_wr, *s2c_rd, *s2c_wr;
	polyclient *cl;
	int err;

	if (capacity == 0) {
		errno = EINVAL;
		return NULL;
	}
	cl = psync_calloc(1, sizeof *cl);
	if (cl == NULL)
		return NULL;
	if (polypipe_create(capacity, &c2s_rd, &c2s_wr) < 0)
		goto fail_c2s;
	if (polypipe_create(capacity, &s2c_rd, &s2c_wr) < 0)
		goto fail_s2c;
	cl->mine = (polyendpoint){ .rd = s2c_rd, .wr = c2s_wr };
	cl->theirs = (polyendpoint){ .rd = c2s_rd, .wr = s2c_wr };
	cl->attempt.cl = cl;
	cl->tag = PTAG_CLIENT;
	cl->refs = 1;
	pready_init(&cl->rdy, false);
	return cl;

fail_s2c:
	err = errno;
	polypipe_close(c2s_rd);
	polypipe_close(c2s_wr);
	errno = err;
fail_c2s:
	free(cl);
	return NULL;
}

struct pready *
client_ready(polyclient *cl)
{
	return &cl->rdy;
}

static bool
client_decided(const polyclient *cl)
{
	return cl->state == CLIENT_ACCEPTED || cl->state == CLIENT_REFUSED;
}

/*
 * Shows the decision: wait, descriptor (lock held).  The notifier set now
 * is the decider's to call; one set later is called by its setter, which
 * then finds the attempt decided, so each is called exactly once.
 */
static void
client_publish(polyclient *cl, enum client_state state)
{
	cl->state = state;
	cl->decided_gen = cl->notify.gen;
	/* The descriptor under the lock too: the client may go once it is
	 * released. */
	pready_flip(&cl->rdy, true);
	pready_after(&cl->rdy, false);
	CHAOS_POINT();
	psync_event_wake(&cl->decided, true);
}

void
client_accept(polyclient *cl, polyendpoint *ep)
{
	cl->srv = NULL;
	*ep = cl->theirs;
	client_publish(cl, CLIENT_ACCEPTED);
	cl->refs++;
}

void
client_refuse(polyclient *cl)
{
	cl->srv = NULL;
	cl->state = CLIENT_DECIDING;
	cl->refs++;
}

/* Drops a reference (lock held, and released here). */
static void
client_unlock_unref(polyclient *cl)
{
	bool last = --cl->refs == 0;

	pthread_mutex_unlock(&psock_lock);
	CHAOS_POINT();
	if (last) {
		pready_destroy(&cl->rdy);
		free(cl);
	}
}

void
client_finish(polyclient *cl)
{
	CHAOS_POINT();
	pthread_mutex_lock(&psock_lock);
	if (cl->state == CLIENT_DECIDING) {
		pthread_mutex_unlock(&psock_lock);
		CHAOS_POINT();
		/* The server's side belongs to the decider until the client
		 * sees REFUSED; closing its read end destroys the messages
		 * the client wrote. */
		polypipe_set_error(cl->theirs.rd, ECONNREFUSED);
		polypipe_set_error(cl->theirs.wr, ECONNREFUSED);
		CHAOS_POINT();
		polypipe_close(cl->theirs.rd);
		polypipe_close(cl->theirs.wr);
		CHAOS_POINT();
		pthread_mutex_lock(&psock_lock);
		client_publish(cl, CLIENT_REFUSED);
	}
	CHAOS_POINT();
	if (cl->notify.gen == cl->decided_gen)
		psync_notify_fire(&cl->notify, &psock_lock, &cl->settle);
	client_unlock_unref(cl);
}

/* Queues an attempt on srv (lock held, and released here). */
static int
client_connect(polyclient *cl, polyserver *srv)
{
	bool fire = false;
	int err;

	switch (cl->state) {
	case CLIENT_IDLE:
		err = srv == NULL ? ECONNREFUSED
		                  : server_enqueue(srv, &cl->attempt, &fire);
		break;
	case CLIENT_PENDING:
	case CLIENT_DECIDING:
		err = EALREADY;
		break;
	case CLIENT_ACCEPTED:
		err = EISCONN;
		break;
	default:
		err = ECONNREFUSED;
		break;
	}
	if (err == 0) {
		cl->state = CLIENT_PENDING;
		cl->srv = srv;
	}
	pthread_mutex_unlock(&psock_lock);
	CHAOS_POINT();
	if (fire)
		server_fire(srv);
	if (err != 0) {
		errno = err;
		return -1;
	}
	return 0;
}

int
polyclient_connect(polyclient *cl, polyserver *srv)
{
	if (cl == NULL || srv == NULL) {
		errno = EINVAL;
		return -1;
	}
	CHAOS_POINT();
	pthread_mutex_lock(&psock_lock);
	return client_connect(cl, srv);
}

int
polyclient_connect_name(polyclient *cl, const char *name)
{
	int err = cl == NULL ? EINVAL : registry_check_name(name);

	if (err != 0) {
		errno = err;
		return -1;
	}
	CHAOS_POINT();
	pthread_mutex_lock(&psock_lock);
	return client_connect(cl, registry_find(name));
}

int
polyclient_endpoint(polyclient *cl, polyendpoint *ep, int timeout_ms)
{
	struct psync_timer timer = psync_timer(timeout_ms);
	bool timed_out = false;
	int err;

	if (cl == NULL || ep == NULL || !psync_timeout_valid(timeout_ms)) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&psock_lock);
	for (;;) {
		if (cl->state == CLIENT_ACCEPTED) {
			*ep = cl->mine;
			err = 0;
			break;
		}
		if (cl->state == CLIENT_IDLE)
			err = ENOTCONN;
		else if (cl->state == CLIENT_REFUSED)
			err = ECONNREFUSED;
		else if (timeout_ms == 0)
			err = EAGAIN;
		else if (timed_out)
			err = ETIMEDOUT;
		else {
			timed_out = psync_event_wait(&cl->decided, &psock_lock,
			                             &timer) != 0;
			continue;
		}
		break;
	}
	pthread_mutex_unlock(&psock_lock);
	if (err != 0) {
		errno = err;
		return -1;
	}
	return 0;
}

int
polyclient_endpoint_async(polyclient *cl, polyendpoint *ep)
{
	int err = 0;

	if (cl == NULL || ep == NULL) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&psock_lock);
	if (cl->state == CLIENT_IDLE)
		err = ENOTCONN;
	else if (cl->state == CLIENT_REFUSED)
		err = ECONNREFUSED;
	else
		*ep = cl->mine;
	pthread_mutex_unlock(&psock_lock);
	if (err != 0) {
		errno = err;
		return -1;
	}
	return 0;
}

int
polyclient_connect_fd(polyclient *cl)
{
	int fd = -1;

	if (cl == NULL) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&psock_lock);
	if (cl->state == CLIENT_IDLE)
		errno = ENOTCONN;
	else
		fd = pready_efd(&cl->rdy);
	pthread_mutex_unlock(&psock_lock);
	return fd;
}

int
polyclient_set_connect_notify(polyclient *cl, polypipe_notify_fn *fn,
                              void *arg)
{
	if (cl == NULL) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&psock_lock);
	psync_notify_set(&cl->notify, fn, arg, &psock_lock, &cl->settle);
	CHAOS_POINT();
	if (!client_decided(cl)) {
		pthread_mutex_unlock(&psock_lock);
		return 0;
	}
	/* Already decided: call it now, keeping the client alive in case
	 * the callback closes it. */
	cl->refs++;
	psync_notify_fire(&cl->notify, &psock_lock, &cl->settle);
	client_unlock_unref(cl);
	return 0;
}

void
polyclient_close(polyclient *cl)
{
	polyendpoint mine, theirs = { NULL, NULL };
	enum client_state state;
	int fd;

	if (cl == NULL)
		return;
	pthread_mutex_lock(&psock_lock);
	psync_notify_set(&cl->notify, NULL, NULL, &psock_lock, &cl->settle);
	CHAOS_POINT();
	state = cl->state;
	if (state == CLIENT_PENDING)
		server_withdraw(cl->srv, &cl->attempt);
	mine = cl->mine;
	if (state == CLIENT_IDLE || state == CLIENT_PENDING)
		theirs = cl->theirs; /* never handed out: ours to close */
	if (cl->rdy.member.set != NULL)
		pset_detach(&cl->rdy);
	fd = pready_release(&cl->rdy);
	client_unlock_unref(cl);
	/* Being refused: the decider closes the server's side, maybe only
	 * after we return, so destroy what we wrote ourselves. */
	if (state == CLIENT_DECIDING)
		pipe_discard(mine.wr);
	CHAOS_POINT();
	polypipe_close(mine.wr);
	CHAOS_POINT();
	polypipe_close(theirs.rd); /* destroys what we wrote */
	polypipe_close(mine.rd);
	polypipe_close(theirs.wr);
	if (fd >= 0)
		close(fd);
}
