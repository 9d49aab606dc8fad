/*
 * polypipe.h - a bounded FIFO of void * messages between threads.
 *
 * A polypipe has a read end and a write end.  Any number of threads may
 * read and write at once (MPMC).  Messages are opaque pointers; NULL is a
 * valid message.  Calls that fail return -1 (NULL for pointers) and set
 * errno; they never fail with EINTR.
 *
 * timeout_ms follows poll(2): -1 waits without limit, 0 never waits (the
 * call fails with EAGAIN where it would have to), > 0 waits at least that
 * many milliseconds of CLOCK_MONOTONIC, then fails with ETIMEDOUT.  Other
 * values fail with EINVAL.
 *
 * Arguments are checked before anything else: a NULL handle or pointer, a
 * zero capacity or count, or a bad timeout fails with EINVAL, the wrong
 * end with EBADF, even where the call could otherwise complete.  Then a
 * stored error, then EPIPE, then waiting (EAGAIN, ETIMEDOUT).
 *
 * Choices where the contract is silent:
 * - A call that has to wait spins for up to 10 microseconds before it
 *   sleeps, when another CPU can run its peer and spinning has paid off
 *   lately on that side of the pipe; otherwise it sleeps at once.  An
 *   idle waiter uses no CPU.  A reader spinning on an empty pipe waits,
 *   in that window, for a run of messages (128, or half the capacity if
 *   less), and a writer on a full one for a run of slots (up to 64),
 *   rather than the first; either returns sooner, with what came, once
 *   nothing more has come for 200 ns.  So a stream moves in runs, and
 *   an answer to a request costs its reader at most 200 ns more: only
 *   once, as a wait that got a single message makes the next 15 wait
 *   for one, and a new pipe starts so.
 * - Readers and writers do not share a lock: each side has its own, so
 *   a message passes without either waiting for the other, also on a
 *   pipe with descriptors, notifiers or set memberships.  Once one of
 *   those is asked for on a side, a call that leaves that side unable to
 *   proceed (the last message read, the last slot filled) takes the
 *   other side's lock once, briefly, to record it; the call that makes
 *   it ready again pays only if so.  The first such request on a side
 *   allocates its readiness (under 100 bytes) and may fail with ENOMEM,
 *   as *_fd, the *_notify setters and polyset_add may.
 * - A descriptor is brought up to date by the call that changes what it
 *   says, before that call returns, with one system call made while
 *   that side's lock is held.  On a side with a descriptor or a
 *   notifier, a call that leaves the side unable to proceed first spins
 *   (when another CPU can run the other side) until the other side's
 *   next run of moves comes, or for up to 1 microsecond while nothing
 *   comes, 10 at most: if it comes, the side never stopped being ready,
 *   and neither the descriptor's two system calls nor the notifier's
 *   call are made.  Spins that came to nothing make the next ones skip,
 *   as waits do, so a pipe whose other side does not answer at once
 *   costs next to nothing.  This holds for timeout 0 too: a
 *   polypipe_read(..., 0) that takes the last message of a watched pipe
 *   may return up to that much later.
 * - Buffer memory grows with the messages held (never with the capacity)
 *   and shrinks again as they are read: an idle pipe takes 200 bytes,
 *   and up to 4096 messages the buffer holds at most 5 slots (of 8
 *   bytes) more than the messages; beyond, it grows by an eighth.  The
 *   buffer is halved once a whole buffer's worth of reads found it at
 *   most a quarter full, and grows back by doubling to the size it had.
 *   A write that needs more buffer memory and cannot get it fails with
 *   ENOMEM and takes no message; polypipe_write_many then appends only
 *   what already fits.
 * - Notifiers are edge-triggered: setting one on an end that is already
 *   ready does not call it.  Check the state (or the descriptor) after
 *   setting it.
 * - A notifier or destructor may call any function of this library.  A
 *   thread waiting for a callback to finish (in *_set_*_notify or
 *   polypipe_close) while that callback waits for the same thread
 *   deadlocks, as two threads joining each other would.
 * - After the read end is closed, messages are no longer accepted, so the
 *   destructor is never called for a message after polypipe_close of the
 *   read end has returned.
 * - No function of this library is a cancellation point
 *   (pthread_cancel(3)): a thread with a cancellation pending does not
 *   end inside one, with a lock held or a close half done, but at its
 *   next cancellation point after the call returns.  Blocking calls
 *   are not cancellation points either; wake a blocked thread through
 *   its peer before cancelling it.  Notifiers and destructors are the
 *   caller's code: if one may reach a cancellation point, disable
 *   cancellation (pthread_setcancelstate(3)) around the library calls
 *   that may run it, as a call that ends inside its callback cannot
 *   finish (a later close would wait for that callback forever).
 */
