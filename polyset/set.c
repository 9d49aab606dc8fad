/*
 * set.c - polyset: one wait for many pipe ends, servers and clients.
 *
 * A set keeps its ready members in a list, in the order in which they
 * became ready: the ready order.  A member's readiness moves it into that
 * list as it rises (pset_rise, called by pready_flip under the member's
 * owner lock), so a wait only takes from the head of the list and never
 * visits an idle member.  A fall takes it out at once in a set with a
 * descriptor; otherwise it stays until a wait comes to it and drops it
 * (pset_fall), or until it rises again and takes a new turn.
 * A member reported and still ready goes back to the tail; a ONESHOT one
 * is held out of the list until polyset_modify re-arms it.
 *
 * The membership itself lives in the member's readiness (struct
 * pset_member in struct pready): a set allocates nothing per member.
 *
 * Lock order: a member's owner lock (its pipe's two side locks, a
 * server's lock or a client's), then set->lock.  polyset_close, which must go
 * the other way, only tries the owner locks, and lets go of set->lock to
 * retry.
 *
 * Waiters spin briefly on set->seq, which moves at every rise and wake,
 * then sleep on set->sleepers.  Only a rise or a wake while somebody
 * sleeps makes a system call, and a rise while the set has a descriptor,
 * once per transition of the whole set from idle to ready.
 */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

#include <polysocket/polyset.h>

#include "common/ready.h"
#include "common/sync.h"
#include "polypipe/pipe.h"
#include "polysocket/client.h"
#include "polysocket/server.h"

struct polyset {
	pthread_mutex_t lock;
	struct pset_member *head, *tail; /* lock: the ready order */
	struct pset_member *all;         /* lock: every member */
	bool pending;                    /* lock: a wake not yet taken */
	unsigned tokens; /* lock: wakes sent to sleepers, untaken */
	struct psync_event sleepers; /* lock: waiters asleep */
	struct psync_efd efd;        /* lock */
	/* Set, once, under lock when the descriptor is made: falls leave
	 * the ready order at once from then on (pset_fall). */
	_Atomic bool eager;
	/* Moves at every rise and wake, under lock; spinning waiters read
	 * it without (relaxed: they take the lock before they look). */
	_Atomic uint32_t seq;
	struct psync_spin spin;
	_Atomic size_t still; /* never moves: psync_spin's other counter */
};

/* The handle's kind, or 0 for none of the library's (ENOTSOCK). */
static uint32_t
set_kind(void *obj)
{
	uint32_t tag = *(const uint32_t *)obj;

	switch (tag) {
	case PTAG_PIPE_RD:
	case PTAG_PIPE_WR:
	case PTAG_SERVER:
	case PTAG_CLIENT:
		return tag;
	default:
		return 0;
	}
}

/*
 * The owner lock of obj's readiness: takes it and returns the readiness
 * (allocating a pipe side's on first use), or NULL with ENOMEM.
 */
static struct pready *
owner_lock(void *obj, uint32_t kind)
{
	switch (kind) {
	case PTAG_SERVER:
		return server_ready_lock(obj);
	case PTAG_CLIENT:
		return client_ready_lock(obj);
	default:
		return pipe_ready_lock(obj);
	}
}

static bool
owner_trylock(void *obj, uint32_t kind)
{
	switch (kind) {
	case PTAG_SERVER:
		return server_ready_trylock(obj);
	case PTAG_CLIENT:
		return client_ready_trylock(obj);
	default:
		return pipe_ready_trylock(obj);
	}
}

static void
owner_unlock(void *obj, uint32_t kind)
{
	switch (kind) {
	case PTAG_SERVER:
		server_ready_unlock(obj);
		break;
	case PTAG_CLIENT:
		client_ready_unlock(obj);
		break;
	default:
		pipe_ready_unlock(obj);
		break;
	}
}

/* The readiness a membership belongs to. */
static struct pready *
member_ready(struct pset_member *m)
{
	return (struct pready *)((char *)m - offsetof(struct pready, member));
}

/* Whether a member in the ready order is ready still (lock held): a fall
 * in a set without a descriptor leaves it there (pset_fall).  Acquire:
 * pairs with the release in pready_flip; a flip racing with this look
 * is a thread acting on the member, whose own call settles it. */
