/*
 * transports.c - the rows of the table: polypipe used six ways (blocking,
 * in poll(), blocking with its descriptor taken, in a polyset, and
 * batched, blocking or in poll()), the two rings of ring.h, the kernel's
 * pipe(2) and socketpair(2), and ZeroMQ and nng where configure found
 * them.
 *
 * Each moves void * messages one way.  Where the transport has a way to
 * move several messages in one call, the batched row uses it (the kernel
 * ones too), so the batched table compares batching with batching.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#ifdef HAVE_ZMQ
#include <zmq.h>
#endif
#ifdef HAVE_NNG
#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>
#endif

#include <polysocket/polyset.h>

#include "bench/bench.h"
#include "bench/ring.h"

/* --- polypipe -------------------------------------------------------- */

static void
pp_open(struct chan *c, size_t capacity)
{
	polypipe *rd, *wr;

	if (polypipe_create(capacity, &rd, &wr) < 0)
		bench_die("polypipe_create: %s", strerror(errno));
	c->a = rd;
	c->b = wr;
}

static void
pp_open_poll(struct chan *c, size_t capacity)
{
	pp_open(c, capacity);
	c->pfd = polypipe_read_fd(c->a);
	if (c->pfd < 0)
		bench_die("polypipe_read_fd: %s", strerror(errno));
}

static void
pp_close(struct chan *c)
{
	polypipe_close(c->b);
	polypipe_close(c->a);
}

static void
pp_send(struct chan *c, void *m)
{
	if (polypipe_write(c->b, m, -1) < 0)
		bench_die("polypipe_write: %s", strerror(errno));
}

static void *
pp_recv(struct chan *c)
{
	void *m;
	int r = polypipe_read(c->a, &m, -1);

	if (r != 1)
		bench_die("polypipe_read: %d, %s", r, strerror(errno));
	return m;
}

/* What an event loop does: drain with timeout 0, wait in poll() only
 * when the pipe is empty. */
static void *
pp_recv_poll(struct chan *c)
{
	struct pollfd p = { .fd = c->pfd, .events = POLLIN };
	void *m;
	int r;

	for (;;) {
		r = polypipe_read(c->a, &m, 0);
		if (r == 1)
			return m;
		if (r != -1 || errno != EAGAIN)
			bench_die("polypipe_read: %d, %s", r, strerror(errno));
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			bench_die("poll: %s", strerror(errno));
	}
}

static size_t
pp_send_many(struct chan *c, void *const *m, size_t n)
{
	ssize_t r = polypipe_write_many(c->b, m, n, -1);

	if (r < 1)
		bench_die("polypipe_write_many: %s", strerror(errno));
	return (size_t)r;
}

static size_t
pp_recv_many(struct chan *c, void **m, size_t max)
{
	ssize_t r = polypipe_read_many(c->a, m, max, -1);

	if (r < 1)
		bench_die("polypipe_read_many: %zd, %s", r, strerror(errno));
	return (size_t)r;
}

static const struct transport t_polypipe = {
	.name = "polypipe",
	.detail = "polypipe_write/polypipe_read, timeout -1",
	.caps = CAP_SINGLE | CAP_MPMC,
	.open = pp_open,
	.close = pp_close,
	.send = pp_send,
	.recv = pp_recv,
};

static const struct transport t_polypipe_poll = {
	.name = "polypipe poll",
	.detail = "reader: poll() on polypipe_read_fd, then read, timeout 0",
	.caps = CAP_SINGLE,
	.open = pp_open_poll,
	.close = pp_close,
	.send = pp_send,
	.recv = pp_recv_poll,
};

/* The same blocking calls on a pipe that has handed out its read
 * descriptor: the event loop's pipe, used by a thread that blocks. */
static const struct transport t_polypipe_watched = {
	.name = "polypipe watched",
	.detail = "as polypipe, on a pipe whose read_fd was taken",
	.caps = CAP_SINGLE,
	.open = pp_open_poll,
	.close = pp_close,
	.send = pp_send,
	.recv = pp_recv,
};

/* --- polypipe in a polyset ------------------------------------------- */

/* The reader's own set, holding the read end alone. */
static void
pp_open_set(struct chan *c, size_t capacity)
{
	pp_open(c, capacity);
	c->set = polyset_create();
	if (c->set == NULL)
		bench_die("polyset_create: %s", strerror(errno));
	if (polyset_add(c->set, c->a, 0, NULL) < 0)
		bench_die("polyset_add: %s", strerror(errno));
}

