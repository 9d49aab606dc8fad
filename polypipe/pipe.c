/*
 * pipe.c - polypipe: a bounded MPMC FIFO of void * messages.
 *
 * The messages sit in a ring between two counters: tail (messages ever
 * written) and head (messages ever read).  Each side has a lock and a
 * cache line of its own: writers take the write side's lock and move
 * tail, readers take the read side's lock and move head, and neither
 * takes the other's lock to pass a message.  A side reads the other's
 * counter only when its own copy (head_seen, tail_seen) says the ring is
 * full or empty, so a steady stream moves few cache lines between CPUs.
 *
 * Each side's lock is bit 0 of its counter (psync_ctr): taking it is one
 * compare-and-swap, and the store that publishes the new count releases
 * it.  Waiting is an eventcount per side (psync_ec): a waiter spins
 * briefly on the counter it waits for, for a run of messages or slots
 * rather than one, then registers and sleeps; a mover checks for
 * sleepers after a barrier that is only a compiler barrier where
 * membarrier(2) lets the sleeper pay for both.  So a call that neither
 * waits nor wakes anybody makes no system call.
 *
 * Everything else (EOF, errors, closing, the destructor, growing the
 * ring) takes both sides' locks, write side first.  The read side may
 * only try the write side's lock (for shrinking the ring).
 *
 * Readiness, for descriptors and notifiers, must follow every transition
 * exactly, which the two sides cannot see without a lock in common.  So
 * the first call that asks for a descriptor or sets a notifier makes the
 * pipe "watched" for good: it allocates struct pipe_ext, whose mutex
 * from then on guards everything, every call included, as a single lock
 * would.  The switch happens under both sides' locks; a call of the
 * lock-free kind re-checks the flag whenever it takes its side's lock,
 * and goes over to the mutex.  Pipes nobody polls stay lock-free and
 * small; pipes in a poll loop pay for a system call per transition
 * anyway.
 *
 * The pipe is freed when both ends are closed and no notifier call is in
 * flight (refs).
 */
#include "config.h"

#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/sync.h"
#include "polypipe/pipe.h"

/* Bits of the flags word, kept in both sides' lines. */
enum {
	F_EOF = 1,      /* EOF sent or write end closed */
	F_ERROR = 2,    /* an error is set */
	F_RDCLOSED = 4, /* the read end is closed */
	F_WATCHED = 8,  /* ext exists: every call takes ext->lock */
};
#define F_ENDED (F_EOF | F_ERROR)
#define F_NOWRITE (F_EOF | F_ERROR | F_RDCLOSED)

struct polypipe {
	bool reader; /* the read end; else the write end */
	bool closed; /* all locks */
};

/* What a watched pipe needs besides: allocated on first use. */
struct pipe_ext {
	pthread_mutex_t lock;
	struct psync_event settle;       /* notifier calls ending */
	struct psync_efd efd[2];         /* [reader] */
	struct psync_notifier notify[2]; /* [reader] */
};

#define LINE 64

/* Fields in the first groups are written by their side only, or under
 * both locks; ring and size are in both groups, so that neither side
 * reads the other's line to find the messages. */
struct pipe {
	/* Writers' line: the write side's lock (bit 0 of tail), or both. */
	alignas(LINE) struct {
		struct psync_ctr tail; /* messages ever written; the lock */
		_Atomic uint32_t flags;
		struct psync_spin spin;
		struct psync_ec readers; /* readers waiting for a message */
		size_t tidx;             /* slot of the next write */
		size_t head_seen;        /* <= head */
		void **ring;
		size_t size;
	} w;
	/* Readers' line: the read side's lock (bit 0 of head), or both. */
	alignas(LINE) struct {
		struct psync_ctr head; /* messages ever read; the lock */
		_Atomic uint32_t flags;
		struct psync_spin spin;
		bool crowded; /* over a quarter full, seen since the wrap */
		struct psync_ec writers; /* writers waiting for a slot */
		size_t hidx;             /* slot of the oldest message */
		size_t tail_seen;        /* <= tail */
		void **ring;
		size_t size;
	} r;
	/* Read-mostly: written under both locks. */
	alignas(LINE) size_t capacity; /* immutable */
	size_t peak;                   /* the largest size the ring had */
	struct pipe_ext *_Atomic ext;
	_Atomic int error;     /* first error set, or 0 */
	_Atomic unsigned refs; /* open ends + notifier calls in flight */
	polypipe_dtor_fn *dtor;
	void *dtor_arg;
	struct polypipe rd;
	struct polypipe wr;
};