static bool
member_up(struct pset_member *m)
{
	return atomic_load_explicit(&member_ready(m)->up,
	                            memory_order_acquire);
}

/* The ready order (lock held). */
static void
set_append(struct polyset *set, struct pset_member *m)
{
	m->next = NULL;
	m->prev = set->tail;
	if (set->tail != NULL)
		set->tail->next = m;
	else
		set->head = m;
	set->tail = m;
	m->queued = true;
}

static void
set_unlink(struct polyset *set, struct pset_member *m)
{
	if (m->prev != NULL)
		m->prev->next = m->next;
	else
		set->head = m->next;
	if (m->next != NULL)
		m->next->prev = m->prev;
	else
		set->tail = m->prev;
	m->queued = false;
}

/* Whether the set's descriptor, if any, says readable (lock held). */
static void
set_update_fd(struct polyset *set)
{
	psync_efd_update(&set->efd, set->head != NULL || set->pending);
}

/* Tells spinning waiters that something changed (lock held: the only
 * writer, so a plain load and store; relaxed, as they take the lock
 * before they look). */
static void
set_moved(struct polyset *set)
{
	atomic_store_explicit(
	    &set->seq,
	    atomic_load_explicit(&set->seq, memory_order_relaxed) + 1,
	    memory_order_relaxed);
}

/*
 * A member became due (lock held): appended to the ready order, and a
 * waiter asleep woken to take it.  Returns how many to kick once the
 * lock is released.
 */
static int
set_due(struct polyset *set, struct pset_member *m)
{
	bool was_idle = set->head == NULL;

	set_append(set, m);
	if (was_idle)
		set_update_fd(set);
	set_moved(set);
	return psync_event_signal(&set->sleepers, false);
}

void
pset_rise(struct pset_member *m)
{
	struct polyset *set = m->set;
	int kick = 0;

	pthread_mutex_lock(&set->lock);
	/* Still in the order from before its fall: ready again, it takes
	 * a new turn. */
	if (m->queued)
		set_unlink(set, m);
	if (!m->held)
		kick = set_due(set, m);
	pthread_mutex_unlock(&set->lock);
	CHAOS_POINT();
	/* The set outlives the kick: it cannot end this membership
	 * without the owner lock we hold. */
	psync_event_kick(&set->sleepers, kick);
}

void
pset_fall(struct pset_member *m)
{
	struct polyset *set = m->set;

	/* Orders our r->up = false before the look at eager, against
	 * set_make_eager's heavy barrier between setting eager and looking
	 * at the members: either it sees the fall or we see it eager. */
	psync_barrier_light();
	CHAOS_POINT();
	if (!atomic_load_explicit(&set->eager, memory_order_relaxed))
		return;
	pthread_mutex_lock(&set->lock);
	if (m->queued) {
		set_unlink(set, m);
		if (set->head == NULL)
			set_update_fd(set);
	}
	pthread_mutex_unlock(&set->lock);
}

/* Ends a membership (owner lock and set->lock held). */
static void
set_drop(struct polyset *set, struct pset_member *m)
{
	if (m->queued) {
		set_unlink(set, m);
		if (set->head == NULL)
			set_update_fd(set);
	}
	if (m->aprev != NULL)
		m->aprev->anext = m->anext;
	else
		set->all = m->anext;
	if (m->anext != NULL)
		m->anext->aprev = m->aprev;
	m->set = NULL;
}

void
pset_detach(struct pready *r)
{
	struct polyset *set = r->member.set;

	pthread_mutex_lock(&set->lock);
	set_drop(set, &r->member);
	pthread_mutex_unlock(&set->lock);
}

polyset *
polyset_create(void)
{
	polyset *set = psync_calloc(1, sizeof *set);
	int err;

	if (set == NULL)
		return NULL;
	err = pthread_mutex_init(&set->lock, NULL);
	if (err != 0) {
		free(set);
		errno = err;
		return NULL;
	}
	set->efd = psync_efd_none();
	return set;
}

/* Checks set, obj and flags for add and modify: the kind, or 0 with
 * errno. */
static uint32_t
set_check(polyset *set, void *obj, unsigned flags)
{
	uint32_t kind;

	if (set == NULL || obj == NULL || (flags & ~POLYSET_ONESHOT) != 0) {
		errno = EINVAL;
		return 0;
	}
	kind = set_kind(obj);
	if (kind == 0)
		errno = ENOTSOCK;
	return kind;
}