static void
pp_close_set(struct chan *c)
{
	polyset_close(c->set);
	pp_close(c);
}

/* An event loop on a set: wait for the set, then read what it said is
 * ready without waiting. */
static void *
pp_recv_set(struct chan *c)
{
	struct polyset_event ev;
	ssize_t k;
	void *m;
	int r;

	for (;;) {
		k = polyset_wait(c->set, &ev, 1, -1);
		if (k != 1 || ev.obj != c->a)
			bench_die("polyset_wait: %zd, %s", k,
			          k < 0 ? strerror(errno) : "wrong member");
		r = polypipe_read(c->a, &m, 0);
		if (r == 1)
			return m;
		if (r != -1 || errno != EAGAIN)
			bench_die("polypipe_read: %d, %s", r, strerror(errno));
	}
}

static const struct transport t_polypipe_set = {
	.name = "polypipe set",
	.detail = "reader: polyset_wait on its own set, then read, timeout 0",
	.caps = CAP_SINGLE,
	.open = pp_open_set,
	.close = pp_close_set,
	.send = pp_send,
	.recv = pp_recv_set,
};

static const struct transport t_polypipe_batch = {
	.name = "polypipe batch",
	.detail = "polypipe_write_many/read_many, 64 per call",
	.caps = CAP_BATCH,
	.open = pp_open,
	.close = pp_close,
	.send_many = pp_send_many,
	.recv_many = pp_recv_many,
};

/* An event loop draining a pipe: read_many with timeout 0, poll() on
 * the read descriptor only when the pipe is empty. */
static size_t
pp_recv_many_poll(struct chan *c, void **m, size_t max)
{
	struct pollfd p = { .fd = c->pfd, .events = POLLIN };
	ssize_t r;

	for (;;) {
		r = polypipe_read_many(c->a, m, max, 0);
		if (r > 0)
			return (size_t)r;
		if (r != -1 || errno != EAGAIN)
			bench_die("polypipe_read_many: %zd, %s", r,
			          strerror(errno));
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			bench_die("poll: %s", strerror(errno));
	}
}

static const struct transport t_polypipe_poll_batch = {
	.name = "polypipe poll batch",
	.detail = "as polypipe batch; reader: poll(), read_many(..., 0)",
	.caps = CAP_BATCH,
	.open = pp_open_poll,
	.close = pp_close,
	.send_many = pp_send_many,
	.recv_many = pp_recv_many_poll,
};

/* --- the rings ------------------------------------------------------- */

static void
cv_open(struct chan *c, size_t capacity)
{
	c->a = cvring_new(capacity);
	if (c->a == NULL)
		bench_die("out of memory");
}

static void
cv_close(struct chan *c)
{
	cvring_free(c->a);
}

static void
cv_send(struct chan *c, void *m)
{
	cvring_push(c->a, &m, 1);
}

static void *
cv_recv(struct chan *c)
{
	void *m;

	cvring_pop(c->a, &m, 1);
	return m;
}

static size_t
cv_send_many(struct chan *c, void *const *m, size_t n)
{
	return cvring_push(c->a, m, n);
}

static size_t
cv_recv_many(struct chan *c, void **m, size_t max)
{
	return cvring_pop(c->a, m, max);
}

static const struct transport t_condvar = {
	.name = "condvar ring",
	.detail = "mutex + 2 condvars + array (the hand-rolled baseline)",
	.caps = CAP_SINGLE | CAP_BATCH | CAP_MPMC,
	.open = cv_open,
	.close = cv_close,
	.send = cv_send,
	.recv = cv_recv,
	.send_many = cv_send_many,
	.recv_many = cv_recv_many,
};

static void
spsc_open(struct chan *c, size_t capacity)
{
	size_t pow2 = 1;

	while (pow2 < capacity)
		pow2 *= 2;
	c->a = spsc_new(pow2);
	if (c->a == NULL)
		bench_die("out of memory");
}

static void
spsc_close(struct chan *c)
{
	spsc_free(c->a);
}

static void
spsc_send(struct chan *c, void *m)
{
	spsc_push(c->a, &m, 1);
}

static void *
spsc_recv(struct chan *c)
{
	void *m;

	spsc_pop(c->a, &m, 1);
	return m;
}

static size_t
spsc_send_many(struct chan *c, void *const *m, size_t n)
{
	return spsc_push(c->a, m, n);
}

static size_t
spsc_recv_many(struct chan *c, void **m, size_t max)
{
	return spsc_pop(c->a, m, max);
}

