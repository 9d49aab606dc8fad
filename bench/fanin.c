/*
 * fanin.c - the fan-in rows: one producer thread writes round-robin into
 * FANIN_PIPES channels, one consumer thread waits for any of them and
 * drains what it is told of.  This is a daemon's event loop serving many
 * connections, reduced to its waiting.
 *
 * Each row is a transport of bench.h whose channel is FANIN_PIPES
 * channels: send() writes into the next one round-robin (blocking while
 * it is full), recv_many() waits until some are ready and reads each with
 * one batched call that never waits.  The rows differ only in how the
 * consumer learns which are ready:
 *
 *   polyset          polyset_wait, then polypipe_read_many(..., 0)
 *   polyset_fd       epoll on polyset_fd alone, then polyset_wait(..., 0)
 *   read_fds         epoll over the pipes' polypipe_read_fd
 *   condvar+eventfd  the hand-rolled queue with an exact eventfd each
 *   socketpairs      AF_UNIX SOCK_SEQPACKET pairs, recvmmsg
 *   one pipe         every message through ONE pipe, blocking read_many:
 *                    what one channel carries, the ceiling of the rows
 *
 * Every wait is level-triggered, as the library's descriptors are: what
 * one pass leaves behind, the next wait reports again.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <polysocket/polyset.h>

#include "bench/bench.h"

/*
 * The hand-rolled queue: a mutex, a condition variable for the one
 * writer waiting on a full queue, and an eventfd kept readable exactly
 * while the queue holds a message, both changed under the mutex.  It is
 * what a user writes to put a queue of their own into an event loop.
 */
struct efq {
	pthread_mutex_t lock;
	pthread_cond_t not_full;
	size_t head, len; /* under lock */
	int efd;          /* readable while len > 0; written under lock */
	void *slot[FANIN_CAPACITY];
};

static struct efq *
efq_new(void)
{
	struct efq *q = malloc(sizeof *q);

	if (q == NULL)
		bench_die("out of memory");
	q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->efd < 0)
		bench_die("eventfd: %s", strerror(errno));
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->not_full, NULL);
	q->head = q->len = 0;
	return q;
}

static void
efq_free(struct efq *q)
{
	close(q->efd);
	pthread_cond_destroy(&q->not_full);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

static void
efq_push(struct efq *q, void *m)
{
	uint64_t one = 1;

	pthread_mutex_lock(&q->lock);
	while (q->len == FANIN_CAPACITY)
		pthread_cond_wait(&q->not_full, &q->lock);
	q->slot[(q->head + q->len) % FANIN_CAPACITY] = m;
	if (q->len++ == 0 && write(q->efd, &one, sizeof one) != sizeof one)
		bench_die("eventfd write: %s", strerror(errno));
	pthread_mutex_unlock(&q->lock);
}

/* Takes up to max, never waits; 0 if empty. */
static size_t
efq_pop(struct efq *q, void **m, size_t max)
{
	uint64_t v;
	size_t i;

	pthread_mutex_lock(&q->lock);
	if (max > q->len)
		max = q->len;
	for (i = 0; i < max; i++) {
		m[i] = q->slot[q->head];
		q->head = (q->head + 1) % FANIN_CAPACITY;
	}
	if (max > 0 && q->len == FANIN_CAPACITY)
		pthread_cond_signal(&q->not_full);
	q->len -= max;
	if (max > 0 && q->len == 0 && read(q->efd, &v, sizeof v) != sizeof v)
		bench_die("eventfd read: %s", strerror(errno));
	pthread_mutex_unlock(&q->lock);
	return max;
}

/* --- one fan-in channel ---------------------------------------------- */

enum fanin_kind { FK_SET, FK_SETFD, FK_READFD, FK_EFQ, FK_SOCKETPAIR };

struct fanin {
	enum fanin_kind kind;
	size_t next;         /* the producer's round-robin position */
	polypipe **rd, **wr; /* the pipe rows: FANIN_PIPES of each */
	polyset *set;        /* FK_SET, FK_SETFD */
	struct efq **q;      /* FK_EFQ */
	int *sp;             /* FK_SOCKETPAIR: 2 per channel, [1] writes */
	int epfd;            /* every row but FK_SET */
	struct polyset_event evs[FANIN_EVENTS];
	struct epoll_event eevs[FANIN_EVENTS];
};

static void *
fanin_alloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (p == NULL)
		bench_die("out of memory");
	return p;
}

