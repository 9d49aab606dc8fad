/*
 * set.c - polyset: one wait for many pipe ends, servers and clients.
 *
 * A set keeps its ready members in the order in which they became ready,
 * in two lists: the rises, where a member's rise (pset_rise, called by
 * pready_flip under the member's owner lock) appends it, and the ready
 * order, from which waits take.  A wait first gathers the rises onto the
 * tail of the ready order, so that the two together are one order.  The
 * rises have a lock of their own (rise), held for a few stores at a time,
 * so a member becoming ready never waits for a wait walking the ready
 * order, nor the wait for it: a producer feeding many members and a
 * consumer draining them meet only on that lock's word.
 *
 * A fall takes the member out at once (pset_fall, under set->lock, which
 * the risers never take), so both lists hold only ready members, apart
 * from a fall on its way.  A member reported and still ready goes back to
 * the tail; a ONESHOT one is held out of both lists until polyset_modify
 * re-arms it.
 *
 * A member's state (PSET_IDLE, PSET_DUE, PSET_HELD) says which of that is
 * true.  Its rise moves it from IDLE to DUE under the owner lock and the
 * rise lock; everything else changes it under the owner lock or set->lock,
 * and never at the same time as a rise of the same member: a rise needs
 * the owner lock, and only finds IDLE a member that nobody else is
 * moving.  Every write of it is a read-modify-write all the same.
 *
 * The membership itself lives in the member's readiness (struct
 * pset_member in struct pready): a set allocates nothing per member.
 *
 * Lock order: a member's owner lock (its pipe's two side locks, a
 * server's lock or a client's), then set->lock, then set->rise.
 * polyset_close, which must go the other way, only tries the owner locks,
 * and lets go of set->lock to retry.
 *
 * Waiters spin briefly on the rise count, for a batch of rises, and on
 * set->seq, which every polyset_wake moves; then they sleep on an
 * eventcount (set->waiters) that a rise wakes after releasing the rise
 * lock.  Only a rise or a wake while somebody sleeps makes a system call,
 * and a rise into a set with a descriptor, once per transition of the
 * whole set from idle to ready (the descriptor is kept under set->rise).
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

/* A rise counts this much in set->rise's word: psync_spin reads it as a
 * count, as it reads a pipe side's. */
#define RISE_ONE ((size_t)1 << PSYNC_CTR_SHIFT)