#ifndef POLYSOCKET_POLYPIPE_H
#define POLYSOCKET_POLYPIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifndef POLYSOCKET_EXPORT
#if defined(__GNUC__) && __GNUC__ >= 4
#define POLYSOCKET_EXPORT __attribute__((visibility("default")))
#else
#define POLYSOCKET_EXPORT
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* polypipe: one end of a pipe; the read end and the write end differ. */
typedef struct polypipe polypipe;

/* polypipe_notify_fn: a notifier callback, called with no library lock
 * held from the thread whose call caused the event. */
typedef void polypipe_notify_fn(void *arg);

/* polypipe_dtor_fn: called once for each message no reader took. */
typedef void polypipe_dtor_fn(void *msg, void *arg);

/* POLYPIPE_UNBOUNDED: the largest capacity; memory still follows the
 * messages actually held. */
#define POLYPIPE_UNBOUNDED SIZE_MAX

/*
 * polypipe_create: makes a pipe holding at most capacity messages (1 to
 * POLYPIPE_UNBOUNDED) and returns its read end in *rd and its write end in
 * *wr.  Never blocks.  The caller owns both ends and closes each with
 * polypipe_close.  Errors: EINVAL (NULL pointer, capacity 0), ENOMEM.
 */
POLYSOCKET_EXPORT int polypipe_create(size_t capacity, polypipe **rd,
                                      polypipe **wr);

/*
 * polypipe_read: takes the oldest message into *msg and returns 1.  Once
 * the stream has ended and the buffer is empty it returns 0 after EOF or
 * the write end's close, or -1 with the stored error as errno if an error
 * was set.  Waits per timeout_ms while the buffer is empty and the stream
 * has not ended.  The caller owns the message read.  Errors: EINVAL,
 * EBADF (a write end), EAGAIN, ETIMEDOUT, the stored error.
 */
POLYSOCKET_EXPORT int polypipe_read(polypipe *rd, void **msg, int timeout_ms);

/*
 * polypipe_write: appends msg and returns 0; the pipe owns msg from then
 * on.  Waits per timeout_ms while the pipe is full.  A write that fails
 * leaves msg with the caller.  Errors: EINVAL, EBADF (a read end), the
 * stored error, EPIPE (EOF sent or read end closed; a writer waiting on a
 * full pipe wakes with it), EAGAIN, ETIMEDOUT, ENOMEM.
 */
POLYSOCKET_EXPORT int polypipe_write(polypipe *wr, void *msg, int timeout_ms);

/*
 * polypipe_read_many: takes up to max messages, oldest first, into msgs
 * and returns how many (at least 1); returns 0 and -1 as polypipe_read
 * does.  One lock and at most one wake-up.  Errors as polypipe_read.
 */
POLYSOCKET_EXPORT ssize_t polypipe_read_many(polypipe *rd, void **msgs,
                                             size_t max, int timeout_ms);

/*
 * polypipe_write_many: appends as many of the n messages as fit, in order,
 * waiting only until at least one fits, and returns how many; the pipe
 * owns those, the caller keeps the rest.  One lock and at most one
 * wake-up.  Errors as polypipe_write.
 */
POLYSOCKET_EXPORT ssize_t polypipe_write_many(polypipe *wr, void *const *msgs,
                                              size_t n, int timeout_ms);

/*
 * polypipe_write_eof: ends the stream; readers see 0 once the buffer is
 * drained and blocked writers wake with EPIPE.  Never blocks and needs no
 * free slot.  Idempotent: returns 0 also when the stream already ended or
 * the read end is closed.  Errors: EINVAL, EBADF (a read end).
 */
POLYSOCKET_EXPORT int polypipe_write_eof(polypipe *wr);

