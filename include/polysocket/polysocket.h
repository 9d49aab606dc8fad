/*
 * polysocket.h - servers, clients and endpoints between threads.
 *
 * A client connects to a server (directly or by a name the server bound);
 * the server accepts or refuses each attempt.  A connection is an
 * endpoint: two polypipes of the client's capacity, ep.rd carrying
 * messages from the peer and ep.wr messages to the peer.  Everything
 * polypipe.h says holds on endpoint pipes.  Conventions (errno, timeouts,
 * notifiers, descriptors) are those of polypipe.h.
 *
 * Choices where the contract is silent:
 * - A client's two pipes are made by polyclient_create, so connecting
 *   never allocates.  The library starts no thread and opens no
 *   descriptor until a *_fd call asks for one.
 * - Connection set-up takes no process-wide lock: each server guards
 *   its backlog with a lock of its own and each client its state; the
 *   name table is split into buckets that lookups only read-lock.
 *   Messages take none of these.  polyserver_accept and
 *   polyclient_endpoint spin briefly before they sleep, as pipe waits
 *   do, and use no CPU while idle.
 * - A client refused during polyserver_refuse or polyserver_shutdown sees
 *   ECONNREFUSED on its endpoint pipes before its wait, descriptor and
 *   notifier report the refusal.
 * - polyclient_endpoint with timeout 0 while the attempt is undecided
 *   fails with EAGAIN.
 * - A connect to a server with an accept call waiting (an empty backlog,
 *   a timeout other than 0) is accepted by the connect itself, for the
 *   accept that has waited longest: it never enters the backlog, and the
 *   decision is complete when polyclient_connect returns, so the connect
 *   notifier runs inside it, on the connecting thread, and
 *   polyclient_endpoint(cl, &ep, 0) succeeds at once.  That accept
 *   returns the connection when it runs (in slot 0 for accept_many, with
 *   any attempts queued behind it since).  The connection no longer
 *   waits for the accepting thread to wake.  The accept notifier is
 *   still called, as for a backlog that was empty and is not, though
 *   the attempt has been taken; polyserver_accept_fd never shows it.
 */
#ifndef POLYSOCKET_POLYSOCKET_H
#define POLYSOCKET_POLYSOCKET_H

#include <polysocket/polypipe.h>

#define POLYSOCKET_VERSION_MAJOR 0
#define POLYSOCKET_VERSION_MINOR 1
#define POLYSOCKET_VERSION_PATCH 0
#define POLYSOCKET_VERSION_STRING "0.1.0"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct polyserver polyserver;
typedef struct polyclient polyclient;

/* polyendpoint: one side of a connection. */
typedef struct polyendpoint {
	polypipe *rd; /* messages from the peer */
	polypipe *wr; /* messages to the peer */
} polyendpoint;

/*
 * polyserver_create: a server, accepting, with an unbounded backlog.
 * Free it with polyserver_close.  Errors: ENOMEM, EAGAIN.
 */
POLYSOCKET_EXPORT polyserver *polyserver_create(void);

/*
 * polyserver_set_backlog: at most max (>= 1) pending attempts; a connect
 * beyond that fails with EAGAIN.  Lowering it keeps the attempts already
 * pending.  After shutdown returns 0 and has no effect.  Errors: EINVAL.
 */
POLYSOCKET_EXPORT int polyserver_set_backlog(polyserver *srv, size_t max);

/*
 * polyserver_accept: takes the oldest pending attempt, fills *ep (the
 * caller owns both pipes and closes them with polyendpoint_close),
 * completes the client's wait, fires its connect notifier and returns 0.
 * Waits per timeout_ms while none is pending.  Every call ends a refusing
 * period, even one that fails with EAGAIN or ETIMEDOUT.  Errors: EINVAL,
 * ESHUTDOWN (also wakes blocked callers), EAGAIN, ETIMEDOUT.
 */
POLYSOCKET_EXPORT int polyserver_accept(polyserver *srv, polyendpoint *ep,
                                        int timeout_ms);

/*
 * polyserver_accept_many: like polyserver_accept, but once an attempt is
 * pending accepts up to max of them, oldest first, under one lock, and
 * returns how many; eps past that count are left untouched.  Errors as
 * polyserver_accept, and EINVAL for max 0.
 */
POLYSOCKET_EXPORT ssize_t polyserver_accept_many(polyserver *srv,
                                                 polyendpoint *eps, size_t max,
                                                 int timeout_ms);

/*
 * polyserver_refuse: refuses every pending attempt (each client sees
 * ECONNREFUSED in its wait, on its endpoint pipes, on its descriptor and
 * through its notifier) and returns how many.  New connects fail with
 * ECONNREFUSED until the next polyserver_accept or
 * polyserver_accept_many call.  After shutdown returns 0.  Never blocks.
 * Errors: EINVAL.
 */
POLYSOCKET_EXPORT int polyserver_refuse(polyserver *srv);

/* polyserver_pending: whether an attempt is waiting (false for NULL). */
POLYSOCKET_EXPORT bool polyserver_pending(polyserver *srv);

/*
 * polyserver_accept_fd: an eventfd readable while polyserver_accept(srv,
 * ep, 0) would not fail with EAGAIN (an attempt is pending, or the server
 * is shut down).  Owned by the library, as in polypipe_read_fd.  Errors:
 * EINVAL, EMFILE, ENFILE, ENOMEM.
 */