/* The pipe an end belongs to. */
static struct pipe *
pipe_of(const polypipe *p)
{
	const char *end = (const char *)p;

	return (struct pipe *)(end - (p->reader ? offsetof(struct pipe, rd)
	                                        : offsetof(struct pipe, wr)));
}

/*
 * The ring's size in slots.  It is odd, so that malloc wastes nothing
 * rounding it, and grows RING_STEP slots at a time: with an idle pipe of
 * 200 bytes, a pipe then holds at most 256 + 8 bytes per message at any
 * count up to RING_LINEAR.  Past that, growing a few slots at a time
 * would copy too often: it grows by an eighth.  Below the largest size
 * it had (peak), after a shrink, it doubles: that memory was in use
 * before, and a pipe whose fill swings should not copy its ring dozens
 * of times at each swing.
 */
#define RING_MIN 7
#define RING_STEP 6
#define RING_LINEAR 4096

static size_t
ring_grown(size_t size, size_t need, size_t capacity, size_t peak)
{
	size_t n;

	if (size < RING_MIN)
		n = RING_MIN;
	else if (size < peak)
		n = size < peak / 2 ? 2 * size + 1 : peak;
	else if (size < RING_LINEAR)
		n = size + RING_STEP;
	else
		n = size > SIZE_MAX - size / 8 ? SIZE_MAX : size + size / 8;
	if (n < need)
		n = need | 1;
	return n < capacity ? n : capacity;
}

/* Sets a side's count, keeping its lock bit (the side's lock held, or
 * ext->lock). */
static inline void
ctr_set(struct psync_ctr *c, size_t count)
{
	size_t w = atomic_load_explicit(&c->word, memory_order_relaxed);

	CHAOS_POINT();
	atomic_store_explicit(&c->word, count << 1 | (w & 1),
	                      memory_order_release);
}

static size_t
pipe_len(const struct pipe *pp)
{
	size_t head = psync_ctr_count(&pp->r.head, memory_order_relaxed);

	return psync_ctr_count(&pp->w.tail, memory_order_relaxed) - head;
}

/* Sets flag bits in both lines (both locks, or ext->lock). */
static void
pipe_flag(struct pipe *pp, uint32_t bits)
{
	atomic_fetch_or_explicit(&pp->w.flags, bits, memory_order_release);
	atomic_fetch_or_explicit(&pp->r.flags, bits, memory_order_release);
}

static void
pipe_set_ring(struct pipe *pp, void **ring, size_t size)
{
	pp->w.ring = pp->r.ring = ring;
	pp->w.size = pp->r.size = size;
}

/*
 * Makes room for need messages in all, keeping the order (both locks, or
 * ext->lock).  realloc, then the part of the messages that wrapped round
 * to the front stays there and the part at the end moves up to the new
 * end.  False if the memory is not there; nothing changes then.
 */
static bool
ring_grow(struct pipe *pp, size_t need)
{
	size_t old = pp->w.size, len = pipe_len(pp);
	size_t size = ring_grown(old, need, pp->capacity, pp->peak);
	size_t hidx = pp->r.hidx, upper;
	void **ring;

	if (size <= old)
		return true;
	if (size > SIZE_MAX / sizeof *ring)
		return false;
	ring = psync_realloc(pp->w.ring, size * sizeof *ring);
	if (ring == NULL)
		return false;
	if (len > 0 && hidx + len > old) {
		upper = old - hidx;
		memmove(ring + size - upper, ring + hidx,
		        upper * sizeof *ring);
		hidx = size - upper;
	} else if (len == 0) {
		hidx = 0;
	}
	pipe_set_ring(pp, ring, size);
	if (size > pp->peak)
		pp->peak = size;
	pp->r.hidx = hidx;
	pp->w.tidx = hidx + len < size ? hidx + len : hidx + len - size;
	pp->w.head_seen = psync_ctr_count(&pp->r.head, memory_order_relaxed);
	return true;
}

/*
 * Gives back memory after a burst (both locks, or ext->lock): called at
 * the end of a ring's worth of reads in which no reader found the ring
 * over a quarter full (r.crowded), it halves a ring that is at most a
 * quarter full still.  Deciding on a whole ring's worth of reads keeps a
 * busy pipe whose fill swings from empty to full from resizing at every
 * swing, and lets a stream keep a ring four times the run it reads at.
 */
