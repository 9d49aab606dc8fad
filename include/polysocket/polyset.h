/*
 * polyset.h - one wait, or one descriptor, for many pipes, servers and
 * clients.
 *
 * A polyset does for the library's objects what epoll does for
 * descriptors: one thread, or one descriptor in an event loop, serves any
 * number of pipe ends, servers and clients.  A membership takes no
 * descriptor and at most 64 bytes.  Conventions (errno, timeouts,
 * descriptors) are those of polypipe.h.
 *
 * A member is ready under the same rule as its descriptor: a read end
 * while polypipe_read(..., 0) would not fail with EAGAIN, a write end
 * while polypipe_write(..., 0) would not, a server while
 * polyserver_accept(..., 0) would not, a client once its connection
 * attempt is decided.
 *
 * Choices where the contract is silent:
 * - A member's readiness is kept in step with the member by the calls
 *   that change it, so polyset_wait never visits members that are not
 *   ready: its cost follows the events, not the members.
 * - polyset_wait reports a POLYSET_ONESHOT member once and then holds it
 *   until polyset_modify re-arms it, even if it stays ready; re-arming a
 *   member that is ready makes it due again at once, behind the members
 *   already due.
 * - polyset_add of a client that has not connected yet is allowed: it
 *   becomes ready when a later attempt is decided.
 * - Sets do not nest: a polyset is not a member of another.
 */
#ifndef POLYSOCKET_POLYSET_H
#define POLYSOCKET_POLYSET_H

#include <polysocket/polysocket.h>

#ifdef __cplusplus
extern "C" {
#endif

/* polyset: a set of members waited for together. */
typedef struct polyset polyset;

/* polyset_event: one ready member, as polyset_wait reports it: the
 * object given to polyset_add and the caller's data. */
struct polyset_event {
	void *obj;
	void *data;
};

/* POLYSET_ONESHOT: report the member once, then not again until
 * polyset_modify re-arms it. */
#define POLYSET_ONESHOT 1u

/*
 * polyset_create: an empty set.  Free it with polyset_close.  Opens no
 * descriptor.  Errors: ENOMEM, EAGAIN.
 */
POLYSOCKET_EXPORT polyset *polyset_create(void);

/*
 * polyset_add: makes obj (a polypipe end, a polyserver or a polyclient)
 * a member with flags 0 or POLYSET_ONESHOT; data comes back with each of
 * its events.  An object that is ready when added is reported in its
 * turn.  An object belongs to at most one set.  Never blocks.  Errors:
 * EINVAL (NULL set or obj, unknown flags), ENOTSOCK (obj is none of the
 * library's handles), EEXIST (already in this set), EBUSY (in another
 * set), ENOMEM.
 */
POLYSOCKET_EXPORT int polyset_add(polyset *set, void *obj, unsigned flags,
                                  void *data);

/*
 * polyset_modify: sets a member's flags and data, and re-arms a
 * POLYSET_ONESHOT member.  Never blocks.  Errors: EINVAL (NULL set or
 * obj, unknown flags), ENOENT (not a member of this set, which includes
 * an obj that is none of the library's handles: SPEC.md names ENOENT
 * here, and ENOTSOCK for polyset_add only).
 */
POLYSOCKET_EXPORT int polyset_modify(polyset *set, void *obj, unsigned flags,
                                     void *data);

/*
 * polyset_remove: ends obj's membership; no wait that begins afterwards
 * reports it.  Closing a member ends its membership as well.  Never
 * blocks.  Errors: EINVAL, ENOENT (not a member of this set, as for
 * polyset_modify).
 */
POLYSOCKET_EXPORT int polyset_remove(polyset *set, void *obj);

/*
 * polyset_wait: fills evs with up to max ready members and returns how
 * many (at least 1), or 0 when polyset_wake ended or prevented the wait.
 * Level-triggered and fair: a member is reported at most once per call,
 * members come in the order in which they became ready, and a member
 * still ready after being reported goes behind every other ready member.
 * Waits per timeout_ms while no member is ready.  Any number of threads
 * may wait on one set.  Errors: EINVAL (NULL set or evs, max 0, bad
 * timeout), EAGAIN, ETIMEDOUT.
 */
POLYSOCKET_EXPORT ssize_t polyset_wait(polyset *set, struct polyset_event *evs,
                                       size_t max, int timeout_ms);

/*
 * polyset_fd: an eventfd that polls readable exactly while
 * polyset_wait(set, ..., 0) would not fail with EAGAIN: an armed member
 * is ready, or a wake is pending.  Created on the first call, the same on
 * every call, owned by the library until polyset_close: never read, write
 * or close it.  Errors: EINVAL, EMFILE, ENFILE, ENOMEM; the set keeps
 * working.
 */
POLYSOCKET_EXPORT int polyset_fd(polyset *set);

/*
 * polyset_wake: ends one polyset_wait blocked on the set, which returns
 * 0; with none blocked, the next polyset_wait that finds no member ready
 * returns 0 at once.  Calls made while no wait is blocked count as one.
 * Never blocks; callable from any thread and from notifier callbacks.
 * Errors: EINVAL.
 */
POLYSOCKET_EXPORT int polyset_wake(polyset *set);

/*
 * polyset_close: ends every membership (the members stay open and
 * usable) and frees the set; NULL does nothing.  No thread may be inside
 * another call on the set.
 */
POLYSOCKET_EXPORT void polyset_close(polyset *set);

#ifdef __cplusplus
}
#endif

#endif /* POLYSOCKET_POLYSET_H */