static const struct transport t_spsc = {
	.name = "spsc busy-wait",
	.detail = "lock-free SPSC ring, spins (yields after 1024 spins)",
	.caps = CAP_SINGLE | CAP_BATCH,
	.open = spsc_open,
	.close = spsc_close,
	.send = spsc_send,
	.recv = spsc_recv,
	.send_many = spsc_send_many,
	.recv_many = spsc_recv_many,
};

/* --- pipe(2) --------------------------------------------------------- */

/* Reads exactly len bytes: a pipe may split what one write put in. */
static void
read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	ssize_t r;

	while (len > 0) {
		r = read(fd, p, len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			bench_die("read: %s",
			          r == 0 ? "EOF" : strerror(errno));
		p += r;
		len -= (size_t)r;
	}
}

static void
write_full(int fd, const void *buf, size_t len)
{
	ssize_t r;

	/* len <= PIPE_BUF: the kernel writes it whole, at once. */
	do
		r = write(fd, buf, len);
	while (r < 0 && errno == EINTR);
	if (r != (ssize_t)len)
		bench_die("write: %zd, %s", r, strerror(errno));
}

static void
pipe_open(struct chan *c, size_t capacity)
{
	if (pipe2(c->fd, O_CLOEXEC) < 0)
		bench_die("pipe2: %s", strerror(errno));
	/* The same capacity as the others, in bytes of pointers.  The
	 * kernel rounds up to pages; an unprivileged process may be
	 * refused more than the default, never less. */
	(void)fcntl(c->fd[1], F_SETPIPE_SZ, (int)(capacity * sizeof(void *)));
}

static void
fd_close(struct chan *c)
{
	close(c->fd[0]);
	close(c->fd[1]);
}

static void
pipe_send(struct chan *c, void *m)
{
	write_full(c->fd[1], &m, sizeof m);
}

static void *
pipe_recv(struct chan *c)
{
	void *m;

	read_full(c->fd[0], &m, sizeof m);
	return m;
}

static size_t
pipe_send_many(struct chan *c, void *const *m, size_t n)
{
	write_full(c->fd[1], m, n * sizeof *m);
	return n;
}

static size_t
pipe_recv_many(struct chan *c, void **m, size_t max)
{
	ssize_t r;

	do
		r = read(c->fd[0], m, max * sizeof *m);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		bench_die("read: %s", r == 0 ? "EOF" : strerror(errno));
	/* Whole pointers only: finish one the read cut. */
	if (r % sizeof *m != 0) {
		read_full(c->fd[0], (char *)m + r, sizeof *m - r % sizeof *m);
		r += sizeof *m - r % sizeof *m;
	}
	return (size_t)r / sizeof *m;
}

static const struct transport t_pipe = {
	.name = "pipe(2)",
	.detail = "8-byte write/read; batched: 512-byte write/read",
	.caps = CAP_SINGLE | CAP_BATCH | CAP_MPMC,
	.open = pipe_open,
	.close = fd_close,
	.send = pipe_send,
	.recv = pipe_recv,
	.send_many = pipe_send_many,
	.recv_many = pipe_recv_many,
};

/* --- socketpair(AF_UNIX, SOCK_SEQPACKET) ----------------------------- */

static void
sp_open(struct chan *c, size_t capacity)
{
	(void)capacity; /* the kernel's socket buffer decides */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, c->fd) < 0)
		bench_die("socketpair: %s", strerror(errno));
}

