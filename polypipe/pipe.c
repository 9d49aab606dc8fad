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
 * only try the write side's lock while it holds its own.
 *
 * Readiness (descriptors, notifiers, set membership: common/ready.h)
 * follows the same two locks, with no lock in common and no mode switch.
 * A side's readiness falls only by its own side's moves (the last message
 * read, the last slot filled) and rises only by the other side's (or by
 * a change made under both locks).  So it lives as a flag, PSYNC_CTR_LOW,
 * in the word of the side that raises it: the read side's in tail, the
 * write side's in head.  A reader that leaves the pipe empty, once its
 * own lock is released, takes the write side's lock, checks that the
 * pipe is still empty and sets the flag: "lowered".  A writer sees the
 * flag in its own word when it moves, clears it and raises the readiness
 * before it releases its lock.  Every write of the word is made by the
 * holder of its lock, so the flips of one readiness are ordered by that
 * lock, and the riser pays nothing but a bit test while nobody lowered.
 * A flip updates the descriptor there and then, with that lock held: a
 * thread the descriptor wakes finds the count published already (the
 * count is stored before the flip), and the flip costs one system call,
 * no other lock and no reference.  Only a notifier is called after the
 * lock is released (pipe_after).  Before a lower that would cost such a
 * call, the lowerer lingers for the other side's next run (psync_linger),
 * which would raise it again at once.  A side does this only once a
 * descriptor, notifier or set asked for its readiness (rdy[] allocated);
 * before, its moves skip it.
 *
 * The pipe is freed when both ends are closed and no notifier call is in
 * flight (refs).  A connection's two pipes share one allocation
 * (pipe_create_pair): the second holds a reference on the first, which
 * frees the block.
 */
#include "config.h"

#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/ready.h"
#include "common/sync.h"
#include "polypipe/pipe.h"

/* Bits of the flags word, kept in both sides' lines. */
enum {
	F_EOF = 1,      /* EOF sent or write end closed */
	F_ERROR = 2,    /* an error is set */
	F_RDCLOSED = 4, /* the read end is closed */
};
#define F_ENDED (F_EOF | F_ERROR)
#define F_NOWRITE (F_EOF | F_ERROR | F_RDCLOSED)

/* An end is its tag alone: four bytes each keep the pipe's read-mostly
 * fields within one line. */
struct polypipe {
	uint32_t tag; /* PTAG_PIPE_RD (the read end) or PTAG_PIPE_WR */
};

static inline bool
end_reader(const polypipe *p)
{
	return p->tag == PTAG_PIPE_RD;
}

#define LINE 64

/* Fields in the first groups are written by their side only, or under
 * both locks; ring and size are in both groups, so that neither side
 * reads the other's line to find the messages. */