struct polyset {
	pthread_mutex_t lock;
	struct pset_member *head, *tail; /* lock: the ready order */
	struct pset_member *all;         /* lock: every member */
	bool pending;                    /* lock: a wake not yet taken */
	unsigned tokens;   /* lock: wakes meant for sleepers, untaken */
	unsigned sleepers; /* lock: waiters registered to sleep */
	size_t gathered;   /* lock: set->rise's count at the last gather */
	/* Moves at every wake, under lock; spinning waiters read it
	 * without (relaxed: they take the lock before they look). */
	_Atomic uint32_t seq;
	struct psync_spin spin;
	struct psync_ec waiters; /* waiters asleep */
	/* The risers' part, a line away from the waiters' (the padding is
	 * a hint: the allocation's alignment is calloc's). */
	char pad[64];
	/* Lock and count of rises in one word: a rise appends under the
	 * lock and counts itself in the store that releases it. */
	struct psync_ctr rise;
	struct pset_member *rhead, *rtail; /* rise: the rises */
	/* rise, and lock to read fd: what the descriptor says, kept by the
	 * risers (idle to ready) and by set_sync_fd (everything else). */
	struct psync_efd efd;
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

/* Whether a member in the ready order is ready still (lock held): it is,
 * unless its fall is on its way (pset_fall waits for the lock).  Acquire:
 * pairs with the release in pready_flip; a flip racing with this look
 * is a thread acting on the member, whose own call settles it. */
static bool
member_up(struct pset_member *m)
{
	return atomic_load_explicit(&member_ready(m)->up,
	                            memory_order_acquire);
}

/*
 * Writes a member's state (set->lock held, or the owner lock for a member
 * in no list).  The riser's compare-and-swap (pset_rise) writes it too,
 * under the owner lock and set->rise only, so every write is a
 * read-modify-write: the locks already keep the two from meeting on one
 * member, and an exchange would not lose either if they did.  Relaxed:
 * the locks order what the state says.
 */
static void
member_set(struct pset_member *m, uint8_t state)
{
	(void)atomic_exchange_explicit(&m->state, state, memory_order_relaxed);
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
	m->ordered = true;
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
	m->ordered = false;
}

/* Whether members rose since the last gather (lock held).  Relaxed: a
 * rise racing with this look is gathered under set->rise, which orders
 * the list. */
static bool
set_rose(struct polyset *set)
{
	return psync_ctr_count(&set->rise, memory_order_relaxed) !=
	       set->gathered;
}

/*
 * Moves the rises onto the tail of the ready order (lock held): a moment
 * under set->rise to take the list, then the walk that links it, with
 * set->rise free again.  Nobody else touches a member taken here: a riser
 * only appends IDLE members, and these are DUE.
 */
static void
set_gather(struct polyset *set)
{
	struct pset_member *m, *next;

	if (!set_rose(set))
		return;
	psync_ctr_lock(&set->rise);
	m = set->rhead;
	set->rhead = set->rtail = NULL;
	set->gathered = psync_ctr_count(&set->rise, memory_order_relaxed);
	psync_ctr_unlock(&set->rise);
	CHAOS_POINT();
	for (; m != NULL; m = next) {
		next = m->next;
		set_append(set, m);
	}
}

/* Whether polyset_wait(..., 0) would not fail with EAGAIN (lock held,
 * after a gather, or with set->rise held). */
static bool
set_ready(const struct polyset *set)
{
	return set->head != NULL || set->rhead != NULL || set->pending;
}

/* Brings the descriptor, if any, up to date (lock held). */
static void
set_sync_fd(struct polyset *set)
{
	if (set->efd.fd < 0)
		return;
	psync_ctr_lock(&set->rise);
	psync_efd_update(&set->efd, set_ready(set));
	psync_ctr_unlock(&set->rise);
}

/* Wakes one waiter asleep, if any: for a member due, or a wake (lock
 * held or not; after the change, which the caller published under a
 * lock, then psync_barrier_light). */
static void
set_wake_one(struct polyset *set)
{
	psync_barrier_light();
	psync_ec_wake(&set->waiters, false);
}

/* A member that is ready joins the ready order now, as if it had just
 * risen (lock and owner lock held; m IDLE). */
static void
set_due(struct polyset *set, struct pset_member *m)
{
	set_gather(set);
	member_set(m, PSET_DUE);
	set_append(set, m);
	set_sync_fd(set);
}

void
pset_rise(struct pset_member *m)
{
	struct polyset *set = m->set;
	uint8_t idle = PSET_IDLE;

	/* A held member stays out until re-armed.  Relaxed: the owner
	 * lock orders it against every other write of a member's state
	 * that a rise could meet. */
	if (!atomic_compare_exchange_strong_explicit(
	        &m->state, &idle, PSET_DUE, memory_order_relaxed,
	        memory_order_relaxed))
		return;
	CHAOS_POINT();
	psync_ctr_lock(&set->rise);
	m->next = NULL;
	if (set->rtail != NULL)
		set->rtail->next = m;
	else
		set->rhead = m;
	set->rtail = m;
	psync_efd_update(&set->efd, true);
	/* The store that releases the lock counts the rise: a waiter that
	 * sees the count then finds the list under the lock. */
	psync_ctr_unlock_word(&set->rise,
	                      psync_ctr_word(&set->rise) + RISE_ONE);
	CHAOS_POINT();
	/* The unlock's barrier orders the count before this look, against
	 * the registration of a waiter going to sleep (polyset_wait). The
	 * set outlives the wake: it cannot end this membership without the
	 * owner lock we hold. */
	psync_ec_wake(&set->waiters, false);
}

/* Takes a DUE member out of the lists (lock held). */
static void
set_undue(struct polyset *set, struct pset_member *m)
{
	if (!m->ordered)
		set_gather(set);
	set_unlink(set, m);
	member_set(m, PSET_IDLE);
}

/* Takes m out of the lists if it is in one (lock held): a wait may have
 * dropped it already, seeing its fall. */
static void
set_leave(struct polyset *set, struct pset_member *m)
{
	if (atomic_load_explicit(&m->state, memory_order_relaxed) != PSET_DUE)
		return;
	set_undue(set, m);
	if (set->head == NULL)
		set_sync_fd(set);
}

void
pset_fall(struct pset_member *m)
{
	struct polyset *set = m->set;

	CHAOS_POINT();
	pthread_mutex_lock(&set->lock);
	set_leave(set, m);
	pthread_mutex_unlock(&set->lock);
}

/* Ends a membership (owner lock and set->lock held). */
static void
set_drop(struct polyset *set, struct pset_member *m)
{
	set_leave(set, m);
	member_set(m, PSET_IDLE); /* HELD too */
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
 * errno; what is none of the library's handles is ENOTSOCK to add, and
 * to modify no member (ENOENT), as SPEC.md names them. */
static uint32_t
set_check(polyset *set, void *obj, unsigned flags, int not_handle)
{
	uint32_t kind;

	if (set == NULL || obj == NULL || (flags & ~POLYSET_ONESHOT) != 0) {
		errno = EINVAL;
		return 0;
	}
	kind = set_kind(obj);
	if (kind == 0)
		errno = not_handle;
	return kind;
}

int
polyset_add(polyset *set, void *obj, unsigned flags, void *data)
{
	uint32_t kind = set_check(set, obj, flags, ENOTSOCK);
	struct pset_member *m;
	struct pready *r;
	bool due = false;
	int err = 0;

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
		m->set = set;
		m->obj = obj;
		m->data = data;
		m->flags = flags;
		m->next = m->prev = m->aprev = NULL;
		m->anext = set->all;
		m->ordered = false;
		member_set(m, PSET_IDLE);
		if (set->all != NULL)
			set->all->aprev = m;
		set->all = m;
		/* Ready now counts as becoming ready now. */
		due = atomic_load_explicit(&r->up, memory_order_relaxed);
		if (due)
			set_due(set, m);
		pthread_mutex_unlock(&set->lock);
	}
	if (due)
		set_wake_one(set);
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
	uint32_t kind = set_check(set, obj, flags, ENOENT);
	struct pset_member *m;
	struct pready *r;
	bool due = false;

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
	if (atomic_load_explicit(&m->state, memory_order_relaxed) ==
	    PSET_HELD) {
		member_set(m, PSET_IDLE);
		due = atomic_load_explicit(&r->up, memory_order_relaxed);
		if (due)
			set_due(set, m);
	}
	pthread_mutex_unlock(&set->lock);
	if (due)
		set_wake_one(set);
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
		errno = ENOENT; /* no member, as set_check says */
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
 * held, gathered, the order not empty): each once, ONESHOT ones held, the
 * others back at the tail, behind every member due before they go back.
 */
static size_t
set_take(struct polyset *set, struct polyset_event *evs, size_t max)
{
	struct pset_member *m, *again = NULL, **last = &again;
	size_t n = 0;

	while (n < max && set->head != NULL) {
		m = set->head;
		set_unlink(set, m);
		if (!member_up(m)) {
			/* Its fall is on its way, and will find it gone. */
			member_set(m, PSET_IDLE);
			continue;
		}
		evs[n].obj = m->obj;
		evs[n].data = m->data;
		n++;
		if (m->flags & POLYSET_ONESHOT) {
			member_set(m, PSET_HELD);
		} else {
			*last = m;
			last = &m->next;
		}
	}
	*last = NULL;
	/* Behind the members that rose meanwhile too. */
	set_gather(set);
	while (again != NULL) {
		m = again;
		again = m->next;
		set_append(set, m);
	}
	if (set->head == NULL)
		set_sync_fd(set);
	return n;
}

ssize_t
polyset_wait(polyset *set, struct polyset_event *evs, size_t max,
             int timeout_ms)
{
	struct psync_timer timer = psync_timer(timeout_ms);
	bool timed_out = false, spun = false, woken = false, more;
	uint32_t seq, ecseq;
	size_t n, rises;

	if (set == NULL || evs == NULL || max == 0 ||
	    !psync_timeout_valid(timeout_ms)) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&set->lock);
	for (;;) {
		set_gather(set);
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
				continue; /* every one was falling */
			/* More due than we took: pass them on. */
			more = set->head != NULL;
			pthread_mutex_unlock(&set->lock);
			CHAOS_POINT();
			if (more)
				set_wake_one(set);
			return (ssize_t)n;
		}
		if (set->pending) {
			set->pending = false;
			set_sync_fd(set);
			break;
		}
		if (timeout_ms == 0 || timed_out) {
			pthread_mutex_unlock(&set->lock);
			errno = timeout_ms == 0 ? EAGAIN : ETIMEDOUT;
			return -1;
		}
		seq = atomic_load_explicit(&set->seq, memory_order_relaxed);
		rises = set->gathered;
		if (!spun) {
			/* A member of a busy set is likely due within
			 * microseconds, and more with it: cheaper to wait
			 * for a batch of them running. */
			spun = true;
			pthread_mutex_unlock(&set->lock);
			psync_spin(&set->spin, &set->rise.word, rises,
			           max < 32 ? max : 32, &set->seq, seq);
			CHAOS_POINT();
			pthread_mutex_lock(&set->lock);
			continue;
		}
		/* Registered, under the lock for polyset_wake, and fenced
		 * for the risers: either a rise from now on sees us, or
		 * we see its count below. */
		set->sleepers++;
		ecseq = psync_ec_prepare(&set->waiters);
		pthread_mutex_unlock(&set->lock);
		CHAOS_POINT();
		if (psync_ctr_count(&set->rise, memory_order_relaxed) != rises)
			psync_ec_cancel(&set->waiters, ecseq);
		else
			timed_out =
			    psync_ec_sleep(&set->waiters, ecseq, &timer) != 0;
		pthread_mutex_lock(&set->lock);
		set->sleepers--;
		woken = true;
	}
	pthread_mutex_unlock(&set->lock);
	return 0;
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
	psync_ctr_lock(&set->rise);
	if (set->efd.fd >= 0 || psync_efd_open(&set->efd, set_ready(set)) == 0)
		fd = set->efd.fd;
	psync_ctr_unlock(&set->rise);
	pthread_mutex_unlock(&set->lock);
	return fd;
}

int
polyset_wake(polyset *set)
{
	bool wake = false;

	if (set == NULL) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&set->lock);
	if (set->sleepers > set->tokens) {
		/* One for a waiter registered to sleep: whichever wakes
		 * takes it. */
		set->tokens++;
		wake = true;
	} else if (!set->pending) {
		set->pending = true;
		set_sync_fd(set);
	}
	atomic_store_explicit(
	    &set->seq,
	    atomic_load_explicit(&set->seq, memory_order_relaxed) + 1,
	    memory_order_relaxed);
	pthread_mutex_unlock(&set->lock);
	CHAOS_POINT();
	/* Every sleeper registered under the lock, which we held after
	 * them: the wake finds them counted.  None if every one was woken
	 * already (by a rise) and has not run yet: one of them takes it. */
	if (wake)
		set_wake_one(set);
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
	psync_efd_close(set->efd.fd);
	pthread_mutex_destroy(&set->lock);
	free(set);
}