/* polypipe_length: messages buffered now (either end; 0 for NULL). */
POLYSOCKET_EXPORT size_t polypipe_length(const polypipe *p);

/* polypipe_capacity: the pipe's capacity (either end; 0 for NULL). */
POLYSOCKET_EXPORT size_t polypipe_capacity(const polypipe *p);

/*
 * polypipe_eof: whether the stream has ended, by EOF, by the write end's
 * close or by an error; messages may remain.  Closing only the read end
 * does not end the stream.  Either end; false for NULL.
 */
POLYSOCKET_EXPORT bool polypipe_eof(const polypipe *p);

/*
 * polypipe_read_fd: an eventfd that polls readable (POLLIN) exactly while
 * a message is buffered or the stream has ended, that is while
 * polypipe_read(rd, &m, 0) would not fail with EAGAIN.  Created on the
 * first call, the same on every call, owned by the library until the end
 * is closed: never read, write or close it.  Errors: EINVAL, EBADF (a
 * write end), EMFILE, ENFILE, ENOMEM; the pipe keeps working.
 */
POLYSOCKET_EXPORT int polypipe_read_fd(polypipe *rd);

/*
 * polypipe_write_fd: likewise for the write end: readable while a write
 * would not wait (a slot is free, or the write would fail at once: EOF
 * sent, read end closed, error set).  Errors: EINVAL, EBADF (a read end),
 * EMFILE, ENFILE, ENOMEM.
 */
POLYSOCKET_EXPORT int polypipe_write_fd(polypipe *wr);

/*
 * polypipe_set_read_notify: fn(arg) is called on every transition of the
 * read side from "would wait" to "would not wait": the first message into
 * an empty pipe, or the end of the stream while it is empty.  fn NULL
 * removes it.  Once this returns, the previous callback is not running and
 * will not be called again, unless this call was made from inside that
 * callback (then it returns at once).  Errors: EINVAL, EBADF (write end).
 */
POLYSOCKET_EXPORT int
polypipe_set_read_notify(polypipe *rd, polypipe_notify_fn *fn, void *arg);

/*
 * polypipe_set_write_notify: the same for the write side: every
 * transition from full to not full, and EOF sent, read end closed or error
 * set while full.  Errors: EINVAL, EBADF (a read end).
 */
POLYSOCKET_EXPORT int
polypipe_set_write_notify(polypipe *wr, polypipe_notify_fn *fn, void *arg);

/*
 * polypipe_set_destructor: fn(msg, arg) is called exactly once for every
 * message the pipe accepted that no reader took (those still buffered when
 * the read end is closed), with no lock held, from the thread whose call
 * releases them, before that call returns.  One per pipe, set from either
 * end; the last set wins; fn NULL removes it (messages are then dropped
 * silently).  Errors: EINVAL.
 */
POLYSOCKET_EXPORT int polypipe_set_destructor(polypipe *p,
                                              polypipe_dtor_fn *fn, void *arg);

/*
 * polypipe_set_error: stores err (> 0) as the pipe's error, from either
 * end.  The first error wins; later calls return 0 and change nothing.
 * Ends the stream and wakes every waiting thread: writers fail with err
 * from then on, readers drain the buffer and then fail with err.  Errors:
 * EINVAL (NULL, err <= 0).
 */
POLYSOCKET_EXPORT int polypipe_set_error(polypipe *p, int err);

/*
 * polypipe_get_error: the stored error, or 0 if none is set (closing an
 * end is not an error).  Never blocks.  Errors: EINVAL (NULL), returning
 * -1, as every function that returns int.
 */
POLYSOCKET_EXPORT int polypipe_get_error(const polypipe *p);

/*
 * polypipe_close: releases this end; NULL does nothing.  Removes this
 * end's notifier first (it is not called by the close).  Closing the
 * write end ends the stream; closing the read end makes writers fail with
 * EPIPE and hands the buffered messages to the destructor before it
 * returns.  Memory is freed when both ends are closed.  The handle must
 * not be in use by another thread, nor used afterwards.
 */
POLYSOCKET_EXPORT void polypipe_close(polypipe *p);

#ifdef __cplusplus
}
#endif

#endif /* POLYSOCKET_POLYPIPE_H */