int
polyset_add(polyset *set, void *obj, unsigned flags, void *data)
{
	uint32_t kind = set_check(set, obj, flags);
	struct pset_member *m;
	struct pready *r;
	int err = 0, kick = 0;

	if (kind == 0)
		return -1;
	r = owner_lock(obj, kind);
	if (r == NULL)
		return -1;
	m = &r->member;
	if (m->set == set) {
		err = EEXIST;
	} else if (m->set != NULL) {
		err = EBUSY;
	} else {
		pthread_mutex_lock(&set->lock);
		*m = (struct pset_member){
			.set = set,
			.obj = obj,
			.data = data,
			.flags = flags,
			.anext = set->all,
		};
		if (set->all != NULL)
			set->all->aprev = m;
		set->all = m;
		/* Ready now counts as becoming ready now. */
		if (atomic_load_explicit(&r->up, memory_order_relaxed))
			kick = set_due(set, m);
		pthread_mutex_unlock(&set->lock);
	}
	psync_event_kick(&set->sleepers, kick);
	owner_unlock(obj, kind);
	if (err != 0) {
		errno = err;
		return -1;
	}
	return 0;
}

int
polyset_modify(polyset *set, void *obj, unsigned flags, void *data)
{
	uint32_t kind = set_check(set, obj, flags);
	struct pset_member *m;
	struct pready *r;
	int kick = 0;

	if (kind == 0)
		return -1;
	r = owner_lock(obj, kind);
	if (r == NULL)
		return -1;
	m = &r->member;
	if (m->set != set) {
		owner_unlock(obj, kind);
		errno = ENOENT;
		return -1;
	}
	pthread_mutex_lock(&set->lock);
	m->flags = flags;
	m->data = data;
	if (m->held) {
		m->held = false;
		if (atomic_load_explicit(&r->up, memory_order_relaxed))
			kick = set_due(set, m);
	}
	pthread_mutex_unlock(&set->lock);
	psync_event_kick(&set->sleepers, kick);
	owner_unlock(obj, kind);
	return 0;
}

int
polyset_remove(polyset *set, void *obj)
{
	uint32_t kind;
	struct pready *r;

	if (set == NULL || obj == NULL) {
		errno = EINVAL;
		return -1;
	}
	kind = set_kind(obj);
	if (kind == 0) {
		errno = ENOTSOCK;
		return -1;
	}
	r = owner_lock(obj, kind);
	if (r == NULL)
		return -1;
	if (r->member.set != set) {
		owner_unlock(obj, kind);
		errno = ENOENT;
		return -1;
	}
	pset_detach(r);
	owner_unlock(obj, kind);
	return 0;
}

/*
 * Takes up to max members off the head of the ready order into evs (lock
 * held, the order not empty): each once, ONESHOT ones held, the others
 * back at the tail, behind every member that was due before them.
 */
static size_t
set_take(struct polyset *set, struct polyset_event *evs, size_t max)
{
	struct pset_member *m, *again = NULL, **last = &again;
	size_t n = 0;

	while (n < max && set->head != NULL) {
		m = set->head;
		set_unlink(set, m);
		if (!member_up(m))
			continue; /* fell since it was due */
		evs[n].obj = m->obj;
		evs[n].data = m->data;
		n++;
		if (m->flags & POLYSET_ONESHOT) {
			m->held = true;
		} else {
			*last = m;
			last = &m->next;
		}
	}
	*last = NULL;
	while (again != NULL) {
		m = again;
		again = m->next;
		set_append(set, m);
	}
	if (set->head == NULL)
		set_update_fd(set);
	return n;
}