static void
ring_shrink(struct pipe *pp)
{
	size_t len = pipe_len(pp), size = pp->w.size;
	size_t first, want;
	void **ring;

	if (size < 4 * RING_MIN || len > size / 4)
		return;
	want = (size / 2) | 1;
	ring = psync_malloc(want * sizeof *ring);
	if (ring == NULL)
		return; /* kept as is */
	first = size - pp->r.hidx < len ? size - pp->r.hidx : len;
	memcpy(ring, pp->w.ring + pp->r.hidx, first * sizeof *ring);
	memcpy(ring + first, pp->w.ring, (len - first) * sizeof *ring);
	free(pp->w.ring);
	pipe_set_ring(pp, ring, want);
	pp->r.hidx = 0;
	pp->w.tidx = len;
	/* A writer's room is size - (tail - head_seen): with the smaller
	 * size, an old head_seen would make it wrap round. */
	pp->w.head_seen = psync_ctr_count(&pp->r.head, memory_order_relaxed);
}

/* Messages taken out of a pipe to be destroyed without its locks. */
struct orphans {
	void **ring;
	size_t size;
	size_t head;
	size_t len;
	polypipe_dtor_fn *dtor;
	void *dtor_arg;
};

/* Takes every buffered message out of the pipe (all locks). */
static struct orphans
pipe_take_all(struct pipe *pp)
{
	size_t tail = psync_ctr_count(&pp->w.tail, memory_order_relaxed);
	struct orphans o = {
		.ring = pp->w.ring,
		.size = pp->w.size,
		.head = pp->r.hidx,
		.len = pipe_len(pp),
		.dtor = pp->dtor,
		.dtor_arg = pp->dtor_arg,
	};

	pipe_set_ring(pp, NULL, 0);
	pp->peak = 0;
	pp->r.hidx = pp->w.tidx = 0;
	ctr_set(&pp->r.head, tail);
	pp->r.tail_seen = pp->w.head_seen = tail;
	return o;
}

static void
orphans_destroy(struct orphans *o)
{
	size_t i, j;

	for (i = 0, j = o->head; o->dtor != NULL && i < o->len; i++) {
		o->dtor(o->ring[j], o->dtor_arg);
		if (++j == o->size)
			j = 0;
	}
	free(o->ring);
}

static void
pipe_free(struct pipe *pp)
{
	struct pipe_ext *ext =
	    atomic_load_explicit(&pp->ext, memory_order_relaxed);

	if (ext != NULL) {
		pthread_mutex_destroy(&ext->lock);
		free(ext);
	}
	free(pp->w.ring);
	free(pp);
}

/* Wakes the waiters of both sides: the end of the stream. */
static void
pipe_wake_all(struct pipe *pp)
{
	psync_barrier_light();
	psync_ec_wake(&pp->w.readers, true);
	psync_ec_wake(&pp->r.writers, true);
}

/*
 * Locking.  A pipe not watched takes its sides' locks; a watched one
 * takes ext->lock instead, always.  These return the ext whose lock is
 * held, or NULL when the side locks are.  The ones on the path of every
 * message are inline: calling them cost a tenth of a message's time.
 */
static inline struct pipe_ext *
pipe_ext(struct pipe *pp)
{
	return atomic_load_explicit(&pp->ext, memory_order_acquire);
}

/* Releases a side's lock, publishing its count. */
static inline void
ctr_unlock(struct psync_ctr *c)
{
	psync_ctr_unlock(c, psync_ctr_count(c, memory_order_relaxed));
}

static struct pipe_ext *
pipe_lock_ext(struct pipe_ext *ext)
{
	pthread_mutex_lock(&ext->lock);
	return ext;
}

/* One side: the write side for a writer, the read side for a reader. */
static inline struct pipe_ext *
pipe_lock_side(struct pipe *pp, bool reader)
{
	struct psync_ctr *l = reader ? &pp->r.head : &pp->w.tail;
	_Atomic uint32_t *flags = reader ? &pp->r.flags : &pp->w.flags;
	struct pipe_ext *ext = pipe_ext(pp);

	if (ext == NULL) {
		psync_ctr_lock(l);
		if (!(atomic_load_explicit(flags, memory_order_relaxed) &
		      F_WATCHED))
			return NULL;
		ctr_unlock(l);
		ext = pipe_ext(pp); /* set before the flag */
	}
	return pipe_lock_ext(ext);
}