static void
fanin_watch(struct fanin *f, int fd, uint64_t data)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = data };

	if (epoll_ctl(f->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		bench_die("epoll_ctl: %s", strerror(errno));
}

static void
fanin_open(struct chan *c, enum fanin_kind kind)
{
	struct fanin *f = fanin_alloc(1, sizeof *f);
	size_t i;
	int fd;

	f->kind = kind;
	f->epfd = -1;
	if (kind != FK_SET) {
		f->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (f->epfd < 0)
			bench_die("epoll_create1: %s", strerror(errno));
	}
	if (kind == FK_SET || kind == FK_SETFD) {
		f->set = polyset_create();
		if (f->set == NULL)
			bench_die("polyset_create: %s", strerror(errno));
	}
	if (kind == FK_SETFD) {
		fd = polyset_fd(f->set);
		if (fd < 0)
			bench_die("polyset_fd: %s", strerror(errno));
		fanin_watch(f, fd, 0);
	}
	if (kind == FK_EFQ) {
		f->q = fanin_alloc(FANIN_PIPES, sizeof *f->q);
		for (i = 0; i < FANIN_PIPES; i++) {
			f->q[i] = efq_new();
			fanin_watch(f, f->q[i]->efd, i);
		}
	} else if (kind == FK_SOCKETPAIR) {
		f->sp = fanin_alloc(2 * FANIN_PIPES, sizeof *f->sp);
		for (i = 0; i < FANIN_PIPES; i++) {
			if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC,
			               0, &f->sp[2 * i]) < 0)
				bench_die("socketpair: %s", strerror(errno));
			fanin_watch(f, f->sp[2 * i], i);
		}
	} else {
		f->rd = fanin_alloc(FANIN_PIPES, sizeof *f->rd);
		f->wr = fanin_alloc(FANIN_PIPES, sizeof *f->wr);
		for (i = 0; i < FANIN_PIPES; i++) {
			if (polypipe_create(FANIN_CAPACITY, &f->rd[i],
			                    &f->wr[i]) < 0)
				bench_die("polypipe_create: %s",
				          strerror(errno));
			if (f->set != NULL &&
			    polyset_add(f->set, f->rd[i], 0, NULL) < 0)
				bench_die("polyset_add: %s", strerror(errno));
			if (kind != FK_READFD)
				continue;
			fd = polypipe_read_fd(f->rd[i]);
			if (fd < 0)
				bench_die("polypipe_read_fd: %s",
				          strerror(errno));
			fanin_watch(f, fd, i);
		}
	}
	c->a = f;
}

static void
fanin_close(struct chan *c)
{
	struct fanin *f = c->a;
	size_t i;

	/* The set first, while its members are alive, as a daemon would
	 * tear it down; then everything else. */
	polyset_close(f->set);
	for (i = 0; f->rd != NULL && i < FANIN_PIPES; i++) {
		polypipe_close(f->wr[i]);
		polypipe_close(f->rd[i]);
	}
	for (i = 0; f->q != NULL && i < FANIN_PIPES; i++)
		efq_free(f->q[i]);
	for (i = 0; f->sp != NULL && i < 2 * FANIN_PIPES; i++)
		close(f->sp[i]);
	if (f->epfd >= 0)
		close(f->epfd);
	free(f->rd);
	free(f->wr);
	free(f->q);
	free(f->sp);
	free(f);
}

static void
fanin_open_set(struct chan *c, size_t capacity)
{
	(void)capacity; /* FANIN_CAPACITY each */
	fanin_open(c, FK_SET);
}

static void
fanin_open_setfd(struct chan *c, size_t capacity)
{
	(void)capacity;
	fanin_open(c, FK_SETFD);
}

static void
fanin_open_readfd(struct chan *c, size_t capacity)
{
	(void)capacity;
	fanin_open(c, FK_READFD);
}

static void
fanin_open_efq(struct chan *c, size_t capacity)
{
	(void)capacity;
	fanin_open(c, FK_EFQ);
}

static void
fanin_open_socketpair(struct chan *c, size_t capacity)
{
	(void)capacity;
	fanin_open(c, FK_SOCKETPAIR);
}

/* --- the producer ---------------------------------------------------- */

static size_t
fanin_turn(struct fanin *f)
{
	size_t i = f->next;

	f->next = i + 1 == FANIN_PIPES ? 0 : i + 1;
	return i;
}