static void
sp_send(struct chan *c, void *m)
{
	ssize_t r;

	do
		r = send(c->fd[1], &m, sizeof m, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	if (r != sizeof m)
		bench_die("send: %zd, %s", r, strerror(errno));
}

static void *
sp_recv(struct chan *c)
{
	void *m;
	ssize_t r;

	do
		r = recv(c->fd[0], &m, sizeof m, 0);
	while (r < 0 && errno == EINTR);
	if (r != sizeof m)
		bench_die("recv: %zd, %s", r, strerror(errno));
	return m;
}

static size_t
sp_send_many(struct chan *c, void *const *m, size_t n)
{
	struct mmsghdr h[BATCH];
	struct iovec iov[BATCH];
	size_t i;
	int r;

	if (n > BATCH)
		n = BATCH;
	memset(h, 0, n * sizeof *h);
	for (i = 0; i < n; i++) {
		iov[i].iov_base = (void *)&m[i];
		iov[i].iov_len = sizeof *m;
		h[i].msg_hdr.msg_iov = &iov[i];
		h[i].msg_hdr.msg_iovlen = 1;
	}
	do
		r = sendmmsg(c->fd[1], h, (unsigned)n, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	if (r < 1)
		bench_die("sendmmsg: %d, %s", r, strerror(errno));
	return (size_t)r;
}

static size_t
sp_recv_many(struct chan *c, void **m, size_t max)
{
	struct mmsghdr h[BATCH];
	struct iovec iov[BATCH];
	size_t i;
	int r;

	if (max > BATCH)
		max = BATCH;
	memset(h, 0, max * sizeof *h);
	for (i = 0; i < max; i++) {
		iov[i].iov_base = &m[i];
		iov[i].iov_len = sizeof *m;
		h[i].msg_hdr.msg_iov = &iov[i];
		h[i].msg_hdr.msg_iovlen = 1;
	}
	do
		r = recvmmsg(c->fd[0], h, (unsigned)max, MSG_WAITFORONE, NULL);
	while (r < 0 && errno == EINTR);
	if (r < 1)
		bench_die("recvmmsg: %d, %s", r, strerror(errno));
	for (i = 0; i < (size_t)r; i++)
		if (h[i].msg_len != sizeof *m)
			bench_die("recvmmsg: a message of %u bytes",
			          h[i].msg_len);
	return (size_t)r;
}

static const struct transport t_socketpair = {
	.name = "socketpair",
	.detail = "AF_UNIX SOCK_SEQPACKET; batched: sendmmsg/recvmmsg",
	.caps = CAP_SINGLE | CAP_BATCH | CAP_MPMC,
	.open = sp_open,
	.close = fd_close,
	.send = sp_send,
	.recv = sp_recv,
	.send_many = sp_send_many,
	.recv_many = sp_recv_many,
};

/* --- ZeroMQ inproc PAIR ---------------------------------------------- */

#if defined(HAVE_ZMQ) || defined(HAVE_NNG)
/* Each channel binds its own inproc name. */
static unsigned endpoint_seq;
#endif

#ifdef HAVE_ZMQ
static void *zq_context;

static void *
zq_pair(int hwm_option, int hwm)
{
	void *s = zmq_socket(zq_context, ZMQ_PAIR);
	int linger = 0;

	if (s == NULL)
		bench_die("zmq_socket: %s", zmq_strerror(zmq_errno()));
	if (zmq_setsockopt(s, hwm_option, &hwm, sizeof hwm) < 0 ||
	    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger) < 0)
		bench_die("zmq_setsockopt: %s", zmq_strerror(zmq_errno()));
	return s;
}

static void
zq_open(struct chan *c, size_t capacity)
{
	char name[64];

	if (zq_context == NULL) {
		zq_context = zmq_ctx_new();
		if (zq_context == NULL)
			bench_die("zmq_ctx_new: %s",
			          zmq_strerror(zmq_errno()));
	}
	/* An inproc pipe holds the sender's SNDHWM plus the receiver's
	 * RCVHWM: half each makes the capacity of the other rows. */
	c->a = zq_pair(ZMQ_RCVHWM, (int)capacity / 2);
	c->b = zq_pair(ZMQ_SNDHWM, (int)capacity / 2);
	snprintf(name, sizeof name, "inproc://bench-%u", endpoint_seq++);
	if (zmq_bind(c->a, name) < 0 || zmq_connect(c->b, name) < 0)
		bench_die("zmq_bind/connect: %s", zmq_strerror(zmq_errno()));
}

static void
zq_close(struct chan *c)
{
	zmq_close(c->b);
	zmq_close(c->a);
}

static void
zq_send(struct chan *c, void *m)
{
	int r;

	do
		r = zmq_send(c->b, &m, sizeof m, 0);
	while (r < 0 && zmq_errno() == EINTR);
	if (r != sizeof m)
		bench_die("zmq_send: %s", zmq_strerror(zmq_errno()));
}

static void *
zq_recv(struct chan *c)
{
	void *m;
	int r;

	do
		r = zmq_recv(c->a, &m, sizeof m, 0);
	while (r < 0 && zmq_errno() == EINTR);
	if (r != sizeof m)
		bench_die("zmq_recv: %d, %s", r, zmq_strerror(zmq_errno()));
	return m;
}

static const struct transport t_zmq = {
	.name = "zeromq inproc",
	.detail = "ZMQ_PAIR over inproc://, SNDHWM + RCVHWM = 1024",
	.caps = CAP_SINGLE, /* its sockets are not thread-safe */
	.open = zq_open,
	.close = zq_close,
	.send = zq_send,
	.recv = zq_recv,
};
#endif /* HAVE_ZMQ */

/* --- nng inproc pair1 ------------------------------------------------ */

#ifdef HAVE_NNG
struct ng_chan {
	nng_socket rx, tx;
};

static void
ng_check(int err, const char *what)
{
	if (err != 0)
		bench_die("%s: %s", what, nng_strerror(err));
}

static void
ng_open(struct chan *c, size_t capacity)
{
	struct ng_chan *n = malloc(sizeof *n);
	char name[64];

	if (n == NULL)
		bench_die("out of memory");
	ng_check(nng_pair1_open(&n->rx), "nng_pair1_open");
	ng_check(nng_pair1_open(&n->tx), "nng_pair1_open");
	/* As for ZeroMQ: the two buffers together make the capacity. */
	ng_check(nng_socket_set_int(n->rx, NNG_OPT_RECVBUF, (int)capacity / 2),
	         "recv-buffer");
	ng_check(nng_socket_set_int(n->tx, NNG_OPT_SENDBUF, (int)capacity / 2),
	         "send-buffer");
	snprintf(name, sizeof name, "inproc://bench-nng-%u", endpoint_seq++);
	ng_check(nng_listen(n->rx, name, NULL, 0), "nng_listen");
	ng_check(nng_dial(n->tx, name, NULL, 0), "nng_dial");
	c->a = n;
}

static void
ng_close(struct chan *c)
{
	struct ng_chan *n = c->a;

	nng_close(n->tx);
	nng_close(n->rx);
	free(n);
}

static void
ng_send(struct chan *c, void *m)
{
	struct ng_chan *n = c->a;

	ng_check(nng_send(n->tx, &m, sizeof m, 0), "nng_send");
}

static void *
ng_recv(struct chan *c)
{
	struct ng_chan *n = c->a;
	size_t len = sizeof(void *);
	void *m;

	ng_check(nng_recv(n->rx, &m, &len, 0), "nng_recv");
	if (len != sizeof m)
		bench_die("nng_recv: a message of %zu bytes", len);
	return m;
}

static const struct transport t_nng = {
	.name = "nng inproc",
	.detail = "pair1 over inproc://, send + recv buffers = 1024",
	.caps = CAP_SINGLE | CAP_MPMC, /* its sockets are thread-safe */
	.open = ng_open,
	.close = ng_close,
	.send = ng_send,
	.recv = ng_recv,
};
#endif /* HAVE_NNG */

/* The polypipe rows first (each table's reference is its first polypipe
 * row), then the baseline, the kernel, the libraries, the limit; then the
 * fan-in rows of fanin.c, which only the fan-in table shows. */
const struct transport *const transports[] = {
	&t_polypipe,
	&t_polypipe_poll,
	&t_polypipe_watched,
	&t_polypipe_set,
	&t_polypipe_batch,
	&t_polypipe_poll_batch,
	&t_condvar,
	&t_pipe,
	&t_socketpair,
#ifdef HAVE_ZMQ
	&t_zmq,
#endif
#ifdef HAVE_NNG
	&t_nng,
#endif
	&t_spsc,
	&t_fanin_set,
	&t_fanin_setfd,
	&t_fanin_readfd,
	&t_fanin_efq,
	&t_fanin_socketpair,
	&t_fanin_one,
	NULL,
};

const struct transport *
transport_find(const char *name)
{
	size_t i;

	for (i = 0; transports[i] != NULL; i++)
		if (strcmp(transports[i]->name, name) == 0)
			return transports[i];
	return NULL;
}

size_t
transport_capacity(const struct transport *t)
{
	struct chan c = { .t = t, .pfd = -1 };
	size_t n = 0;
	void *m = NULL;
	int sz;

	if (t == &t_pipe) {
		t->open(&c, CAPACITY);
		sz = fcntl(c.fd[1], F_GETPIPE_SZ);
		t->close(&c);
		return sz > 0 ? (size_t)sz / sizeof m : 0;
	}
	if (t != &t_socketpair)
		return CAPACITY;
	/* Fill it without blocking and count. */
	t->open(&c, CAPACITY);
	while (n < 1000000 && send(c.fd[1], &m, sizeof m,
	                           MSG_DONTWAIT | MSG_NOSIGNAL) == sizeof m)
		n++;
	t->close(&c);
	return n;
}

void
transports_fini(void)
{
#ifdef HAVE_ZMQ
	if (zq_context != NULL)
		zmq_ctx_term(zq_context);
	zq_context = NULL;
#endif
}