static struct pipe_ext *
pipe_lock_all(struct pipe *pp)
{
	struct pipe_ext *ext = pipe_ext(pp);

	if (ext == NULL) {
		psync_ctr_lock(&pp->w.tail);
		psync_ctr_lock(&pp->r.head);
		if (!(atomic_load_explicit(&pp->w.flags,
		                           memory_order_relaxed) &
		      F_WATCHED))
			return NULL;
		ctr_unlock(&pp->r.head);
		ctr_unlock(&pp->w.tail);
		ext = pipe_ext(pp);
	}
	return pipe_lock_ext(ext);
}

static inline void
pipe_unlock_side(struct pipe *pp, bool reader, struct pipe_ext *ext)
{
	if (ext != NULL)
		pthread_mutex_unlock(&ext->lock);
	else
		ctr_unlock(reader ? &pp->r.head : &pp->w.tail);
}

static void
pipe_unlock_all(struct pipe *pp, struct pipe_ext *ext)
{
	if (ext != NULL) {
		pthread_mutex_unlock(&ext->lock);
	} else {
		ctr_unlock(&pp->r.head);
		ctr_unlock(&pp->w.tail);
	}
}

/*
 * pipe_watch: makes the pipe watched, if it is not yet, and returns its
 * ext with ext->lock held; NULL with errno ENOMEM if the memory is not
 * there.
 */
static struct pipe_ext *
pipe_watch(struct pipe *pp)
{
	struct pipe_ext *ext = pipe_lock_all(pp);
	int err;

	if (ext != NULL)
		return ext;
	ext = psync_calloc(1, sizeof *ext);
	if (ext == NULL) {
		pipe_unlock_all(pp, NULL);
		return NULL;
	}
	err = pthread_mutex_init(&ext->lock, NULL);
	if (err != 0) {
		pipe_unlock_all(pp, NULL);
		free(ext);
		errno = err;
		return NULL;
	}
	ext->efd[0] = ext->efd[1] = psync_efd_none();
	atomic_store_explicit(&pp->ext, ext, memory_order_release);
	pipe_flag(pp, F_WATCHED);
	pthread_mutex_lock(&ext->lock);
	pipe_unlock_all(pp, NULL);
	return ext;
}

/*
 * Readiness of a watched pipe (ext->lock held): what the descriptors say
 * and notifiers follow.
 */
struct readiness {
	bool rd;
	bool wr;
};

static struct readiness
pipe_readiness(const struct pipe *pp)
{
	uint32_t f = atomic_load_explicit(&pp->r.flags, memory_order_relaxed);
	size_t len = pipe_len(pp);
	struct readiness r = {
		.rd = len > 0 || (f & F_ENDED),
		.wr = len < pp->capacity || (f & F_NOWRITE),
	};

	return r;
}

/* Which sides flipped to ready, for pipe_unlock_fire. */
enum { RISE_RD = 1, RISE_WR = 2 };

/* Brings the eventfds up to date after a change (ext->lock held) and
 * says which sides became ready. */
static unsigned
pipe_changed(struct pipe *pp, struct pipe_ext *ext, struct readiness before)
{
	struct readiness now = pipe_readiness(pp);
	unsigned rise = 0;

	if (now.rd != before.rd) {
		psync_efd_update(&ext->efd[1], now.rd);
		if (now.rd)
			rise |= RISE_RD;
	}
	if (now.wr != before.wr) {
		psync_efd_update(&ext->efd[0], now.wr);
		if (now.wr)
			rise |= RISE_WR;
	}
	return rise;
}

/*
 * Releases ext->lock after a change, calling the notifiers of the sides
 * in rise one after the other, and gives up drop references (an end
 * being closed).  A reference keeps the pipe alive across the calls,
 * even if a callback closes both ends.
 */
static void
pipe_unlock_fire(struct pipe *pp, struct pipe_ext *ext, unsigned rise,
                 unsigned drop)
{
	bool last;

	if (rise == 0 && drop == 0) {
		pthread_mutex_unlock(&ext->lock);
		return;
	}
	if (rise != 0) {
		atomic_fetch_add_explicit(&pp->refs, 1, memory_order_relaxed);
		drop++;
	}
	if (rise & RISE_RD)
		psync_notify_fire(&ext->notify[1], &ext->lock, &ext->settle);
	if (rise & RISE_WR)
		psync_notify_fire(&ext->notify[0], &ext->lock, &ext->settle);
	last = atomic_fetch_sub_explicit(&pp->refs, drop,
	                                 memory_order_acq_rel) == drop;
	pthread_mutex_unlock(&ext->lock);
	if (last)
		pipe_free(pp);
}