static void
fanin_send_pipe(struct chan *c, void *m)
{
	struct fanin *f = c->a;

	if (polypipe_write(f->wr[fanin_turn(f)], m, -1) < 0)
		bench_die("polypipe_write: %s", strerror(errno));
}

static void
fanin_send_efq(struct chan *c, void *m)
{
	struct fanin *f = c->a;

	efq_push(f->q[fanin_turn(f)], m);
}

static void
fanin_send_socketpair(struct chan *c, void *m)
{
	struct fanin *f = c->a;
	int fd = f->sp[2 * fanin_turn(f) + 1];
	ssize_t r;

	do
		r = send(fd, &m, sizeof m, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	if (r != sizeof m)
		bench_die("send: %zd, %s", r, strerror(errno));
}

/* --- the consumer ---------------------------------------------------- */

/* One pipe the wait said is ready: all it holds, up to FANIN_CAPACITY. */
static size_t
fanin_drain(polypipe *rd, void **m)
{
	ssize_t r = polypipe_read_many(rd, m, FANIN_CAPACITY, 0);

	if (r > 0)
		return (size_t)r;
	/* One consumer: a ready pipe stays ready until it reads. */
	bench_die("polypipe_read_many on a ready pipe: %zd, %s", r,
	          r < 0 ? strerror(errno) : "end of stream");
}

/* What one polyset_wait reported. */
static size_t
fanin_drain_events(struct fanin *f, ssize_t k, void **m)
{
	size_t got = 0;
	ssize_t i;

	for (i = 0; i < k; i++)
		got += fanin_drain(f->evs[i].obj, m + got);
	return got;
}

static ssize_t
fanin_set_wait(struct fanin *f, int timeout_ms)
{
	ssize_t k = polyset_wait(f->set, f->evs, FANIN_EVENTS, timeout_ms);

	if (k == 0)
		bench_die("polyset_wait: woken, though nobody wakes it");
	if (k < 0 && (timeout_ms != 0 || errno != EAGAIN))
		bench_die("polyset_wait: %s", strerror(errno));
	return k;
}

static int
fanin_epoll(struct fanin *f, int max)
{
	int k;

	do
		k = epoll_wait(f->epfd, f->eevs, max, -1);
	while (k < 0 && errno == EINTR);
	if (k < 1)
		bench_die("epoll_wait: %d, %s", k, strerror(errno));
	return k;
}

static size_t
fanin_recv_set(struct chan *c, void **m, size_t max)
{
	struct fanin *f = c->a;

	(void)max; /* FANIN_BUF */
	return fanin_drain_events(f, fanin_set_wait(f, -1), m);
}

/* An event loop with the set as one of its descriptors: one pass of
 * polyset_wait per epoll_wait, back to epoll for the rest. */
static size_t
fanin_recv_setfd(struct chan *c, void **m, size_t max)
{
	struct fanin *f = c->a;
	size_t got = 0;
	ssize_t k;

	(void)max;
	while (got == 0) {
		fanin_epoll(f, 1);
		k = fanin_set_wait(f, 0);
		if (k > 0)
			got = fanin_drain_events(f, k, m);
	}
	return got;
}

static size_t
fanin_recv_readfd(struct chan *c, void **m, size_t max)
{
	struct fanin *f = c->a;
	size_t got = 0;
	int i, k;

	(void)max;
	k = fanin_epoll(f, FANIN_EVENTS);
	for (i = 0; i < k; i++)
		got += fanin_drain(f->rd[f->eevs[i].data.u64], m + got);
	return got;
}

static size_t
fanin_recv_efq(struct chan *c, void **m, size_t max)
{
	struct fanin *f = c->a;
	size_t got = 0, n;
	int i, k;

	(void)max;
	while (got == 0) {
		k = fanin_epoll(f, FANIN_EVENTS);
		for (i = 0; i < k; i++) {
			n = efq_pop(f->q[f->eevs[i].data.u64], m + got,
			            FANIN_CAPACITY);
			if (n == 0)
				bench_die("condvar+eventfd: readable but "
				          "empty");
			got += n;
		}
	}
	return got;
}

static size_t
fanin_recvmmsg(int fd, void **m)
{
	struct mmsghdr h[FANIN_CAPACITY];
	struct iovec iov[FANIN_CAPACITY];
	size_t i;
	int r;

	memset(h, 0, sizeof h);
	for (i = 0; i < FANIN_CAPACITY; i++) {
		iov[i].iov_base = &m[i];
		iov[i].iov_len = sizeof *m;
		h[i].msg_hdr.msg_iov = &iov[i];
		h[i].msg_hdr.msg_iovlen = 1;
	}
	do
		r = recvmmsg(fd, h, FANIN_CAPACITY, MSG_DONTWAIT, NULL);
	while (r < 0 && errno == EINTR);
	if (r < 1)
		bench_die("recvmmsg on a ready socket: %d, %s", r,
		          strerror(errno));
	for (i = 0; i < (size_t)r; i++)
		if (h[i].msg_len != sizeof *m)
			bench_die("recvmmsg: a message of %u bytes",
			          h[i].msg_len);
	return (size_t)r;
}

static size_t
fanin_recv_socketpair(struct chan *c, void **m, size_t max)
{
	struct fanin *f = c->a;
	size_t got = 0;
	int i, k;

	(void)max;
	k = fanin_epoll(f, FANIN_EVENTS);
	for (i = 0; i < k; i++)
		got += fanin_recvmmsg(f->sp[2 * f->eevs[i].data.u64], m + got);
	return got;
}

/* --- the one pipe ---------------------------------------------------- */

static void
one_open(struct chan *c, size_t capacity)
{
	polypipe *rd, *wr;

	if (polypipe_create(capacity, &rd, &wr) < 0)
		bench_die("polypipe_create: %s", strerror(errno));
	c->a = rd;
	c->b = wr;
}

static void
one_close(struct chan *c)
{
	polypipe_close(c->b);
	polypipe_close(c->a);
}

static void
one_send(struct chan *c, void *m)
{
	if (polypipe_write(c->b, m, -1) < 0)
		bench_die("polypipe_write: %s", strerror(errno));
}

static size_t
one_recv(struct chan *c, void **m, size_t max)
{
	ssize_t r = polypipe_read_many(c->a, m, max < BATCH ? max : BATCH, -1);

	if (r < 1)
		bench_die("polypipe_read_many: %zd, %s", r, strerror(errno));
	return (size_t)r;
}

/* --- the rows -------------------------------------------------------- */

const struct transport t_fanin_set = {
	.name = "fan-in polyset",
	.detail = "(a) polyset_wait, then read_many(..., 0) per event",
	.caps = CAP_FANIN,
	.open = fanin_open_set,
	.close = fanin_close,
	.send = fanin_send_pipe,
	.recv_many = fanin_recv_set,
};

const struct transport t_fanin_setfd = {
	.name = "fan-in polyset_fd",
	.detail = "(b) epoll on polyset_fd alone, then polyset_wait(..., 0)",
	.caps = CAP_FANIN,
	.fds = 2,
	.open = fanin_open_setfd,
	.close = fanin_close,
	.send = fanin_send_pipe,
	.recv_many = fanin_recv_setfd,
};

const struct transport t_fanin_readfd = {
	.name = "fan-in read_fds",
	.detail = "(c) epoll over the 1,000 polypipe_read_fd",
	.caps = CAP_FANIN,
	.fds = FANIN_PIPES + 1,
	.open = fanin_open_readfd,
	.close = fanin_close,
	.send = fanin_send_pipe,
	.recv_many = fanin_recv_readfd,
};

const struct transport t_fanin_efq = {
	.name = "fan-in cv+eventfd",
	.detail = "(d) mutex + condvar queues, an exact eventfd each, epoll",
	.caps = CAP_FANIN,
	.fds = FANIN_PIPES + 1,
	.open = fanin_open_efq,
	.close = fanin_close,
	.send = fanin_send_efq,
	.recv_many = fanin_recv_efq,
};

const struct transport t_fanin_socketpair = {
	.name = "fan-in socketpairs",
	.detail = "(e) 1,000 SOCK_SEQPACKET pairs in epoll, recvmmsg",
	.caps = CAP_FANIN,
	.fds = FANIN_MAX_FDS,
	.open = fanin_open_socketpair,
	.close = fanin_close,
	.send = fanin_send_socketpair,
	.recv_many = fanin_recv_socketpair,
};

const struct transport t_fanin_one = {
	.name = "fan-in one pipe",
	.detail = "(f) ONE pipe of capacity 1024, blocking read_many of 64",
	.caps = CAP_FANIN,
	.open = one_open,
	.close = one_close,
	.send = one_send,
	.recv_many = one_recv,
};
