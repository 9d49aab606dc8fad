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
 * pready_flip brings the descriptor and the set membership up to date at
 * once, under that lock, so neither ever sees the flips out of order and
 * the descriptor is exact when the lock is released (one system call when
 * what it says changes, made with the lock held).  The notifier, a pipe's
 * only, is called afterwards with no lock held, by pready_fire.
 *
 * Lock order: owner lock(s), then the polyset's locks (set.c).  A
 * pready_notify's lock is taken with no other held, and a notifier is
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

/* A pipe's notifier, allocated when first set.  A server and a client
 * keep theirs under their own lock. */
struct pready_notify {
	pthread_mutex_t lock;      /* notify */
	struct psync_event settle; /* notifier calls ending */
	struct psync_notifier notify;
};

struct pready {
	/* What the three views say: ready.  Written under the owner lock;
	 * read under it, or by a set looking at a member in its ready order
	 * without it (acquire: pairs with the release in pready_flip). */
	_Atomic bool up;
	/* A descriptor or a notifier: a flip costs a system call or a
	 * callback.  Set under the owner lock; read without it as a hint
	 * (relaxed: a stale false only skips a linger). */
	_Atomic bool costly;
	/* Whether a fall waits for the rise that would undo it (pipes,
	 * costly only). */
	struct psync_linger linger;
	/* The descriptor: owner lock. */
	struct psync_efd efd;
	/* Set once under the owner lock, never freed before the pready:
	 * release, acquire by pready_fire, which runs without it. */
	struct pready_notify *_Atomic ntf;
	struct pset_member member;
};

/* pready_init: not ready, in no set, with no descriptor. */
void pready_init(struct pready *r, bool up);

/* pready_destroy: closes the descriptor, if not released, and frees the
 * notifier.  The owner is going: nobody else uses r. */
void pready_destroy(struct pready *r);

/*
 * pready_flip: the readiness becomes up (owner lock held), which must
 * differ from what it was.  Updates the descriptor and tells the set, if
 * any (pset_rise, pset_fall), which wakes a thread asleep on it for a
 * member that became due.  Whatever the flip published must be visible
 * before: a thread woken by the descriptor looks at once.  After a rise,
 * the caller calls pready_fire once the owner lock is released.
 */
void pready_flip(struct pready *r, bool up);

/*
 * pready_fire: calls the notifier, if one is set.  No owner lock held;
 * the caller keeps r alive across the notifier, which may close the
 * owner.
 */
void pready_fire(struct pready *r);

/* pready_efd: the descriptor, created on first use (owner lock held):
 * -1 with errno EMFILE, ENFILE or ENOMEM. */
int pready_efd(struct pready *r);

/* pready_efd_release: for an owner being closed (owner lock held):
 * detaches the descriptor and returns it (or -1) for the caller to close
 * once the lock is released. */
int pready_efd_release(struct pready *r);

/* pready_notify_get: the notifier part, allocated on first use (owner
 * lock held): NULL with ENOMEM. */
struct pready_notify *pready_notify_get(struct pready *r);

/*
 * pready_set_notify: replaces the notifier and waits for the calls of the
 * one replaced (no owner lock held; ntf allocated).  Removing one that was
 * never set needs no ntf: r->ntf NULL then does nothing.  An owner being
 * closed removes its notifier so first, before it takes its lock.
 */
void pready_set_notify(struct pready *r, polypipe_notify_fn *fn, void *arg);

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