/*
 * Ends a change of the messages (a read or a write): releases the locks,
 * firing notifiers on a watched pipe, then wakes the other side's
 * waiters.  The caller's end is open, so the pipe outlives all of it.
 */
static inline void
pipe_moved(struct pipe *pp, bool reader, struct pipe_ext *ext,
           struct readiness before, size_t n)
{
	struct psync_ec *other = reader ? &pp->r.writers : &pp->w.readers;

	/* The release is the barrier the eventcount needs. */
	if (ext == NULL)
		pipe_unlock_side(pp, reader, NULL);
	else
		psync_barrier_light();
	psync_ec_wake(other, n > 1);
	if (ext != NULL)
		pipe_unlock_fire(pp, ext, pipe_changed(pp, ext, before), 0);
}

/*
 * The messages a reader spinning on an empty pipe waits to see written,
 * and the slots a writer spinning on a full one waits to see freed
 * (fewer if they stop coming: psync_spin): a stream then moves in runs,
 * each side reading lines the other has finished with.
 */
static size_t
spin_delta(const struct pipe *pp, bool reader)
{
	size_t k = reader ? pp->capacity / 2 : pp->w.size / 8;
	size_t most = reader ? 32 : 64;

	return k < 1 ? 1 : k > most ? most : k;
}

/*
 * Waits on a side after its condition failed (its lock held: ext's if
 * ext): spins first, the first time, then sleeps on the eventcount.  The
 * condition failed on the other side's counter as last read (tail_seen,
 * head_seen): a move past it, or a flag, is what ends the wait.  Returns
 * with the lock of the pipe's mode by then, which it puts in *ext; the
 * caller checks its condition again.  ETIMEDOUT once the deadline passed.
 */
static int
pipe_wait(struct pipe *pp, bool reader, struct pipe_ext **ext, bool *spun,
          struct psync_timer *timer)
{
	struct psync_ec *ec = reader ? &pp->w.readers : &pp->r.writers;
	struct psync_ctr *moves = reader ? &pp->w.tail : &pp->r.head;
	_Atomic uint32_t *flags = reader ? &pp->r.flags : &pp->w.flags;
	size_t seen = reader ? pp->r.tail_seen : pp->w.head_seen;
	size_t delta = spin_delta(pp, reader);
	uint32_t f = atomic_load_explicit(flags, memory_order_relaxed);
	/* Unwatched, a switch to watched ends the wait too. */
	uint32_t stop =
	    (reader ? F_ENDED : F_NOWRITE) | (*ext == NULL ? F_WATCHED : 0);
	int err = 0;
	uint32_t seq;

	if (!*spun) {
		*spun = true;
		pipe_unlock_side(pp, reader, *ext);
		/* For a run of messages or slots, if it comes. */
		psync_spin(reader ? &pp->r.spin : &pp->w.spin, &moves->word,
		           seen, delta, flags, f);
	} else {
		seq = psync_ec_prepare(ec);
		/* Registered and fenced: a change from now on wakes us. */
		if (psync_ctr_count(moves, memory_order_relaxed) != seen ||
		    (atomic_load_explicit(flags, memory_order_relaxed) &
		     stop)) {
			psync_ec_cancel(ec, seq);
			return 0;
		}
		pipe_unlock_side(pp, reader, *ext);
		err = psync_ec_sleep(ec, seq, timer);
	}
	*ext = pipe_lock_side(pp, reader);
	return err;
}

int
polypipe_create(size_t capacity, polypipe **rd, polypipe **wr)
{
	struct pipe *pp;

	if (capacity == 0 || rd == NULL || wr == NULL) {
		errno = EINVAL;
		return -1;
	}
	psync_barrier_init();
	pp = psync_aligned_alloc(LINE, sizeof *pp);
	if (pp == NULL)
		return -1;
	memset(pp, 0, sizeof *pp);
	pp->capacity = capacity;
	atomic_init(&pp->refs, 2);
	pp->rd.reader = true;
	*rd = &pp->rd;
	*wr = &pp->wr;
	return 0;
}

