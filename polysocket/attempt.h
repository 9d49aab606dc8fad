/*
 * attempt.h - a connection attempt: the object between a client and a
 * server.
 *
 * A client is one attempt (client.c only checks arguments and forwards
 * here).  The attempt owns what the connection is until it is decided:
 * both endpoints (the client's side, mine, and the server's, theirs,
 * made with it), its state, the decision and its completion: the
 * client's wait, its descriptor and set membership (rdy), and its
 * connect notifier.  A server holds attempts in its backlog and decides
 * them through the calls marked "server" below; it never sees the client,
 * and the client never sees the server's backlog: client.c and server.c
 * do not call each other.
 *
 * States: IDLE (nothing queued) -> PENDING (in srv's backlog) ->
 * ACCEPTED, or -> DECIDING (taken out to be refused) -> REFUSED.  A
 * connect that fails at once leaves IDLE.  IDLE -> PENDING and
 * DECIDING -> REFUSED are made under the attempt's lock; PENDING ->
 * ACCEPTED and PENDING -> DECIDING under the server's lock only, so a
 * reader of PENDING under the attempt's lock alone may see it move.
 *
 * Lock order: the attempt's lock, then a registry bucket's lock, then
 * a server's lock, then a polyset's lock.  A server never takes an
 * attempt's lock while it holds its own: it takes attempts out of its
 * backlog, releases its lock, then completes each decision
 * (attempt_finish).  So a server that took an attempt stays
 * alive until the attempt's lock has been free at least once since:
 * a client's close holding that lock may still take the server's.
 *
 * Lifetime: references (refs): the client's handle; the backlog's, from
 * the queuing until the attempt is withdrawn or its decision completed;
 * a setter calling the notifier.  The memory the attempt lives in (the
 * client) is freed with the last.
 */
#ifndef POLYSOCKET_ATTEMPT_H
#define POLYSOCKET_ATTEMPT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <polysocket/polysocket.h>

#include "common/ready.h"
#include "common/sync.h"

enum attempt_state {
	AT_IDLE,
	AT_PENDING,
	AT_DECIDING, /* the decider owns theirs until REFUSED */
	AT_ACCEPTED, /* theirs is the server's */
	AT_REFUSED,  /* both pipes carry ECONNREFUSED */
};

struct attempt {
	pthread_mutex_t lock;
	/* An attempt_state (see above for who writes it).  Readers
	 * outside the locks acquire: pairs with the release of each
	 * decision, so that REFUSED comes with the pipes' error. */
	_Atomic uint32_t state;
	_Atomic unsigned refs;
	polyendpoint mine;           /* immutable */
	polyendpoint theirs;         /* immutable */
	struct attempt *prev, *next; /* the server's lock: its backlog */
	polyserver *srv;             /* lock and srv's lock: set at queuing */
	bool shown; /* lock: the descriptor, set and waiters were told */
	/* lock: the notifier generation its setter called, having found
	 * the attempt decided: the decision then owes it no call. */
	unsigned called_gen;
	struct psync_spin spin;       /* polyclient_endpoint's spinning */
	struct psync_event waiters;   /* lock: polyclient_endpoint asleep */
	struct psync_event settle;    /* lock: notifier calls ending */
	struct psync_notifier notify; /* lock */
	struct pready rdy;            /* decided; its owner lock is lock */
	void *block; /* what to free with the last reference */
};

/*
 * attempt_init: an IDLE attempt with two new pipes of capacity, living in
 * block (zeroed), which the attempt frees with its last reference.  0, or
 * -1 with errno ENOMEM (block is the caller's then).
 */
int attempt_init(struct attempt *a, void *block, size_t capacity);

/*
 * The client's calls, each the body of its polyclient_ call.  Each
 * returns 0 or an errno value.  attempt_connect queues on srv, or, if
 * name is not NULL, on the server bound to name.
 */
int attempt_connect(struct attempt *a, polyserver *srv, const char *name);
int attempt_endpoint(struct attempt *a, polyendpoint *ep, int timeout_ms);
int attempt_endpoint_async(struct attempt *a, polyendpoint *ep);
/* attempt_fd: the descriptor, or -1 with errno. */
int attempt_fd(struct attempt *a);
void attempt_set_notify(struct attempt *a, polypipe_notify_fn *fn, void *arg);
/* attempt_close: withdraws, closes the client's side, drops the
 * handle's reference. */
void attempt_close(struct attempt *a);

/* For polyset: the readiness and its owner lock, the attempt's lock. */
struct pready *attempt_ready_lock(struct attempt *a);
bool attempt_ready_trylock(struct attempt *a);
void attempt_ready_unlock(struct attempt *a);

/*
 * The server's calls, under the server's lock: attempt_queued as it
 * links a into its backlog (the attempt's lock is held too),
 * attempt_pending whether a is still there, and attempt_take as it takes
 * a out to accept (ep then gets the server's side) or, with ep NULL, to
 * refuse.  An attempt that finds an accept waiting is queued and taken
 * in one go, by the connect (server.c).
 */
void attempt_queued(struct attempt *a, polyserver *srv);
bool attempt_pending(const struct attempt *a);
void attempt_take(struct attempt *a, polyendpoint *ep);

/*
 * attempt_finish (no lock held): completes the decision of an attempt
 * taken, called by the server that took it, or by attempt_connect for
 * one it handed to a waiting accept.  For a refusal, sets the error on
 * the pipes and closes the server's side; then wakes the client's wait,
 * brings its descriptor and set up to date, calls its connect notifier,
 * and drops the backlog's reference (a may be gone on return).
 */
void attempt_finish(struct attempt *a);

#endif /* POLYSOCKET_ATTEMPT_H */
