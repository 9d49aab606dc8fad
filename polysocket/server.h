/*
 * server.h - what clients need of servers.  All with psock_lock held,
 * unless said otherwise.
 */
#ifndef POLYSOCKET_SERVER_H
#define POLYSOCKET_SERVER_H

#include <stdbool.h>

#include <polysocket/polysocket.h>

/* A connection attempt in a server's backlog, embedded in its client. */
struct attempt {
	struct attempt *prev;
	struct attempt *next;
	polyclient *cl;
};

/*
 * server_enqueue: appends a to srv's backlog.  Returns 0, ECONNREFUSED
 * (refusing, shut down) or EAGAIN (backlog full).  When the backlog
 * becomes non-empty it sets *fire and takes a reference that the caller
 * gives to server_fire once it has released psock_lock.
 */
int server_enqueue(polyserver *srv, struct attempt *a, bool *fire);

/* server_fire: calls the accept notifier; psock_lock not held. */
void server_fire(polyserver *srv);

/* server_withdraw: takes a pending attempt out of the backlog. */
void server_withdraw(polyserver *srv, struct attempt *a);

struct pready;

/* For polyset: the readiness, whose owner lock is psock_lock. */
struct pready *server_ready(polyserver *srv);

#endif /* POLYSOCKET_SERVER_H */