ssize_t
polypipe_read_many(polypipe *rd, void **msgs, size_t max, int timeout_ms)
{
	struct psync_timer timer = psync_timer(timeout_ms);
	struct readiness before = { false, false };
	struct pipe_ext *ext;
	struct pipe *pp;
	bool timed_out = false, spun = false, wrapped, shrink;
	size_t head, avail, n, i, j;
	uint32_t f;
	int err;

	if (rd == NULL || msgs == NULL || max == 0 ||
	    !psync_timeout_valid(timeout_ms)) {
		errno = EINVAL;
		return -1;
	}
	if (!rd->reader) {
		errno = EBADF;
		return -1;
	}
	pp = pipe_of(rd);
	ext = pipe_lock_side(pp, true);
	for (;;) {
		/* Flags first: messages written before the end are in
		 * tail by the time the flag is. */
		f = atomic_load_explicit(&pp->r.flags, memory_order_acquire);
		head = psync_ctr_count(&pp->r.head, memory_order_relaxed);
		avail = pp->r.tail_seen - head;
		if (avail < max) {
			pp->r.tail_seen =
			    psync_ctr_count(&pp->w.tail, memory_order_acquire);
			avail = pp->r.tail_seen - head;
		}
		if (avail > 0)
			break;
		if (f & F_ENDED) {
			err = atomic_load_explicit(&pp->error,
			                           memory_order_relaxed);
			pipe_unlock_side(pp, true, ext);
			if (err == 0)
				return 0;
			errno = err;
			return -1;
		}
		if (timeout_ms == 0 || timed_out) {
			pipe_unlock_side(pp, true, ext);
			errno = timeout_ms == 0 ? EAGAIN : ETIMEDOUT;
			return -1;
		}
		timed_out = pipe_wait(pp, true, &ext, &spun, &timer) != 0;
	}
	if (ext != NULL)
		before = pipe_readiness(pp);
	n = avail < max ? avail : max;
	if (avail > pp->r.size / 4)
		pp->r.crowded = true;
	for (i = 0, j = pp->r.hidx; i < n; i++) {
		msgs[i] = pp->r.ring[j];
		if (++j == pp->r.size)
			j = 0;
	}
	/* Once per ring's worth of reads, see whether to shrink it. */
	wrapped = j < pp->r.hidx || j == 0;
	shrink = wrapped && !pp->r.crowded && pp->r.size >= 4 * RING_MIN;
	if (wrapped)
		pp->r.crowded = false;
	pp->r.hidx = j;
	ctr_set(&pp->r.head, head + n);
	if (shrink && ext != NULL) {
		ring_shrink(pp);
	} else if (shrink && psync_ctr_trylock(&pp->w.tail)) {
		ring_shrink(pp);
		ctr_unlock(&pp->w.tail);
	}
	pipe_moved(pp, true, ext, before, n);
	return (ssize_t)n;
}

int
polypipe_read(polypipe *rd, void **msg, int timeout_ms)
{
	return (int)polypipe_read_many(rd, msg, 1, timeout_ms);
}

ssize_t
polypipe_write_many(polypipe *wr, void *const *msgs, size_t n, int timeout_ms)
{
	struct psync_timer timer = psync_timer(timeout_ms);
	struct readiness before = { false, false };
	struct pipe_ext *ext;
	struct pipe *pp;
	bool timed_out = false, spun = false, grown;
	size_t tail, len, room, i, j;
	uint32_t f;
	int err;

	if (wr == NULL || msgs == NULL || n == 0 ||
	    !psync_timeout_valid(timeout_ms)) {
		errno = EINVAL;
		return -1;
	}
	if (wr->reader) {
		errno = EBADF;
		return -1;
	}
	pp = pipe_of(wr);
	ext = pipe_lock_side(pp, false);
	for (;;) {
		f = atomic_load_explicit(&pp->w.flags, memory_order_acquire);
		if (f & F_ERROR)
			err = atomic_load_explicit(&pp->error,
			                           memory_order_relaxed);
		else if (f & (F_EOF | F_RDCLOSED))
			err = EPIPE;
		else
			err = 0;
		if (err != 0)
			break;
		tail = psync_ctr_count(&pp->w.tail, memory_order_relaxed);
		room = pp->w.size - (tail - pp->w.head_seen);
		if (room < n) {
			pp->w.head_seen =
			    psync_ctr_count(&pp->r.head, memory_order_acquire);
			room = pp->w.size - (tail - pp->w.head_seen);
		}
		len = tail - pp->w.head_seen;
		if (room < n && pp->w.size < pp->capacity) {
			/* The ring may grow: that takes the read side. */
			if (ext == NULL)
				psync_ctr_lock(&pp->r.head);
			grown =
			    ring_grow(pp, len + (n < pp->capacity - len
			                             ? n
			                             : pp->capacity - len));
			if (ext == NULL)
				ctr_unlock(&pp->r.head);
			/* head_seen is the fresh head now. */
			len = tail - pp->w.head_seen;
			room = pp->w.size - len;
			if (!grown && room == 0 && len < pp->capacity) {
				err = ENOMEM;
				break;
			}
		}
		if (room > 0)
			break;
		if (timeout_ms == 0 || timed_out) {
			err = timeout_ms == 0 ? EAGAIN : ETIMEDOUT;
			break;
		}
		timed_out = pipe_wait(pp, false, &ext, &spun, &timer) != 0;
	}
	if (err != 0) {
		pipe_unlock_side(pp, false, ext);
		errno = err;
		return -1;
	}
	if (ext != NULL)
		before = pipe_readiness(pp);
	if (n > room)
		n = room;
	for (i = 0, j = pp->w.tidx; i < n; i++) {
		pp->w.ring[j] = msgs[i];
		if (++j == pp->w.size)
			j = 0;
	}
	pp->w.tidx = j;
	ctr_set(&pp->w.tail, tail + n);
	pipe_moved(pp, false, ext, before, n);
	return (ssize_t)n;
}