struct pipe {
	/* Writers' line: the write side's lock (bit 0 of tail), or both. */
	alignas(LINE) struct {
		/* Messages ever written; the lock; PSYNC_CTR_LOW: the read
		 * side's readiness is lowered. */
		struct psync_ctr tail;
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
		/* Messages ever read; the lock; PSYNC_CTR_LOW: the write
		 * side's readiness is lowered. */
		struct psync_ctr head;
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
	/* The readiness of each side, [reader], allocated when first asked
	 * for, under both locks, and kept until the pipe is freed. */
	struct pready *_Atomic rdy[2];
	_Atomic int error;     /* first error set, or 0 */
	_Atomic unsigned refs; /* REFS_*: the count, the block's flags */
	polypipe_dtor_fn *dtor;
	void *dtor_arg;
	struct polypipe rd;
	struct polypipe wr;
};

/* refs: open ends + notifier calls in flight (+ 1 on the first pipe of
 * a pair, for the second), below two flags set at creation: the pipe is
 * the first or the second of a pair in one block (pipe_create_pair). */
#define REFS_FIRST (1u << 31)
#define REFS_SECOND (1u << 30)
#define REFS_COUNT (REFS_SECOND - 1)

/* An idle pipe is these three lines and nothing else. */
_Static_assert(sizeof(struct pipe) <= 3 * LINE, "a pipe takes three lines");

/* The pipe an end belongs to. */
static struct pipe *
pipe_of(const polypipe *p)
{
	const char *end = (const char *)p;

	return (struct pipe *)(end - (end_reader(p)
	                                  ? offsetof(struct pipe, rd)
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

/* Sets a side's count, keeping its lock and its flag (the side's lock
 * held). */
static inline void
ctr_set(struct psync_ctr *c, size_t count)
{
	CHAOS_POINT();
	psync_ctr_set(c, count << PSYNC_CTR_SHIFT |
	                     (psync_ctr_word(c) & PSYNC_CTR_LOW));
}

static size_t
pipe_len(const struct pipe *pp)
{
	size_t head = psync_ctr_count(&pp->r.head, memory_order_relaxed);

	return psync_ctr_count(&pp->w.tail, memory_order_relaxed) - head;
}

/* Sets flag bits in both lines (both locks). */
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
 * Makes room for need messages in all, keeping the order (both locks).
 * realloc, then the part of the messages that wrapped round
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
 * Gives back memory after a burst (both locks): called at
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

static void pipe_unhold(struct pipe *pp);

static void
pipe_free(struct pipe *pp)
{
	struct pready *r;
	unsigned flags;
	int i;

	for (i = 0; i < 2; i++) {
		r = atomic_load_explicit(&pp->rdy[i], memory_order_relaxed);
		if (r != NULL) {
			pready_destroy(r);
			free(r);
		}
	}
	free(pp->w.ring);
	/* Relaxed: the flags never change; the count is 0. */
	flags = atomic_load_explicit(&pp->refs, memory_order_relaxed);
	if (flags & REFS_SECOND)
		pipe_unhold(pp - 1);
	else if (flags & REFS_FIRST)
		free(((void **)pp)[-1]);
	else
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

static void
pipe_lock_all(struct pipe *pp)
{
	psync_ctr_lock(&pp->w.tail);
	psync_ctr_lock(&pp->r.head);
}

static void
pipe_unlock_all(struct pipe *pp)
{
	psync_ctr_unlock(&pp->r.head);
	psync_ctr_unlock(&pp->w.tail);
}

/*
 * Readiness.  The word that holds a side's flag is the other side's
 * counter: the one whose moves raise it.
 */
static inline struct psync_ctr *
ready_word(struct pipe *pp, bool reader)
{
	return reader ? &pp->w.tail : &pp->r.head;
}

/* A side's readiness, NULL while nobody asked for it.  Relaxed where the
 * caller holds a lock that the pointer was published under (both), or
 * found the flag that is set only after it. */
static inline struct pready *
pipe_rdy(struct pipe *pp, bool reader)
{
	return atomic_load_explicit(&pp->rdy[reader], memory_order_acquire);
}

/* The sides that became ready, for pipe_after. */
enum { ROSE_WR = 1, ROSE_RD = 2 };
#define ROSE(reader) ((reader) ? ROSE_RD : ROSE_WR)

/*
 * Brings both sides' flags in line with the state (both locks held):
 * after a change made under both locks, and when a side's readiness is
 * first asked for.  Returns the changes for pipe_after.
 */
static unsigned
pipe_resync(struct pipe *pp)
{
	uint32_t f = atomic_load_explicit(&pp->r.flags, memory_order_relaxed);
	size_t len = pipe_len(pp), w;
	unsigned changes = 0;
	struct psync_ctr *c;
	struct pready *r;
	bool ready;
	int reader;

	for (reader = 0; reader < 2; reader++) {
		r = pipe_rdy(pp, reader);
		if (r == NULL)
			continue;
		ready = reader ? len > 0 || (f & F_ENDED)
		               : len < pp->capacity || (f & F_NOWRITE);
		c = ready_word(pp, reader);
		w = psync_ctr_word(c);
		if (ready == !(w & PSYNC_CTR_LOW))
			continue;
		psync_ctr_set(c,
		              ready ? w & ~PSYNC_CTR_LOW : w | PSYNC_CTR_LOW);
		pready_flip(r, ready);
		CHAOS_POINT();
		if (ready)
			changes |= ROSE(reader);
	}
	return changes;
}

/*
 * A reference for a thread that holds no end: polyset, whose member may
 * be closed by the thread it was just handed to, and a notifier, which
 * may close both ends.  Releasing a lock still touches the pipe (the
 * lock's sleepers), so it is held past the release.
 */
static void
pipe_hold(struct pipe *pp)
{
	/* Relaxed: taken while the pipe is surely alive (a lock or an end
	 * held); the release below orders the uses. */
	atomic_fetch_add_explicit(&pp->refs, 1, memory_order_relaxed);
}

static void
pipe_unhold(struct pipe *pp)
{
	/* Acq_rel: the last reference frees, after every use of the pipe
	 * by the others (release) is visible (acquire). */
	CHAOS_POINT();
	if ((atomic_fetch_sub_explicit(&pp->refs, 1, memory_order_acq_rel) &
	     REFS_COUNT) == 1)
		pipe_free(pp);
}

/*
 * Calls the notifiers of the sides that rose in changes, with no lock
 * held: a flip brought the descriptor and the set up to date already.
 * The caller's end is open; a reference keeps the pipe alive across the
 * notifiers all the same, as one may close both ends.
 */
static void
pipe_after(struct pipe *pp, unsigned changes)
{
	int reader;

	/* Relaxed: the notifier's part is published under both of the
	 * pipe's locks, one of which this thread held for the flip; one
	 * allocated since is its setter's race, and pready_fire reads it
	 * again with acquire. */
	for (reader = 0; reader < 2; reader++)
		if ((changes & ROSE(reader)) &&
		    atomic_load_explicit(&pipe_rdy(pp, reader)->ntf,
		                         memory_order_relaxed) == NULL)
			changes &= ~(unsigned)ROSE(reader);
	if (!(changes & (ROSE_RD | ROSE_WR)))
		return;
	pipe_hold(pp);
	for (reader = 1; reader >= 0; reader--)
		if (changes & ROSE(reader))
			pready_fire(pipe_rdy(pp, reader));
	pipe_unhold(pp);
}

/*
 * Releases a side's lock after it moved n messages or slots, raising the
 * other side's readiness if it was lowered, and returns the changes for
 * pipe_after.  Then wakes the other side's waiters.
 */
static inline unsigned
pipe_release(struct pipe *pp, bool reader, size_t n)
{
	struct psync_ctr *c = reader ? &pp->r.head : &pp->w.tail;
	struct psync_ec *other = reader ? &pp->r.writers : &pp->w.readers;
	size_t w = psync_ctr_word(c);
	unsigned changes = 0;

	if ((w & PSYNC_CTR_LOW) && n > 0) {
		/* Lowered: set only after rdy[!reader] was published. */
		w &= ~PSYNC_CTR_LOW;
		CHAOS_POINT();
		pready_flip(pipe_rdy(pp, !reader), true);
		changes = ROSE(!reader);
	}
	/* The release is the barrier the eventcount needs. */
	psync_ctr_unlock_word(c, w);
	if (n > 0)
		psync_ec_wake(other, n > 1);
	return changes;
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
	size_t most = reader ? 128 : 64;

	return k < 1 ? 1 : k > most ? most : k;
}

/*
 * Lowers a side's readiness if it would wait now: a reader after leaving
 * the pipe empty, a writer after filling it (linger > 0: after a move,
 * which the other side may be about to follow with a run of that many,
 * spin_delta as read under the side's own lock).  Takes the lock of the word
 * that holds the flag (the other side's), holding none: the check under
 * it is exact, since only this side's own moves could make the side wait,
 * and another of them lowers it in turn.
 */
static void
pipe_lower(struct pipe *pp, bool reader, size_t linger)
{
	struct psync_ctr *c = ready_word(pp, reader);
	struct pready *r = pipe_rdy(pp, reader);
	size_t w, head, tail;
	uint32_t f;
	bool wait;

	CHAOS_POINT();
	/* A fall made now costs a system call or a callback, and so will
	 * the other side's next move, which undoes it: if that side is
	 * moving, let a run of its moves come first, as this side's next
	 * call would wait for one (psync_linger), and make neither. */
	if (linger > 0 &&
	    atomic_load_explicit(&r->costly, memory_order_relaxed) &&
	    psync_linger(&r->linger, &c->word,
	                 psync_ctr_count(c, memory_order_relaxed), linger))
		return;
	psync_ctr_lock(c);
	w = psync_ctr_word(c);
	/* Acquire: the flags and the other count as last published. */
	f = atomic_load_explicit(&pp->r.flags, memory_order_acquire);
	head = psync_ctr_count(&pp->r.head, memory_order_acquire);
	tail = psync_ctr_count(&pp->w.tail, memory_order_acquire);
	if (reader)
		wait = tail == head && !(f & F_ENDED);
	else
		wait = tail - head >= pp->capacity && !(f & F_NOWRITE);
	if (!wait || (w & PSYNC_CTR_LOW)) {
		psync_ctr_unlock(c);
		return;
	}
	pready_flip(r, false);
	CHAOS_POINT();
	psync_ctr_unlock_word(c, w | PSYNC_CTR_LOW);
}

/* Whether a side whose readiness is watched may have to lower it: its
 * flag is not set yet (a look at the other side's word, no lock). */
static inline bool
pipe_may_lower(struct pipe *pp, bool reader)
{
	return pipe_rdy(pp, reader) != NULL &&
	       !(atomic_load_explicit(&ready_word(pp, reader)->word,
	                              memory_order_relaxed) &
	         PSYNC_CTR_LOW);
}

/*
 * Waits on a side after its condition failed (its lock held): spins
 * first, the first time, then sleeps on the eventcount.  The condition
 * failed on the other side's counter as last read (tail_seen, head_seen):
 * a move past it, or a flag, is what ends the wait.  Returns with the
 * lock held again; the caller checks its condition again.  ETIMEDOUT once
 * the deadline passed.
 */
static int
pipe_wait(struct pipe *pp, bool reader, bool *spun, struct psync_timer *timer)
{
	struct psync_ec *ec = reader ? &pp->w.readers : &pp->r.writers;
	struct psync_ctr *own = reader ? &pp->r.head : &pp->w.tail;
	struct psync_ctr *moves = reader ? &pp->w.tail : &pp->r.head;
	_Atomic uint32_t *flags = reader ? &pp->r.flags : &pp->w.flags;
	size_t seen = reader ? pp->r.tail_seen : pp->w.head_seen;
	size_t delta = spin_delta(pp, reader);
	uint32_t f = atomic_load_explicit(flags, memory_order_relaxed);
	uint32_t stop = reader ? F_ENDED : F_NOWRITE;
	int err = 0;
	uint32_t seq;

	if (!*spun) {
		*spun = true;
		psync_ctr_unlock(own);
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
		psync_ctr_unlock(own);
		err = psync_ec_sleep(ec, seq, timer);
	}
	psync_ctr_lock(own);
	return err;
}

static void
pipe_init(struct pipe *pp, size_t capacity, unsigned refs, polypipe **rd,
          polypipe **wr)
{
	memset(pp, 0, sizeof *pp);
	/* A side's first waits return with the first message or slot:
	 * the pipe may be a connection's, which carries one request or
	 * one reply (sync.h). */
	psync_spin_init(&pp->r.spin);
	psync_spin_init(&pp->w.spin);
	pp->capacity = capacity;
	atomic_init(&pp->refs, refs);
	pp->rd.tag = PTAG_PIPE_RD;
	pp->wr.tag = PTAG_PIPE_WR;
	*rd = &pp->rd;
	*wr = &pp->wr;
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
	pipe_init(pp, capacity, 2, rd, wr);
	return 0;
}

int
pipe_create_pair(size_t capacity, polypipe **a_rd, polypipe **a_wr,
                 polypipe **b_rd, polypipe **b_wr)
{
	struct pipe *pp;
	char *raw;

	psync_barrier_init();
	/* Plain malloc, aligned by hand: aligned_alloc splits a chunk and
	 * frees the rest each time, a quarter of a connection's cost.
	 * malloc aligns to 8 bytes at least, so the first line boundary
	 * that leaves room for the block's address before it is at most
	 * LINE bytes in. */
	raw = psync_malloc(2 * sizeof *pp + LINE);
	if (raw == NULL)
		return -1;
	pp = (struct pipe *)(((uintptr_t)raw + sizeof raw + LINE - 1) &
	                     ~(uintptr_t)(LINE - 1));
	((void **)pp)[-1] = raw;
	pipe_init(&pp[0], capacity, 3 | REFS_FIRST, a_rd, a_wr);
	pipe_init(&pp[1], capacity, 2 | REFS_SECOND, b_rd, b_wr);
	return 0;
}

ssize_t
polypipe_read_many(polypipe *rd, void **msgs, size_t max, int timeout_ms)
{
	struct psync_timer timer = psync_timer(timeout_ms);
	struct pipe *pp;
	bool timed_out = false, spun = false, wrapped, shrink;
	size_t head, avail, n, i, j, lower;
	unsigned changes;
	uint32_t f;
	int err;

	if (rd == NULL || msgs == NULL || max == 0 ||
	    !psync_timeout_valid(timeout_ms)) {
		errno = EINVAL;
		return -1;
	}
	if (!end_reader(rd)) {
		errno = EBADF;
		return -1;
	}
	pp = pipe_of(rd);
	psync_ctr_lock(&pp->r.head);
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
			psync_ctr_unlock(&pp->r.head);
			if (err == 0)
				return 0;
			errno = err;
			return -1;
		}
		if (timeout_ms == 0 || timed_out) {
			psync_ctr_unlock(&pp->r.head);
			/* The last read lowered it; in case a change made
			 * elsewhere left it up, the empty pipe says so. */
			if (pipe_may_lower(pp, true))
				pipe_lower(pp, true, 0);
			errno = timeout_ms == 0 ? EAGAIN : ETIMEDOUT;
			return -1;
		}
		timed_out = pipe_wait(pp, true, &spun, &timer) != 0;
	}
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
	if (shrink && psync_ctr_trylock(&pp->w.tail)) {
		ring_shrink(pp);
		psync_ctr_unlock(&pp->w.tail);
	}
	/* Left empty: a watched side lowers.  Acquire: as above. */
	lower = n == avail && pipe_rdy(pp, true) != NULL &&
	                psync_ctr_count(&pp->w.tail, memory_order_acquire) ==
	                    head + n
	            ? spin_delta(pp, true)
	            : 0;
	changes = pipe_release(pp, true, n);
	if (lower > 0)
		pipe_lower(pp, true, lower);
	pipe_after(pp, changes);
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
	struct pipe *pp;
	bool timed_out = false, spun = false, grown;
	size_t tail, len, room, i, j, lower;
	unsigned changes;
	uint32_t f;
	int err;

	if (wr == NULL || msgs == NULL || n == 0 ||
	    !psync_timeout_valid(timeout_ms)) {
		errno = EINVAL;
		return -1;
	}
	if (end_reader(wr)) {
		errno = EBADF;
		return -1;
	}
	pp = pipe_of(wr);
	psync_ctr_lock(&pp->w.tail);
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
			psync_ctr_lock(&pp->r.head);
			grown =
			    ring_grow(pp, len + (n < pp->capacity - len
			                             ? n
			                             : pp->capacity - len));
			psync_ctr_unlock(&pp->r.head);
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
		timed_out = pipe_wait(pp, false, &spun, &timer) != 0;
	}
	if (err != 0) {
		psync_ctr_unlock(&pp->w.tail);
		if ((err == EAGAIN || err == ETIMEDOUT) &&
		    pipe_may_lower(pp, false))
			pipe_lower(pp, false, 0);
		errno = err;
		return -1;
	}
	if (n > room)
		n = room;
	for (i = 0, j = pp->w.tidx; i < n; i++) {
		pp->w.ring[j] = msgs[i];
		if (++j == pp->w.size)
			j = 0;
	}
	pp->w.tidx = j;
	ctr_set(&pp->w.tail, tail + n);
	/* Left full: a watched side lowers.  Acquire: as above. */
	lower = len + n >= pp->capacity && pipe_rdy(pp, false) != NULL &&
	                tail + n -
	                        psync_ctr_count(&pp->r.head,
	                                        memory_order_acquire) >=
	                    pp->capacity
	            ? spin_delta(pp, false)
	            : 0;
	changes = pipe_release(pp, false, n);
	if (lower > 0)
		pipe_lower(pp, false, lower);
	pipe_after(pp, changes);
	return (ssize_t)n;
}

int
polypipe_write(polypipe *wr, void *msg, int timeout_ms)
{
	ssize_t n = polypipe_write_many(wr, &msg, 1, timeout_ms);

	return n < 0 ? -1 : 0;
}

/*
 * Ends a change of state made under both locks: brings readiness in line
 * (descriptors and sets with it), wakes every waiter, releases the locks,
 * then calls the notifiers.
 */
static void
pipe_changed_all(struct pipe *pp)
{
	unsigned changes = pipe_resync(pp);

	pipe_wake_all(pp);
	pipe_unlock_all(pp);
	pipe_after(pp, changes);
}

int
polypipe_write_eof(polypipe *wr)
{
	struct pipe *pp;

	if (wr == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (end_reader(wr)) {
		errno = EBADF;
		return -1;
	}
	pp = pipe_of(wr);
	pipe_lock_all(pp);
	pipe_flag(pp, F_EOF);
	pipe_changed_all(pp);
	return 0;
}

int
polypipe_set_error(polypipe *p, int err)
{
	struct pipe *pp;

	if (p == NULL || err <= 0) {
		errno = EINVAL;
		return -1;
	}
	pp = pipe_of(p);
	pipe_lock_all(pp);
	if (atomic_load_explicit(&pp->error, memory_order_relaxed) != 0) {
		pipe_unlock_all(pp);
		return 0;
	}
	atomic_store_explicit(&pp->error, err, memory_order_relaxed);
	pipe_flag(pp, F_ERROR);
	pipe_changed_all(pp);
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

struct pready *
pipe_ready_lock(polypipe *p)
{
	struct pipe *pp = pipe_of(p);
	struct pready *r = pipe_rdy(pp, end_reader(p)), *fresh = NULL;

	if (r == NULL) {
		/* Allocated before the locks, so that nobody waits on
		 * them for malloc. */
		fresh = psync_malloc(sizeof *fresh);
		if (fresh == NULL)
			return NULL;
		pready_init(fresh, true);
	}
	pipe_lock_all(pp);
	pipe_hold(pp);
	r = pipe_rdy(pp, end_reader(p));
	if (r == NULL && fresh != NULL) {
		/* Up, with the flag clear, until pipe_resync says what the
		 * state is: only a fall, and the new readiness has no
		 * descriptor, notifier or set to tell yet. */
		r = fresh;
		fresh = NULL;
		/* Release: pairs with the acquire in pipe_rdy. */
		atomic_store_explicit(&pp->rdy[end_reader(p)], r,
		                      memory_order_release);
		pipe_resync(pp);
	}
	free(fresh);
	return r;
}

bool
pipe_ready_trylock(polypipe *p)
{
	struct pipe *pp = pipe_of(p);

	if (!psync_ctr_trylock(&pp->w.tail))
		return false;
	if (psync_ctr_trylock(&pp->r.head)) {
		pipe_hold(pp);
		return true;
	}
	psync_ctr_unlock(&pp->w.tail);
	return false;
}

struct pready *
pipe_ready_of(polypipe *p)
{
	return pipe_rdy(pipe_of(p), end_reader(p));
}

void
pipe_ready_unlock(polypipe *p)
{
	struct pipe *pp = pipe_of(p);

	pipe_unlock_all(pp);
	pipe_unhold(pp);
}

/* EINVAL for NULL, EBADF unless p is the reader (or the writer). */
static bool
pipe_check_end(const polypipe *p, bool reader)
{
	if (p == NULL)
		errno = EINVAL;
	else if (end_reader(p) != reader)
		errno = EBADF;
	else
		return true;
	return false;
}

/* The descriptor of an end, created on first use. */
static int
pipe_fd(polypipe *p)
{
	struct pready *r = pipe_ready_lock(p);
	int fd;

	if (r == NULL)
		return -1;
	fd = pready_efd(r);
	pipe_ready_unlock(p);
	return fd;
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
	struct pready *r;
	struct pready_notify *ntf;

	if (fn == NULL) {
		/* Nothing to remove if it was never asked for. */
		r = pipe_ready_of(p);
		if (r != NULL)
			pready_set_notify(r, NULL, NULL);
		return 0;
	}
	r = pipe_ready_lock(p);
	if (r == NULL)
		return -1;
	ntf = pready_notify_get(r);
	pipe_ready_unlock(p);
	if (ntf == NULL)
		return -1;
	pready_set_notify(r, fn, arg);
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
	struct pipe *pp;

	if (p == NULL) {
		errno = EINVAL;
		return -1;
	}
	pp = pipe_of(p);
	pipe_lock_all(pp);
	pp->dtor = fn;
	pp->dtor_arg = arg;
	pipe_unlock_all(pp);
	return 0;
}

void
pipe_discard(polypipe *wr)
{
	struct pipe *pp = pipe_of(wr);
	struct orphans o;

	pipe_lock_all(pp);
	o = pipe_take_all(pp);
	pipe_changed_all(pp);
	orphans_destroy(&o);
}

void
polypipe_close(polypipe *p)
{
	struct orphans o = { 0 };
	struct pready *r;
	struct pipe *pp;
	unsigned changes;
	int fd = -1;

	if (p == NULL)
		return;
	pp = pipe_of(p);
	r = pipe_rdy(pp, end_reader(p));
	/* Our own notifier first, so the close never calls it. */
	if (r != NULL)
		pready_set_notify(r, NULL, NULL);
	pipe_lock_all(pp);
	if (r != NULL && r->member.set != NULL)
		pset_detach(r);
	if (r != NULL)
		fd = pready_efd_release(r);
	if (end_reader(p)) {
		o = pipe_take_all(pp);
		pipe_flag(pp, F_RDCLOSED);
	} else {
		pipe_flag(pp, F_EOF);
	}
	changes = pipe_resync(pp);
	pipe_wake_all(pp);
	/* Our reference goes only once the locks are released: releasing
	 * one still reads its word, and once the count is down the other
	 * end's close may free the pipe. */
	pipe_unlock_all(pp);
	pipe_after(pp, changes);
	pipe_unhold(pp); /* the end's own */
	psync_efd_close(fd);
	orphans_destroy(&o);
}