POLYSOCKET_EXPORT int polyserver_accept_fd(polyserver *srv);

/*
 * polyserver_set_accept_notify: fn(arg) is called once per transition of
 * the backlog from empty to non-empty, and once at the first shutdown.
 * Removal guarantee as in polypipe_set_read_notify.  Errors: EINVAL.
 */
POLYSOCKET_EXPORT int polyserver_set_accept_notify(polyserver *srv,
                                                   polypipe_notify_fn *fn,
                                                   void *arg);

/*
 * polyserver_bind: registers the server under name (1 to 255 bytes) in a
 * process-wide table for polyclient_connect_name.  The name is released
 * at shutdown or close.  Errors: EINVAL (NULL, "", the server already has
 * a name), ENAMETOOLONG, ESHUTDOWN, EADDRINUSE, ENOMEM.
 */
POLYSOCKET_EXPORT int polyserver_bind(polyserver *srv, const char *name);

/*
 * polyserver_shutdown: for good: refuses all pending attempts, makes new
 * connects fail with ECONNREFUSED, wakes blocked accepts with ESHUTDOWN,
 * releases the name.  Accepted endpoints are not affected.  Idempotent.
 * Errors: EINVAL.
 */
POLYSOCKET_EXPORT int polyserver_shutdown(polyserver *srv);

/*
 * polyserver_close: removes the accept notifier, shuts down, then frees
 * the server; NULL does nothing.  Accepted endpoints stay open and clients
 * may outlive the server.
 */
POLYSOCKET_EXPORT void polyserver_close(polyserver *srv);

/*
 * polyclient_create: an unconnected client whose connection will be two
 * pipes of the given capacity (>= 1).  Free it with polyclient_close.
 * Errors: EINVAL, ENOMEM, EAGAIN.
 */
POLYSOCKET_EXPORT polyclient *polyclient_create(size_t capacity);

/*
 * polyclient_connect: queues a connection attempt on srv and returns 0 at
 * once.  Errors: EINVAL, EALREADY (an attempt is pending), EISCONN
 * (connected, even if the peer has closed since), ECONNREFUSED (the server
 * is refusing or shut down, or this client was refused before), EAGAIN
 * (the backlog is full).  A connect that fails leaves the client as it
 * was: only a refused queued attempt makes a client refused for good.
 */
POLYSOCKET_EXPORT int polyclient_connect(polyclient *cl, polyserver *srv);

/*
 * polyclient_connect_name: as polyclient_connect, to the server bound to
 * name.  Errors as polyclient_connect; ECONNREFUSED also when no server
 * has the name; EINVAL for NULL or ""; ENAMETOOLONG over 255 bytes.
 */
POLYSOCKET_EXPORT int polyclient_connect_name(polyclient *cl,
                                              const char *name);

/*
 * polyclient_endpoint: waits per timeout_ms until the server decides; once
 * accepted fills *ep and returns 0 (at once on later calls).  The pipes
 * belong to the client: never close them.  Errors: EINVAL, ENOTCONN (no
 * attempt queued), ECONNREFUSED, EAGAIN, ETIMEDOUT.
 */
POLYSOCKET_EXPORT int polyclient_endpoint(polyclient *cl, polyendpoint *ep,
                                          int timeout_ms);

/*
 * polyclient_endpoint_async: fills *ep at once, before acceptance.
 * Messages written are buffered and reach the server after it accepts; if
 * it refuses, the pipes carry ECONNREFUSED and the messages still buffered
 * towards the server are destroyed.  The same pipes as
 * polyclient_endpoint's.  Errors: EINVAL, ENOTCONN, ECONNREFUSED.
 */
POLYSOCKET_EXPORT int polyclient_endpoint_async(polyclient *cl,
                                                polyendpoint *ep);

/*
 * polyclient_connect_fd: an eventfd that becomes readable once the attempt
 * is decided (accepted or refused) and stays readable.  Owned by the
 * library.  Errors: EINVAL, ENOTCONN (before connect), EMFILE, ENFILE,
 * ENOMEM.
 */
POLYSOCKET_EXPORT int polyclient_connect_fd(polyclient *cl);

/*
 * polyclient_set_connect_notify: fn(arg) is called once when the attempt
 * is decided; if it is already decided, at once from this thread.  May be
 * set before connect.  Removal guarantee as in polypipe_set_read_notify.
 * Errors: EINVAL.
 */
POLYSOCKET_EXPORT int polyclient_set_connect_notify(polyclient *cl,
                                                    polypipe_notify_fn *fn,
                                                    void *arg);

/*
 * polyclient_close: withdraws a pending attempt (accept never returns it;
 * messages written on the asynchronous endpoint are destroyed before this
 * returns), closes the client's endpoint pipes (the peer sees EOF and
 * EPIPE) and frees the client; NULL does nothing.
 */
POLYSOCKET_EXPORT void polyclient_close(polyclient *cl);

/*
 * polyendpoint_close: closes both pipes of an endpoint the server accepted
 * and sets them to NULL; NULL does nothing.
 */
POLYSOCKET_EXPORT void polyendpoint_close(polyendpoint *ep);

/* polysocket_version: the library's version, "MAJOR.MINOR.PATCH". */
POLYSOCKET_EXPORT const char *polysocket_version(void);

#ifdef __cplusplus
}
#endif

#endif /* POLYSOCKET_POLYSOCKET_H */