ssize_t
polyset_wait(polyset *set, struct polyset_event *evs, size_t max,
             int timeout_ms)
{
	struct psync_timer timer = psync_timer(timeout_ms);
	bool timed_out = false, spun = false, woken = false;
	uint32_t seq;
	size_t n;
	int kick = 0, err;

	if (set == NULL || evs == NULL || max == 0 ||
	    !psync_timeout_valid(timeout_ms)) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&set->lock);
	for (;;) {
		if (woken && set->tokens > 0) {
			/* Ended by polyset_wake: any ready member is
			 * reported all the same, and the wake then stays
			 * pending for the next wait. */
			set->tokens--;
			if (set->head == NULL)
				break;
			set->pending = true;
		}
		if (set->head != NULL) {
			n = set_take(set, evs, max);
			if (n == 0)
				continue; /* every one had fallen */
			/* More due than we took: pass them on. */
			if (set->head != NULL)
				kick =
				    psync_event_signal(&set->sleepers, false);
			pthread_mutex_unlock(&set->lock);
			CHAOS_POINT();
			psync_event_kick(&set->sleepers, kick);
			return (ssize_t)n;
		}
		if (set->pending) {
			set->pending = false;
			set_update_fd(set);
			break;
		}
		if (timeout_ms == 0 || timed_out) {
			pthread_mutex_unlock(&set->lock);
			errno = timeout_ms == 0 ? EAGAIN : ETIMEDOUT;
			return -1;
		}
		if (!spun) {
			/* A member of a busy set is likely due within
			 * microseconds: cheaper to wait for it running. */
			spun = true;
			seq = atomic_load_explicit(&set->seq,
			                           memory_order_relaxed);
			pthread_mutex_unlock(&set->lock);
			psync_spin(&set->spin, &set->still, 0, 1, &set->seq,
			           seq);
			CHAOS_POINT();
			pthread_mutex_lock(&set->lock);
			continue;
		}
		err = psync_event_wait(&set->sleepers, &set->lock, &timer);
		timed_out = err != 0;
		woken = true;
	}
	pthread_mutex_unlock(&set->lock);
	return 0;
}

/*
 * Makes falls leave the ready order at once from now on, and drops the
 * members that fell before (lock held): a descriptor says whether a
 * member is ready, so the order must hold only ready ones.
 */
static void
set_make_eager(struct polyset *set)
{
	struct pset_member *m, *next;

	atomic_store_explicit(&set->eager, true, memory_order_relaxed);
	/* Pairs with pset_fall's light barrier. */
	psync_barrier_heavy();
	for (m = set->head; m != NULL; m = next) {
		next = m->next;
		if (!member_up(m))
			set_unlink(set, m);
	}
}

int
polyset_fd(polyset *set)
{
	int fd = -1;

	if (set == NULL) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&set->lock);
	if (set->efd.fd < 0)
		set_make_eager(set);
	if (set->efd.fd >= 0 ||
	    psync_efd_open(&set->efd, set->head != NULL || set->pending) == 0)
		fd = set->efd.fd;
	pthread_mutex_unlock(&set->lock);
	return fd;
}

int
polyset_wake(polyset *set)
{
	int kick = 0;

	if (set == NULL) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&set->lock);
	if (set->sleepers.sleepers > set->tokens) {
		/* One for a waiter asleep: whichever wakes takes it. */
		set->tokens++;
		/* None if every sleeper was sent a wake-up already (by a
		 * rise) and has not run yet: one of them takes it. */
		kick = psync_event_signal(&set->sleepers, false);
	} else if (!set->pending) {
		set->pending = true;
		set_update_fd(set);
	}
	set_moved(set);
	pthread_mutex_unlock(&set->lock);
	CHAOS_POINT();
	psync_event_kick(&set->sleepers, kick);
	return 0;
}

void
polyset_close(polyset *set)
{
	struct pset_member *m;
	uint32_t kind;
	void *obj;

	if (set == NULL)
		return;
	pthread_mutex_lock(&set->lock);
	while ((m = set->all) != NULL) {
		/* The member cannot go while it is in the list: its close
		 * takes set->lock to leave it.  Its owner lock comes before
		 * set->lock, so only try it. */
		obj = m->obj;
		kind = set_kind(obj);
		if (!owner_trylock(obj, kind)) {
			pthread_mutex_unlock(&set->lock);
			CHAOS_POINT();
			sched_yield();
			pthread_mutex_lock(&set->lock);
			continue;
		}
		set_drop(set, m);
		owner_unlock(obj, kind);
	}
	pthread_mutex_unlock(&set->lock);
	if (set->efd.fd >= 0)
		close(set->efd.fd);
	pthread_mutex_destroy(&set->lock);
	free(set);
}