int
polypipe_write(polypipe *wr, void *msg, int timeout_ms)
{
	ssize_t n = polypipe_write_many(wr, &msg, 1, timeout_ms);

	return n < 0 ? -1 : 0;
}

/*
 * Ends a change of state made under all locks: releases them, firing
 * notifiers on a watched pipe, after waking every waiter.
 */
static void
pipe_ended_change(struct pipe *pp, struct pipe_ext *ext,
                  struct readiness before)
{
	pipe_wake_all(pp);
	if (ext != NULL)
		pipe_unlock_fire(pp, ext, pipe_changed(pp, ext, before), 0);
	else
		pipe_unlock_all(pp, NULL);
}

int
polypipe_write_eof(polypipe *wr)
{
	struct readiness before = { false, false };
	struct pipe_ext *ext;
	struct pipe *pp;

	if (wr == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (wr->reader) {
		errno = EBADF;
		return -1;
	}
	pp = pipe_of(wr);
	ext = pipe_lock_all(pp);
	if (ext != NULL)
		before = pipe_readiness(pp);
	pipe_flag(pp, F_EOF);
	pipe_ended_change(pp, ext, before);
	return 0;
}

int
polypipe_set_error(polypipe *p, int err)
{
	struct readiness before = { false, false };
	struct pipe_ext *ext;
	struct pipe *pp;

	if (p == NULL || err <= 0) {
		errno = EINVAL;
		return -1;
	}
	pp = pipe_of(p);
	ext = pipe_lock_all(pp);
	if (atomic_load_explicit(&pp->error, memory_order_relaxed) != 0) {
		pipe_unlock_all(pp, ext);
		return 0;
	}
	if (ext != NULL)
		before = pipe_readiness(pp);
	atomic_store_explicit(&pp->error, err, memory_order_relaxed);
	pipe_flag(pp, F_ERROR);
	pipe_ended_change(pp, ext, before);
	return 0;
}

int
polypipe_get_error(const polypipe *p)
{
	if (p == NULL) {
		errno = EINVAL;
		return -1;
	}
	/* Acquire: pairs with the flag set after the error. */
	if (!(atomic_load_explicit(&pipe_of(p)->r.flags,
	                           memory_order_acquire) &
	      F_ERROR))
		return 0;
	return atomic_load_explicit(&pipe_of(p)->error, memory_order_relaxed);
}

size_t
polypipe_length(const polypipe *p)
{
	const struct pipe *pp;
	size_t head;

	if (p == NULL)
		return 0;
	pp = pipe_of(p);
	/* head first: tail read later is no smaller. */
	head = psync_ctr_count(&pp->r.head, memory_order_acquire);
	return psync_ctr_count(&pp->w.tail, memory_order_acquire) - head;
}

size_t
polypipe_capacity(const polypipe *p)
{
	return p == NULL ? 0 : pipe_of(p)->capacity;
}

bool
polypipe_eof(const polypipe *p)
{
	if (p == NULL)
		return false;
	return atomic_load_explicit(&pipe_of(p)->r.flags,
	                            memory_order_acquire) &
	       F_ENDED;
}

/* The descriptor of an end, created on first use. */
static int
pipe_fd(polypipe *p)
{
	struct pipe *pp = pipe_of(p);
	struct pipe_ext *ext = pipe_watch(pp);
	struct psync_efd *efd;
	struct readiness now;
	int fd;

	if (ext == NULL)
		return -1;
	efd = &ext->efd[p->reader];
	if (efd->fd < 0) {
		now = pipe_readiness(pp);
		if (psync_efd_open(efd, p->reader ? now.rd : now.wr) < 0) {
			pthread_mutex_unlock(&ext->lock);
			return -1;
		}
	}
	fd = efd->fd;
	pthread_mutex_unlock(&ext->lock);
	return fd;
}

/* EINVAL for NULL, EBADF unless p is the reader (or the writer). */
static bool
pipe_check_end(const polypipe *p, bool reader)
{
	if (p == NULL)
		errno = EINVAL;
	else if (p->reader != reader)
		errno = EBADF;
	else
		return true;
	return false;
}

int
polypipe_read_fd(polypipe *rd)
{
	return pipe_check_end(rd, true) ? pipe_fd(rd) : -1;
}

int
polypipe_write_fd(polypipe *wr)
{
	return pipe_check_end(wr, false) ? pipe_fd(wr) : -1;
}

static int
pipe_set_notify(polypipe *p, polypipe_notify_fn *fn, void *arg)
{
	struct pipe *pp = pipe_of(p);
	struct pipe_ext *ext;

	/* No callback was ever set without an ext: nothing to remove. */
	if (fn == NULL && pipe_ext(pp) == NULL)
		return 0;
	ext = pipe_watch(pp);
	if (ext == NULL)
		return -1;
	psync_notify_set(&ext->notify[p->reader], fn, arg, &ext->lock,
	                 &ext->settle);
	pthread_mutex_unlock(&ext->lock);
	return 0;
}

int
polypipe_set_read_notify(polypipe *rd, polypipe_notify_fn *fn, void *arg)
{
	return pipe_check_end(rd, true) ? pipe_set_notify(rd, fn, arg) : -1;
}

int
polypipe_set_write_notify(polypipe *wr, polypipe_notify_fn *fn, void *arg)
{
	return pipe_check_end(wr, false) ? pipe_set_notify(wr, fn, arg) : -1;
}

int
polypipe_set_destructor(polypipe *p, polypipe_dtor_fn *fn, void *arg)
{
	struct pipe_ext *ext;
	struct pipe *pp;

	if (p == NULL) {
		errno = EINVAL;
		return -1;
	}
	pp = pipe_of(p);
	ext = pipe_lock_all(pp);
	pp->dtor = fn;
	pp->dtor_arg = arg;
	pipe_unlock_all(pp, ext);
	return 0;
}

void
pipe_discard(polypipe *wr)
{
	struct pipe *pp = pipe_of(wr);
	struct readiness before = { false, false };
	struct pipe_ext *ext;
	struct orphans o;

	ext = pipe_lock_all(pp);
	if (ext != NULL)
		before = pipe_readiness(pp);
	o = pipe_take_all(pp);
	psync_barrier_light();
	psync_ec_wake(&pp->r.writers, true);
	if (ext != NULL)
		pipe_unlock_fire(pp, ext, pipe_changed(pp, ext, before), 0);
	else
		pipe_unlock_all(pp, NULL);
	orphans_destroy(&o);
}

void
polypipe_close(polypipe *p)
{
	struct orphans o = { 0 };
	struct readiness before = { false, false };
	struct pipe_ext *ext;
	struct pipe *pp;
	bool last;
	int fd = -1;

	if (p == NULL)
		return;
	pp = pipe_of(p);
	ext = pipe_lock_all(pp);
	if (ext != NULL) {
		/* Our own callback first, so the close never calls it. */
		psync_notify_set(&ext->notify[p->reader], NULL, NULL,
		                 &ext->lock, &ext->settle);
		before = pipe_readiness(pp);
		fd = psync_efd_release(&ext->efd[p->reader]);
	}
	p->closed = true;
	if (p->reader) {
		o = pipe_take_all(pp);
		pipe_flag(pp, F_RDCLOSED);
	} else {
		pipe_flag(pp, F_EOF);
	}
	pipe_wake_all(pp);
	if (ext != NULL) {
		pipe_unlock_fire(pp, ext, pipe_changed(pp, ext, before), 1);
	} else {
		/* Our reference goes only once the locks are released:
		 * releasing one still reads its word, and once the count is
		 * down the other end's close may free the pipe. */
		pipe_unlock_all(pp, NULL);
		last = atomic_fetch_sub_explicit(&pp->refs, 1,
		                                 memory_order_acq_rel) == 1;
		if (last)
			pipe_free(pp);
	}
	if (fd >= 0)
		close(fd);
	orphans_destroy(&o);
}
