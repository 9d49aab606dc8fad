/*
 * ready.h - readiness: one transition, three views.
 *
 * Everything a thread can wait for (a pipe's read side, its write side, a
 * server's backlog, a client's decision) has a readiness: "would not
 * wait".  Its descriptor, its notifier and its set membership are three
 * views of the same transitions of that one bit, so they live together in
 * struct pready, and the object that owns it only says when the bit flips
 * (the role nng's pollable.c plays for its message queue).
 *
 * The owner serialises the flips: every pready_flip of one pready is made
 * under one lock of the owner's (the pipe side lock that the riser holds,
 * or the server's or the client's own lock), its "owner lock" below.
 * pready_flip updates the set membership at once, under that lock and one
 * of the set's, so a set never sees the flips out of order.  The descriptor
 * and the notifier are brought up to date afterwards, with no owner lock held,
 * by pready_after: the descriptor under a mutex of its own that re-reads the
 * bit, so whichever update runs last leaves it exact.
 *
 * Lock order: owner lock(s), then the polyset's locks (set.c) or a
 * pready_fd's lock; nothing else is taken under those, and a notifier is
 * called with no lock held at all.
 */
#ifndef POLYSOCKET_READY_H
#define POLYSOCKET_READY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "common/sync.h"

struct polyset;

/*
 * The first word of every handle says what it is, so that polyset_add
 * can tell a pipe end from a server or a client, and anything else from
 * all of them.
 */
#define PTAG_PIPE_RD 0x70725264u /* "prRd" */
#define PTAG_PIPE_WR 0x70725772u /* "prWr" */
#define PTAG_SERVER 0x70735276u  /* "psRv" */
#define PTAG_CLIENT 0x7073436cu  /* "psCl" */

/*
 * A membership of a polyset, inside the pready of its member.  set, obj,
 * data and flags change under the owner lock and the set's lock both, so
 * either one suffices to read them.  state is written by atomic
 * read-modify-write only (set.c says by whom).  The links belong to
 * whichever list holds the member: the set's rises (next alone, under the
 * set's rise lock) or its ready order (under the set's lock); a member
 * passes from the first to the second under both.
 */
enum {
	PSET_IDLE, /* in neither list: not ready, or ready before joining */
	PSET_DUE,  /* in the rises or the ready order */
	PSET_HELD  /* ONESHOT, reported, not re-armed since */
};

struct pset_member {
	struct polyset *set; /* NULL: in no set */
	void *obj;           /* the handle given to polyset_add */
	void *data;
	struct pset_member *next, *prev;   /* the rises, or the ready order */
	struct pset_member *anext, *aprev; /* all the set's members */
	unsigned flags;                    /* POLYSET_ONESHOT */
	_Atomic uint8_t state;             /* PSET_IDLE, PSET_DUE, PSET_HELD */
	bool ordered; /* set's lock: in the ready order, not the rises */
};

/* The descriptor and the notifier, allocated when first asked for. */
struct pready_fd {
	pthread_mutex_t lock;      /* efd, notify */
	struct psync_event settle; /* notifier calls ending */
	struct psync_efd efd;
	struct psync_notifier notify;
};

struct pready {
	/* What the three views say: ready.  Written under the owner lock;
	 * read by pready_after under fdn->lock (acquire: pairs with the
	 * release in pready_flip, though the mutexes already order it). */
	_Atomic bool up;
	/* Set once under the owner lock, never freed before the pready:
	 * release, acquire by pready_after, which runs without it. */
	struct pready_fd *_Atomic fdn;
	struct pset_member member;
};

/* pready_init: not ready, in no set, with no descriptor. */
void pready_init(struct pready *r, bool up);

/* pready_destroy: frees the descriptor part and closes the descriptor.
 * The owner is going: nobody else uses r. */
void pready_destroy(struct pready *r);

/*
 * pready_flip: the readiness becomes up (owner lock held), which must
 * differ from what it was.  Tells the set, if any (pset_rise, pset_fall),
 * which wakes a thread asleep on it for a member that became due.  The
 * caller then calls pready_after once the owner lock is released.
 */
void pready_flip(struct pready *r, bool up);

/*
 * pready_after: brings the descriptor up to date (with one system call
 * if what it says changes) and, if fire, calls the notifier.  No owner
 * lock held; the caller keeps r alive, also across the notifier, which
 * may close the owner.
 */
void pready_after(struct pready *r, bool fire);

/* pready_fd_get: the descriptor part, allocated on first use (owner lock
 * held, so the state it starts from is exact): NULL with ENOMEM. */
struct pready_fd *pready_fd_get(struct pready *r);

/* pready_efd: the descriptor, created on first use (owner lock held):
 * -1 with errno EMFILE, ENFILE or ENOMEM. */
int pready_efd(struct pready *r);

/*
 * pready_set_notify: replaces the notifier and waits for the calls of the
 * one replaced (no owner lock held; fdn allocated).  Removing one that was
 * never set needs no fdn: r->fdn NULL then does nothing.
 */
void pready_set_notify(struct pready *r, polypipe_notify_fn *fn, void *arg);

/*
 * pready_release: for an owner being closed (no owner lock held): removes
 * the notifier, waiting for its calls, and detaches the descriptor, which
 * it returns (or -1) for the caller to close.
 */
int pready_release(struct pready *r);

/*
 * The polyset half (polyset/set.c), for the owners: pset_detach ends a
 * membership (owner lock held; r->member.set not NULL).
 */
void pset_detach(struct pready *r);

/*
 * pset_rise, pset_fall: the member's readiness changed (owner lock held,
 * member.set not NULL; r->up already says so).  A rise takes only the
 * set's rise lock, for a moment, whatever the set's waiters are doing; a
 * fall takes the member out of the ready order at once, under the set's
 * lock.
 */
void pset_rise(struct pset_member *m);
void pset_fall(struct pset_member *m);

#endif /* POLYSOCKET_READY_H */
