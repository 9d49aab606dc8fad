/*
 * server.h - what connection attempts (attempt.c) and sets (polyset)
 * need of servers.
 *
 * Each server has a lock of its own, which guards its backlog and state
 * and is the owner lock of its readiness.  Lock order (attempt.h): an
 * attempt's lock, then a registry bucket's, then a server's, then a
 * set's.
 */
#ifndef POLYSOCKET_SERVER_H
#define POLYSOCKET_SERVER_H

#include <stdbool.h>

#include <polysocket/polysocket.h>

struct attempt;
struct pready;

/*
 * server_enqueue (the attempt's lock held): appends a to srv's backlog
 * and marks it queued (attempt_queued).  Returns 0, ECONNREFUSED
 * (refusing, shut down) or EAGAIN (backlog full).  When an accept is
 * waiting, it accepts a for that accept instead (attempt_take) and sets
 * *accepted: the caller then completes the decision (attempt_finish)
 * once it holds no lock.  When the backlog becomes non-empty, or an
 * empty one hands a to an accept, and a notifier is set, it sets *fire
 * and takes a reference that the caller hands to server_fire once it
 * holds no lock.
 */
int server_enqueue(polyserver *srv, struct attempt *a, bool *fire,
                   bool *accepted);

/* server_fire (no lock held): calls the accept notifier and drops the
 * reference taken for it. */
void server_fire(polyserver *srv);

/*
 * server_withdraw (the attempt's lock held): takes a out of the backlog
 * if it is still there, and says whether it was.  srv is alive: a
 * server that took a cannot go before completing it, which needs the
 * attempt's lock.
 */
bool server_withdraw(polyserver *srv, struct attempt *a);

/* For polyset: the readiness and its owner lock, the server's lock. */
struct pready *server_ready_lock(polyserver *srv);
bool server_ready_trylock(polyserver *srv);
void server_ready_unlock(polyserver *srv);

#endif /* POLYSOCKET_SERVER_H */
