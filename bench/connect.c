/*
 * connect.c - short connections (issue 14): what setting up a connection
 * costs, beside the kernel and the other in-process libraries doing the
 * same.
 *
 * A client thread connects, sends one request, reads the reply and
 * closes; a server thread accepts, reads the request, replies and closes
 * its side.  Each reply is checked.  Rows: polysocket by handle and by
 * name, waiting for the accept (polyclient_endpoint), and by handle
 * without waiting (polyclient_endpoint_async: the request waits in the
 * pipe, as AF_UNIX's connect does not wait for accept either), AF_UNIX
 * SOCK_SEQPACKET in the abstract namespace, ZeroMQ inproc
 * (REQ/REP) and nng inproc (req0/rep0) when built with them: neither has
 * an accept, so their server only answers, and their client opens,
 * dials, asks and closes a socket.  Workloads: one pair (the client's
 * thread and the server's on two CPUs), two pairs on two servers (four
 * threads, placed by the scheduler), and for polysocket an accept storm:
 * 8 client threads connecting bursts of 8, the server taking up to 64
 * per polyserver_accept_many call, or one per polyserver_accept.
 *
 * As in bench.c, a round runs every cell once, in a fixed order, so the
 * rows alternate; values are medians across rounds and ratios medians of
 * the per-round ratios.  "sleeps" is the voluntary context switches of
 * all the cell's threads per connection: a wait that spun instead of
 * sleeping costs none.
 *
 * Then what one connection costs: allocations (the counting allocator of
 * memory.c) and system calls (counted by ptrace in a child process) of
 * one connect + accept + close on one thread, with and without a request
 * and reply; and 100,000 idle connections between two threads: bytes per
 * connection (client, both pipes, both sides), time to open them all,
 * and nothing left once all are closed.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <polysocket/polysocket.h>

#ifdef HAVE_ZMQ
#include <zmq.h>
#endif
#ifdef HAVE_NNG
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#endif

#include "bench/bench.h"

#define CONN_CAPACITY 4
#define CONN_WAIT_MS 10000 /* only a lost wake-up reaches it */
#define CONN_ROUNDS_MAX 32
#define STORM_CLIENTS 8
#define STORM_BURST 8
#define STORM_BATCH 64
#define SCALE_CONNS 100000
#define SCALE_CONNS_QUICK 20000

/* --- the rows -------------------------------------------------------- */

enum ckind { K_HANDLE, K_NAME, K_ASYNC, K_UNIX, K_ZMQ, K_NNG, K_COUNT };

static const char *const kind_name[K_COUNT] = {
	[K_HANDLE] = "polysocket",      [K_NAME] = "polysocket by name",
	[K_ASYNC] = "polysocket async", [K_UNIX] = "AF_UNIX seqpacket",
	[K_ZMQ] = "zeromq inproc",      [K_NNG] = "nng inproc",
};

static bool
kind_built(enum ckind k)
{
#ifndef HAVE_ZMQ
	if (k == K_ZMQ)
		return false;
#endif
#ifndef HAVE_NNG
	if (k == K_NNG)
		return false;
#endif
	(void)k;
	return true;
}

/* One server, what clients connect to. */
struct lsn {
	enum ckind kind;
	polyserver *srv;
	char name[80]; /* polysocket name, inproc address */
	int fd;
	struct sockaddr_un addr;
	socklen_t alen;
#ifdef HAVE_ZMQ
	void *zs;
#endif
#ifdef HAVE_NNG
	nng_socket ns;
#endif
};

#ifdef HAVE_ZMQ
static void *zctx;

static void
zmq_die(const char *what)
{
	bench_die("%s: %s", what, zmq_strerror(zmq_errno()));
}

/*
 * A socket closed with zmq_close counts against the context's 1,023
 * sockets until ZeroMQ's reaper thread has taken it down, and with four
 * threads busy on two CPUs the reaper can fall that far behind: a
 * zmq_socket that finds the context full waits for it (part of
 * ZeroMQ's cost of a connection), up to CONN_WAIT_MS.
 */
static void *
zmq_sock(int type)
{
	struct timespec pause = { .tv_nsec = 100000 };
	int linger = 0, ms = CONN_WAIT_MS, waited;
	void *s;

	for (waited = 0;; waited++) {
		s = zmq_socket(zctx, type);
		if (s != NULL || zmq_errno() != EMFILE ||
		    waited >= CONN_WAIT_MS * 10)
			break;
		nanosleep(&pause, NULL);
	}
	if (s == NULL)
		zmq_die("zmq_socket");
	if (zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger) < 0 ||
	    zmq_setsockopt(s, ZMQ_RCVTIMEO, &ms, sizeof ms) < 0)
		zmq_die("zmq_setsockopt");
	return s;
}
#endif

#ifdef HAVE_NNG
static void
nng_check(int err, const char *what)
{
	if (err != 0)
		bench_die("%s: %s", what, nng_strerror(err));
}
#endif

/* Every listener of the run has a name of its own: ZeroMQ and nng may
 * still be tearing down the last one's. */
static unsigned lsn_serial;

static void
lsn_open(struct lsn *l, enum ckind k)
{
	unsigned id = lsn_serial++;

	memset(l, 0, sizeof *l);
	l->kind = k;
	l->fd = -1;
	switch (k) {
	case K_HANDLE:
	case K_NAME:
	case K_ASYNC:
		l->srv = polyserver_create();
		if (l->srv == NULL)
			bench_die("polyserver_create: %s", strerror(errno));
		snprintf(l->name, sizeof l->name, "bench-connect-%u", id);
		if (k == K_NAME && polyserver_bind(l->srv, l->name) < 0)
			bench_die("polyserver_bind: %s", strerror(errno));
		break;
	case K_UNIX: {
		struct timeval tv = { .tv_sec = CONN_WAIT_MS / 1000 };
		int n;

		l->addr.sun_family = AF_UNIX;
		/* Abstract: sun_path[0] is NUL, the name its bytes after. */
		n = snprintf(l->addr.sun_path + 1, sizeof l->addr.sun_path - 1,
		             "polysocket-bench-%d-%u", (int)getpid(), id);
		l->alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
		                      1 + (size_t)n);
		l->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (l->fd < 0 ||
		    bind(l->fd, (struct sockaddr *)&l->addr, l->alen) < 0 ||
		    listen(l->fd, 4096) < 0 ||
		    setsockopt(l->fd, SOL_SOCKET, SO_RCVTIMEO, &tv,
		               sizeof tv) < 0)
			bench_die("AF_UNIX listener: %s", strerror(errno));
		break;
	}
	case K_ZMQ:
#ifdef HAVE_ZMQ
		if (zctx == NULL && (zctx = zmq_ctx_new()) == NULL)
			zmq_die("zmq_ctx_new");
		snprintf(l->name, sizeof l->name, "inproc://connect-%u", id);
		l->zs = zmq_sock(ZMQ_REP);
		if (zmq_bind(l->zs, l->name) < 0)
			zmq_die("zmq_bind");
#endif
		break;
	case K_NNG:
#ifdef HAVE_NNG
		snprintf(l->name, sizeof l->name, "inproc://connect-%u", id);
		nng_check(nng_rep0_open(&l->ns), "nng_rep0_open");
		nng_check(
		    nng_socket_set_ms(l->ns, NNG_OPT_RECVTIMEO, CONN_WAIT_MS),
		    "nng_socket_set_ms");
		nng_check(nng_listen(l->ns, l->name, NULL, 0), "nng_listen");
#endif
		break;
	default:
		break;
	}
}

static void
lsn_close(struct lsn *l)
{
	switch (l->kind) {
	case K_HANDLE:
	case K_NAME:
	case K_ASYNC:
		polyserver_close(l->srv);
		break;
	case K_UNIX:
		close(l->fd);
		break;
	case K_ZMQ:
#ifdef HAVE_ZMQ
		zmq_close(l->zs);
#endif
		break;
	case K_NNG:
#ifdef HAVE_NNG
		nng_close(l->ns);
#endif
		break;
	default:
		break;
	}
}

/* The server's side of one connection: accept, read, reply, close. */
static void
serve_one(struct lsn *l)
{
	polyendpoint ep;
	uint64_t m;
	void *p;
	int fd;

	switch (l->kind) {
	case K_HANDLE:
	case K_NAME:
	case K_ASYNC:
		if (polyserver_accept(l->srv, &ep, CONN_WAIT_MS) < 0)
			bench_die("polyserver_accept: %s", strerror(errno));
		if (polypipe_read(ep.rd, &p, CONN_WAIT_MS) != 1 ||
		    polypipe_write(ep.wr, (char *)p + 1, CONN_WAIT_MS) != 0)
			bench_die("server: %s", strerror(errno));
		polyendpoint_close(&ep);
		break;
	case K_UNIX:
		fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			bench_die("accept4: %s", strerror(errno));
		if (recv(fd, &m, sizeof m, 0) != (ssize_t)sizeof m)
			bench_die("server recv: %s", strerror(errno));
		m++;
		if (send(fd, &m, sizeof m, 0) != (ssize_t)sizeof m)
			bench_die("server send: %s", strerror(errno));
		close(fd);
		break;
	case K_ZMQ:
#ifdef HAVE_ZMQ
		if (zmq_recv(l->zs, &m, sizeof m, 0) != (int)sizeof m)
			zmq_die("server zmq_recv");
		m++;
		if (zmq_send(l->zs, &m, sizeof m, 0) != (int)sizeof m)
			zmq_die("server zmq_send");
#endif
		break;
	case K_NNG:
#ifdef HAVE_NNG
	{
		size_t len = sizeof m;

		nng_check(nng_recv(l->ns, &m, &len, 0), "server nng_recv");
		m++;
		nng_check(nng_send(l->ns, &m, sizeof m, 0), "server nng_send");
	}
#endif
	break;
	default:
		break;
	}
}

/* The client's side: connect, ask req, check the answer, close. */
static void
call_one(struct lsn *l, uint64_t req)
{
	uint64_t m = req;
	polyendpoint ep;
	polyclient *cl;
	void *p = NULL;
	int fd, r;

	switch (l->kind) {
	case K_HANDLE:
	case K_NAME:
	case K_ASYNC:
		cl = polyclient_create(CONN_CAPACITY);
		if (cl == NULL)
			bench_die("polyclient_create: %s", strerror(errno));
		r = l->kind == K_NAME ? polyclient_connect_name(cl, l->name)
		                      : polyclient_connect(cl, l->srv);
		/* Async: as AF_UNIX's connect, the request waits in the
		 * pipe until the server accepts. */
		if (r == 0)
			r = l->kind == K_ASYNC
			        ? polyclient_endpoint_async(cl, &ep)
			        : polyclient_endpoint(cl, &ep, CONN_WAIT_MS);
		if (r < 0)
			bench_die("connect: %s", strerror(errno));
		if (polypipe_write(ep.wr, (void *)(uintptr_t)req,
		                   CONN_WAIT_MS) != 0 ||
		    polypipe_read(ep.rd, &p, CONN_WAIT_MS) != 1)
			bench_die("client: %s", strerror(errno));
		polyclient_close(cl);
		m = (uint64_t)(uintptr_t)p;
		break;
	case K_UNIX:
		fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (fd < 0 ||
		    connect(fd, (struct sockaddr *)&l->addr, l->alen) < 0)
			bench_die("AF_UNIX connect: %s", strerror(errno));
		if (send(fd, &m, sizeof m, 0) != (ssize_t)sizeof m ||
		    recv(fd, &m, sizeof m, 0) != (ssize_t)sizeof m)
			bench_die("client send/recv: %s", strerror(errno));
		close(fd);
		break;
	case K_ZMQ:
#ifdef HAVE_ZMQ
	{
		void *s = zmq_sock(ZMQ_REQ);

		if (zmq_connect(s, l->name) < 0)
			zmq_die("zmq_connect");
		if (zmq_send(s, &m, sizeof m, 0) != (int)sizeof m ||
		    zmq_recv(s, &m, sizeof m, 0) != (int)sizeof m)
			zmq_die("client zmq_send/recv");
		zmq_close(s);
	}
#endif
	break;
	case K_NNG:
#ifdef HAVE_NNG
	{
		size_t len = sizeof m;
		nng_socket s;

		nng_check(nng_req0_open(&s), "nng_req0_open");
		nng_check(
		    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, CONN_WAIT_MS),
		    "nng_socket_set_ms");
		nng_check(nng_dial(s, l->name, NULL, 0), "nng_dial");
		nng_check(nng_send(s, &m, sizeof m, 0), "client nng_send");
		nng_check(nng_recv(s, &m, &len, 0), "client nng_recv");
		nng_close(s);
	}
#endif
	break;
	default:
		break;
	}
	if (m != req + 1)
		bench_error("%s: request %llu answered %llu",
		            kind_name[l->kind], (unsigned long long)req,
		            (unsigned long long)m);
}

/* --- trials ---------------------------------------------------------- */

static long
thread_sleeps(void)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	return ru.ru_nvcsw;
}

struct worker {
	struct lsn *l;
	pthread_barrier_t *start;
	pthread_t thread;
	int cpu;
	bool server;
	bool many;      /* storm server: accept_many */
	uint64_t count; /* connections (storm client: bursts) */
	uint64_t base;  /* first request number */
	uint64_t calls; /* storm server: accept calls made */
	long sleeps;
	/* Its own clock: the test's thread may not run while the workers
	 * spin on both CPUs, so it cannot time them. */
	uint64_t t_start, t_end;
};

static void *
pair_main(void *arg)
{
	struct worker *w = arg;
	uint64_t i;
	long s0;

	pin_to_cpu(w->cpu);
	pthread_barrier_wait(w->start);
	s0 = thread_sleeps();
	w->t_start = now_ns();
	for (i = 0; i < w->count; i++) {
		if (w->server)
			serve_one(w->l);
		else
			call_one(w->l, w->base + i);
	}
	w->t_end = now_ns();
	w->sleeps = thread_sleeps() - s0;
	return NULL;
}

static void *
storm_server(void *arg)
{
	struct worker *w = arg;
	polyendpoint eps[STORM_BATCH];
	uint64_t done = 0;
	ssize_t n, i;
	long s0;

	pin_to_cpu(w->cpu);
	pthread_barrier_wait(w->start);
	s0 = thread_sleeps();
	w->t_start = now_ns();
	while (done < w->count) {
		n = polyserver_accept_many(
		    w->l->srv, eps, w->many ? STORM_BATCH : 1, CONN_WAIT_MS);
		if (n < 0)
			bench_die("accept storm: %s", strerror(errno));
		for (i = 0; i < n; i++)
			polyendpoint_close(&eps[i]);
		done += (uint64_t)n;
		w->calls++;
	}
	w->t_end = now_ns();
	w->sleeps = thread_sleeps() - s0;
	return NULL;
}

static void *
storm_client(void *arg)
{
	struct worker *w = arg;
	polyclient *cl[STORM_BURST];
	polyendpoint ep;
	uint64_t b;
	long s0;
	int i;

	pin_to_cpu(w->cpu);
	pthread_barrier_wait(w->start);
	s0 = thread_sleeps();
	w->t_start = now_ns();
	for (b = 0; b < w->count; b++) {
		for (i = 0; i < STORM_BURST; i++) {
			cl[i] = polyclient_create(CONN_CAPACITY);
			if (cl[i] == NULL ||
			    polyclient_connect(cl[i], w->l->srv) < 0)
				bench_die("storm connect: %s",
				          strerror(errno));
		}
		for (i = 0; i < STORM_BURST; i++) {
			if (polyclient_endpoint(cl[i], &ep, CONN_WAIT_MS) < 0)
				bench_die("storm endpoint: %s",
				          strerror(errno));
			polyclient_close(cl[i]);
		}
	}
	w->t_end = now_ns();
	w->sleeps = thread_sleeps() - s0;
	return NULL;
}

enum cwork { W_ONE, W_ONE_FREE, W_TWO, W_STORM_MANY, W_STORM_ONE, W_COUNT };

struct trial {
	double rate;   /* connections per second */
	double ns;     /* wall time */
	double sleeps; /* per connection, all threads */
	double batch;  /* storm: connections per accept call */
};

static int conn_cpu_a, conn_cpu_b;

/* Runs count connections (per pair; storm: bursts per client). */
static void
run_trial_conn(enum ckind k, enum cwork w, uint64_t count, struct trial *r)
{
	struct worker ws[2 * 2 + STORM_CLIENTS + 1];
	pthread_barrier_t start;
	struct lsn l[2];
	uint64_t t0, t1, conns, calls = 0;
	int nl, nw = 0, i;
	long sleeps = 0;

	nl = w == W_TWO ? 2 : 1;
	for (i = 0; i < nl; i++)
		lsn_open(&l[i], k);
	memset(ws, 0, sizeof ws);
	if (w == W_ONE || w == W_ONE_FREE || w == W_TWO) {
		for (i = 0; i < nl; i++) {
			/* W_ONE: client and server on two CPUs.  Else the
			 * scheduler's call: one pair, or two pairs, four
			 * threads on two CPUs. */
			ws[nw++] = (struct worker){
				.l = &l[i],
				.cpu = w == W_ONE ? conn_cpu_b : -1,
				.server = true,
				.count = count,
			};
			ws[nw++] = (struct worker){
				.l = &l[i],
				.cpu = w == W_ONE ? conn_cpu_a : -1,
				.count = count,
				.base = (uint64_t)i << 40,
			};
		}
		conns = count * (uint64_t)nl;
	} else {
		ws[nw++] = (struct worker){ .l = &l[0],
			                    .cpu = -1,
			                    .server = true,
			                    .many = w == W_STORM_MANY,
			                    .count = count * STORM_CLIENTS *
			                             STORM_BURST };
		for (i = 0; i < STORM_CLIENTS; i++)
			ws[nw++] = (struct worker){ .l = &l[0],
				                    .cpu = -1,
				                    .count = count };
		conns = count * STORM_CLIENTS * STORM_BURST;
	}
	if (pthread_barrier_init(&start, NULL, (unsigned)nw + 1) != 0)
		bench_die("pthread_barrier_init");
	for (i = 0; i < nw; i++) {
		void *(*fn)(void *) = pair_main;

		ws[i].start = &start;
		if (w == W_STORM_MANY || w == W_STORM_ONE)
			fn = ws[i].server ? storm_server : storm_client;
		if (pthread_create(&ws[i].thread, NULL, fn, &ws[i]) != 0)
			bench_die("pthread_create");
	}
	pthread_barrier_wait(&start);
	t0 = UINT64_MAX;
	t1 = 0;
	for (i = 0; i < nw; i++) {
		pthread_join(ws[i].thread, NULL);
		sleeps += ws[i].sleeps;
		calls += ws[i].calls;
		if (ws[i].t_start < t0)
			t0 = ws[i].t_start;
		if (ws[i].t_end > t1)
			t1 = ws[i].t_end;
	}
	pthread_barrier_destroy(&start);
	for (i = 0; i < nl; i++)
		lsn_close(&l[i]);
	r->ns = (double)(t1 - t0);
	r->rate = (double)conns / (r->ns / 1e9);
	r->sleeps = (double)sleeps / (double)conns;
	r->batch = calls > 0 ? (double)conns / (double)calls : NAN;
}

/* --- cells, rounds, statistics --------------------------------------- */

struct ccell {
	enum ckind k;
	enum cwork w;
	uint64_t count;
	unsigned n;
	double v[CONN_ROUNDS_MAX];
	double sleeps[CONN_ROUNDS_MAX];
	double batch[CONN_ROUNDS_MAX];
};

static struct ccell ccells[K_COUNT * 3 + 2];
static size_t nccells;

static struct ccell *
ccell(enum ckind k, enum cwork w)
{
	size_t i;

	for (i = 0; i < nccells; i++)
		if (ccells[i].k == k && ccells[i].w == w)
			return &ccells[i];
	return NULL;
}

static int
cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
med(const double *v, unsigned n)
{
	double s[CONN_ROUNDS_MAX];

	if (n == 0)
		return NAN;
	memcpy(s, v, n * sizeof *s);
	qsort(s, n, sizeof *s, cmp_d);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static double
max_of(const double *v, unsigned n)
{
	double m = v[0];
	unsigned i;

	for (i = 1; i < n; i++)
		if (v[i] > m)
			m = v[i];
	return m;
}

static double
mad_pct(const double *v, unsigned n)
{
	double m = med(v, n), d[CONN_ROUNDS_MAX];
	unsigned i;

	for (i = 0; i < n; i++)
		d[i] = fabs(v[i] - m);
	return 100 * med(d, n) / m;
}

/* Median over rounds of a's rate over b's. */
static double
cratio(const struct ccell *a, const struct ccell *b)
{
	double q[CONN_ROUNDS_MAX];
	unsigned i, n;

	if (a == NULL || b == NULL)
		return NAN;
	n = a->n < b->n ? a->n : b->n;
	for (i = 0; i < n; i++)
		q[i] = a->v[i] / b->v[i];
	return med(q, n);
}

static void
ccell_calibrate(struct ccell *c, double target_ns)
{
	struct trial r;
	uint64_t count = 16;

	for (;;) {
		run_trial_conn(c->k, c->w, count, &r);
		if (r.ns >= target_ns / 8 || count >= 1u << 24)
			break;
		count *= 4;
	}
	count = (uint64_t)((double)count * target_ns / r.ns);
	c->count = count < 16 ? 16 : count;
}

/* --- one connection's allocations and system calls ------------------- */

/* One connection on one thread: connect, accept, (request, reply),
 * close both sides. */
static void
one_cycle(polyserver *srv, bool messages)
{
	polyendpoint ep, sep;
	polyclient *cl = polyclient_create(CONN_CAPACITY);
	void *p;

	if (cl == NULL || polyclient_connect(cl, srv) < 0 ||
	    polyserver_accept(srv, &sep, 0) < 0 ||
	    polyclient_endpoint(cl, &ep, 0) < 0)
		bench_die("one connection: %s", strerror(errno));
	if (messages && (polypipe_write(ep.wr, &ep, 0) != 0 ||
	                 polypipe_read(sep.rd, &p, 0) != 1 ||
	                 polypipe_write(sep.wr, p, 0) != 0 ||
	                 polypipe_read(ep.rd, &p, 0) != 1 || p != &ep))
		bench_die("one connection's messages: %s", strerror(errno));
	polyendpoint_close(&sep);
	polyclient_close(cl);
}

static const struct {
	long nr;
	const char *name;
} sysnames[] = {
	{ SYS_futex, "futex" },
	{ SYS_eventfd2, "eventfd2" },
	{ SYS_read, "read" },
	{ SYS_write, "write" },
	{ SYS_close, "close" },
	{ SYS_membarrier, "membarrier" },
	{ SYS_brk, "brk" },
	{ SYS_mmap, "mmap" },
	{ SYS_munmap, "munmap" },
	{ SYS_madvise, "madvise" },
	{ SYS_sched_yield, "sched_yield" },
};

static void
sysname(long nr, char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof sysnames / sizeof *sysnames; i++)
		if (sysnames[i].nr == nr) {
			snprintf(buf, len, "%s", sysnames[i].name);
			return;
		}
	snprintf(buf, len, "#%ld", nr);
}

/*
 * System calls of one_cycle, in a child traced by ptrace, between two
 * getppid calls that mark the measured stretch (after three warm-up
 * cycles: the once-per-process set-up is not the connection's).  -1 if
 * ptrace is not allowed here; names get the calls made.
 */
static long
count_syscalls(bool messages, char *names, size_t len)
{
	struct __ptrace_syscall_info info;
	int status, sig = 0, marks = 0;
	long count = 0;
	size_t used = 0;
	char nm[32];
	pid_t pid;

	names[0] = '\0';
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		polyserver *srv = polyserver_create();
		int i;

		if (srv == NULL)
			_exit(2);
		for (i = 0; i < 3; i++)
			one_cycle(srv, messages);
		if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0)
			_exit(3);
		raise(SIGSTOP);
		syscall(SYS_getppid);
		one_cycle(srv, messages);
		syscall(SYS_getppid);
		polyserver_close(srv);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFSTOPPED(status)) {
		waitpid(pid, &status, 0);
		return -1; /* ptrace refused: the child left */
	}
	if (ptrace(PTRACE_SETOPTIONS, pid, NULL,
	           (void *)(long)(PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL)) <
	    0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		return -1;
	}
	for (;;) {
		if (ptrace(PTRACE_SYSCALL, pid, NULL, (void *)(long)sig) < 0)
			break;
		sig = 0;
		if (waitpid(pid, &status, 0) != pid || WIFEXITED(status) ||
		    WIFSIGNALED(status))
			break;
		if (!WIFSTOPPED(status))
			continue;
		if (WSTOPSIG(status) != (SIGTRAP | 0x80)) {
			sig = WSTOPSIG(status); /* deliver it */
			continue;
		}
		if (ptrace(PTRACE_GET_SYSCALL_INFO, pid, (void *)sizeof info,
		           &info) <= 0 ||
		    info.op != PTRACE_SYSCALL_INFO_ENTRY)
			continue;
		if (info.entry.nr == SYS_getppid) {
			marks++;
		} else if (marks == 1) {
			count++;
			sysname((long)info.entry.nr, nm, sizeof nm);
			used += (size_t)snprintf(names + used,
			                         used < len ? len - used : 0,
			                         "%s%s", used ? " " : "", nm);
		}
	}
	waitpid(pid, &status, 0);
	return marks >= 2 ? count : -1;
}

struct costs {
	unsigned long allocs_bare, allocs_msgs;
	long bytes_left;
	long sys_bare, sys_msgs;
	char names_bare[200], names_msgs[200];
};

static void
measure_costs(struct costs *c)
{
	polyserver *srv = polyserver_create();
	int i;

	memset(c, 0, sizeof *c);
	if (srv == NULL)
		bench_die("polyserver_create: %s", strerror(errno));
	for (i = 0; i < 3; i++)
		one_cycle(srv, true);
	bench_count_begin();
	one_cycle(srv, false);
	c->allocs_bare = bench_count_allocs();
	bench_count_begin();
	one_cycle(srv, true);
	c->allocs_msgs = bench_count_allocs();
	c->bytes_left = bench_count_live();
	bench_count_end();
	polyserver_close(srv);
	c->sys_bare =
	    count_syscalls(false, c->names_bare, sizeof c->names_bare);
	c->sys_msgs =
	    count_syscalls(true, c->names_msgs, sizeof c->names_msgs);
}

/* --- 100,000 idle connections ---------------------------------------- */

struct scale {
	size_t n;
	polyserver *srv;
	polyclient **cls;
	polyendpoint *eps;
	pthread_barrier_t step;
	long held[2], left[2]; /* client thread, server thread */
	/* Each thread's clock (the test's thread may not run meanwhile):
	 * began opening, all open, began closing, all closed. */
	uint64_t t[2][4];
	double open_ns, close_ns;
	long rss0, rss1;
};

static long
rss_bytes(void)
{
	long pages = -1, resident = -1;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
		resident = -1;
	fclose(f);
	return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

static void *
scale_server(void *arg)
{
	struct scale *s = arg;
	size_t done = 0;
	ssize_t n;

	pin_to_cpu(conn_cpu_b);
	pthread_barrier_wait(&s->step);
	bench_count_begin();
	s->t[1][0] = now_ns();
	while (done < s->n) {
		n = polyserver_accept_many(
		    s->srv, s->eps + done,
		    s->n - done < STORM_BATCH ? s->n - done : STORM_BATCH,
		    CONN_WAIT_MS);
		if (n < 0)
			bench_die("scale accept: %s", strerror(errno));
		done += (size_t)n;
	}
	s->t[1][1] = now_ns();
	s->held[1] = bench_count_live();
	pthread_barrier_wait(&s->step); /* all open */
	pthread_barrier_wait(&s->step); /* measured: close */
	s->t[1][2] = now_ns();
	for (done = 0; done < s->n; done++)
		polyendpoint_close(&s->eps[done]);
	s->t[1][3] = now_ns();
	s->left[1] = bench_count_live();
	bench_count_end();
	pthread_barrier_wait(&s->step);
	return NULL;
}

static void *
scale_client(void *arg)
{
	struct scale *s = arg;
	polyendpoint ep;
	size_t i;

	pin_to_cpu(conn_cpu_a);
	pthread_barrier_wait(&s->step);
	bench_count_begin();
	s->t[0][0] = now_ns();
	for (i = 0; i < s->n; i++) {
		s->cls[i] = polyclient_create(CONN_CAPACITY);
		if (s->cls[i] == NULL || polyclient_connect(s->cls[i], s->srv))
			bench_die("scale connect %zu: %s", i, strerror(errno));
	}
	for (i = 0; i < s->n; i++)
		if (polyclient_endpoint(s->cls[i], &ep, CONN_WAIT_MS) < 0)
			bench_die("scale endpoint: %s", strerror(errno));
	s->t[0][1] = now_ns();
	s->held[0] = bench_count_live();
	pthread_barrier_wait(&s->step);
	pthread_barrier_wait(&s->step);
	s->t[0][2] = now_ns();
	for (i = 0; i < s->n; i++)
		polyclient_close(s->cls[i]);
	s->t[0][3] = now_ns();
	s->left[0] = bench_count_live();
	bench_count_end();
	pthread_barrier_wait(&s->step);
	return NULL;
}

static void
scale_run(struct scale *s, size_t n)
{
	pthread_t tc, ts;

	s->n = n;
	s->cls = calloc(n, sizeof *s->cls);
	s->eps = calloc(n, sizeof *s->eps);
	s->srv = polyserver_create();
	if (s->cls == NULL || s->eps == NULL || s->srv == NULL)
		bench_die("scale: out of memory");
	/* Touched now, so that the resident size grows by the
	 * connections only. */
	memset(s->cls, 1, n * sizeof *s->cls);
	memset(s->eps, 1, n * sizeof *s->eps);
	if (pthread_barrier_init(&s->step, NULL, 3) != 0 ||
	    pthread_create(&ts, NULL, scale_server, s) != 0 ||
	    pthread_create(&tc, NULL, scale_client, s) != 0)
		bench_die("scale: cannot start the threads");
	s->rss0 = rss_bytes();
	pthread_barrier_wait(&s->step);
	pthread_barrier_wait(&s->step); /* all open */
	s->rss1 = rss_bytes();
	pthread_barrier_wait(&s->step);
	pthread_barrier_wait(&s->step); /* all closed */
	pthread_join(tc, NULL);
	pthread_join(ts, NULL);
	pthread_barrier_destroy(&s->step);
	polyserver_close(s->srv);
	free(s->cls);
	free(s->eps);
#define SPAN(a, b)                                                            \
	((double)((s->t[0][b] > s->t[1][b] ? s->t[0][b] : s->t[1][b]) -       \
	          (s->t[0][a] < s->t[1][a] ? s->t[0][a] : s->t[1][a])))
	s->open_ns = SPAN(0, 1);
	s->close_ns = SPAN(2, 3);
#undef SPAN
}

/* --- other processes ------------------------------------------------ */

/* The machine's busy CPU time (/proc/stat) less this process's
 * (getrusage), in seconds, and the wall clock; busy < 0 if unknown. */
struct cload {
	double wall, busy;
};

static void
cload_sample(struct cload *l)
{
	unsigned long long v[7] = { 0 };
	double hz = (double)sysconf(_SC_CLK_TCK);
	struct rusage ru;
	FILE *f;

	l->wall = (double)now_ns() / 1e9;
	l->busy = -1;
	f = fopen("/proc/stat", "r");
	if (f == NULL)
		return;
	/* user nice system idle iowait irq softirq */
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
	           &v[2], &v[3], &v[4], &v[5], &v[6]) == 7) {
		getrusage(RUSAGE_SELF, &ru);
		l->busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6]) / hz -
		          ((double)ru.ru_utime.tv_sec +
		           (double)ru.ru_utime.tv_usec / 1e6 +
		           (double)ru.ru_stime.tv_sec +
		           (double)ru.ru_stime.tv_usec / 1e6);
	}
	fclose(f);
}

/* The share of all CPUs other processes used between a and b, or -1. */
static double
cload_other(const struct cload *a, const struct cload *b)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	double share;

	if (a->busy < 0 || b->busy < 0 || b->wall <= a->wall || ncpu < 1)
		return -1;
	share = (b->busy - a->busy) / ((b->wall - a->wall) * (double)ncpu);
	return share < 0 ? 0 : share; /* ticks are coarser than rusage */
}

/* --- report ---------------------------------------------------------- */

static unsigned c_passed, c_failed, c_skipped;

static void
ctarget(const char *what, double measured, bool le, double limit,
        const char *unit)
{
	const char *verdict = "SKIP";
	char m[32] = "n/a";

	if (isnan(measured)) {
		c_skipped++;
	} else {
		if (le ? measured <= limit : measured >= limit) {
			verdict = "PASS";
			c_passed++;
		} else {
			verdict = "FAIL";
			c_failed++;
		}
		snprintf(m, sizeof m, "%.2f", measured);
	}
	printf("%s  %-48s %8s %-2s  (%s %g)\n", verdict, what, m, unit,
	       le ? "<=" : ">=", limit);
}

static void
print_cell(const struct ccell *c, const struct ccell *ref)
{
	if (c == NULL || c->n == 0) {
		printf("   %8s %4s %6s %6s", "-", "", "", "");
		return;
	}
	printf("   %8.1f %4.0f", med(c->v, c->n) / 1e3, mad_pct(c->v, c->n));
	if (ref != NULL && ref != c)
		printf(" %6.2f", cratio(c, ref));
	else
		printf(" %6s", "");
	printf(" %6.2f", med(c->sleeps, c->n));
}

/* The rows of workloads w1 and, unless W_COUNT, w2, side by side. */
static void
print_conn_part(enum cwork w1, const char *t1, enum cwork w2, const char *t2)
{
	int k, cols = w2 == W_COUNT ? 1 : 2;

	printf("%-20s   %-34s %s\n", "", t1, t2 != NULL ? t2 : "");
	printf("  %-18s", "row");
	for (k = 0; k < cols; k++)
		printf("   %8s %4s %6s %6s", "k/s", "+-%", "/unix", "sleeps");
	printf("\n");
	for (k = 0; k < K_COUNT; k++) {
		if (!kind_built((enum ckind)k))
			continue;
		printf("  %-18s", kind_name[k]);
		print_cell(ccell((enum ckind)k, w1), ccell(K_UNIX, w1));
		if (cols == 2)
			print_cell(ccell((enum ckind)k, w2),
			           ccell(K_UNIX, w2));
		printf("\n");
	}
}

static void
print_conn_table(void)
{
	struct ccell *many = ccell(K_HANDLE, W_STORM_MANY);
	struct ccell *one = ccell(K_HANDLE, W_STORM_ONE);

	printf("\nshort connections: connect, one request and reply, close "
	       "(thousands per second)\n");
	print_conn_part(W_ONE, "1 pair: client, server on 2 CPUs", W_ONE_FREE,
	                "1 pair, unpinned");
	print_conn_part(W_TWO, "2 pairs on 2 servers, 4 threads", W_COUNT,
	                NULL);
	printf("/unix: median of per-round ratios to AF_UNIX; sleeps: "
	       "voluntary context\nswitches per connection, all threads "
	       "(0: every wait was met spinning).\n");
	printf("\naccept storm: %d client threads connecting bursts of %d, "
	       "1 server thread:\n",
	       STORM_CLIENTS, STORM_BURST);
	if (many != NULL && many->n > 0)
		printf("  accept_many(..., %d)  %8.1f k/s %4.0f%%  %.1f "
		       "connections per call, %.2f sleeps\n",
		       STORM_BATCH, med(many->v, many->n) / 1e3,
		       mad_pct(many->v, many->n), med(many->batch, many->n),
		       med(many->sleeps, many->n));
	if (one != NULL && one->n > 0)
		printf("  accept one at a time  %8.1f k/s %4.0f%%  %.2f "
		       "sleeps\n",
		       med(one->v, one->n) / 1e3, mad_pct(one->v, one->n),
		       med(one->sleeps, one->n));
	if (many != NULL && one != NULL)
		printf("  accept_many / accept: %.2f x\n", cratio(many, one));
}

void
connect_bench(bool quick, int cpu_a, int cpu_b)
{
	unsigned rounds = quick ? 3 : 9, r;
	double target_ns = (quick ? 10 : 100) * 1e6;
	double other[CONN_ROUNDS_MAX];
	struct cload l0, l1;
	struct costs costs;
	struct scale sc;
	struct trial t;
	size_t i, n_scale = quick ? SCALE_CONNS_QUICK : SCALE_CONNS;
	int k;

	conn_cpu_a = cpu_a;
	conn_cpu_b = cpu_b >= 0 ? cpu_b : cpu_a;
	nccells = 0;
	for (k = 0; k < K_COUNT; k++) {
		if (!kind_built((enum ckind)k))
			continue;
		ccells[nccells++] =
		    (struct ccell){ .k = (enum ckind)k, .w = W_ONE };
		ccells[nccells++] =
		    (struct ccell){ .k = (enum ckind)k, .w = W_ONE_FREE };
		ccells[nccells++] =
		    (struct ccell){ .k = (enum ckind)k, .w = W_TWO };
	}
	ccells[nccells++] = (struct ccell){ .k = K_HANDLE, .w = W_STORM_MANY };
	ccells[nccells++] = (struct ccell){ .k = K_HANDLE, .w = W_STORM_ONE };

	fprintf(stderr, "bench: connections: calibration of %zu cells...\n",
	        nccells);
	for (i = 0; i < nccells; i++)
		ccell_calibrate(&ccells[i], target_ns);
	for (r = 0; r < rounds; r++) {
		cload_sample(&l0);
		for (i = 0; i < nccells; i++) {
			run_trial_conn(ccells[i].k, ccells[i].w,
			               ccells[i].count, &t);
			ccells[i].v[r] = t.rate;
			ccells[i].sleeps[r] = t.sleeps;
			ccells[i].batch[r] = t.batch;
			ccells[i].n = r + 1;
		}
		cload_sample(&l1);
		other[r] = cload_other(&l0, &l1);
		fprintf(stderr,
		        "bench: connections: round %u/%u done; other "
		        "processes used %.0f%% of the CPUs\n",
		        r + 1, rounds, 100 * other[r]);
	}
	print_conn_table();
	printf("other processes used %.0f%% of the CPUs in the median "
	       "round (%.0f%% at most):\n%s\n",
	       100 * med(other, rounds), 100 * max_of(other, rounds),
	       med(other, rounds) > 0.05
	           ? "  the waits that spin lose to them most: compare "
	             "quiet runs."
	           : "  a quiet run.");

	measure_costs(&costs);
	printf("\none connection on one thread, after warm-up (create, "
	       "connect, accept, endpoint,\nclose both sides):\n");
	if (bench_count_available())
		printf("  allocations: %lu; with one request and reply: %lu "
		       "(each pipe's ring,\n  on its first message); bytes "
		       "left after closing: %ld\n",
		       costs.allocs_bare, costs.allocs_msgs, costs.bytes_left);
	else
		printf("  allocations: not counted (a sanitizer owns "
		       "malloc)\n");
	if (costs.sys_bare >= 0)
		printf("  system calls: %ld%s%s; with one request and reply: "
		       "%ld%s%s\n",
		       costs.sys_bare, costs.sys_bare ? ": " : "",
		       costs.names_bare, costs.sys_msgs,
		       costs.sys_msgs ? ": " : "", costs.names_msgs);
	else
		printf("  system calls: not counted (ptrace not allowed "
		       "here)\n");

	fprintf(stderr, "bench: connections: %zu idle...\n", n_scale);
	memset(&sc, 0, sizeof sc);
	scale_run(&sc, n_scale);
	printf("\nscale: %zu idle connections between two threads "
	       "(capacity %d):\n",
	       n_scale, CONN_CAPACITY);
	printf("  opened in %.0f ms (%.2f us each: create, connect, "
	       "accept_many, endpoint);\n  closed in %.0f ms\n",
	       sc.open_ns / 1e6, sc.open_ns / 1e3 / (double)n_scale,
	       sc.close_ns / 1e6);
	if (bench_count_available())
		printf("  %.1f bytes per connection (client, both pipes, "
		       "both sides: malloc_usable_size);\n  left after "
		       "closing all: %ld\n",
		       (double)(sc.held[0] + sc.held[1]) / (double)n_scale,
		       sc.left[0] + sc.left[1]);
	if (sc.rss0 >= 0 && sc.rss1 >= 0)
		printf("  resident memory grew by %.1f bytes per connection "
		       "(malloc's headers and\n  alignment included)\n",
		       (double)(sc.rss1 - sc.rss0) / (double)n_scale);
	if (bench_count_available() && sc.left[0] + sc.left[1] != 0)
		bench_error("scale: %ld bytes left after closing",
		            sc.left[0] + sc.left[1]);

	printf("\nconnection targets (issue 14), medians of per-round "
	       "ratios:\n");
	ctarget("1 pair on 2 CPUs: polysocket / AF_UNIX",
	        cratio(ccell(K_HANDLE, W_ONE), ccell(K_UNIX, W_ONE)), false, 5,
	        "x");
	ctarget("1 pair on 2 CPUs: by name / AF_UNIX",
	        cratio(ccell(K_NAME, W_ONE), ccell(K_UNIX, W_ONE)), false, 5,
	        "x");
	ctarget("1 pair unpinned: polysocket / AF_UNIX",
	        cratio(ccell(K_HANDLE, W_ONE_FREE), ccell(K_UNIX, W_ONE_FREE)),
	        false, 5, "x");
	ctarget("1 pair unpinned: by name / AF_UNIX",
	        cratio(ccell(K_NAME, W_ONE_FREE), ccell(K_UNIX, W_ONE_FREE)),
	        false, 5, "x");
	ctarget("2 pairs: polysocket / AF_UNIX",
	        cratio(ccell(K_HANDLE, W_TWO), ccell(K_UNIX, W_TWO)), false, 3,
	        "x");
	ctarget("2 pairs: by name / AF_UNIX",
	        cratio(ccell(K_NAME, W_TWO), ccell(K_UNIX, W_TWO)), false, 3,
	        "x");
	ctarget("scale: bytes per connection",
	        bench_count_available()
	            ? (double)(sc.held[0] + sc.held[1]) / (double)n_scale
	            : NAN,
	        true, 1024, "B");
	ctarget("scale: bytes left after closing all",
	        bench_count_available() ? (double)(sc.left[0] + sc.left[1])
	                                : NAN,
	        true, 0, "B");
	ctarget("set-up: system calls, connect + accept + close",
	        costs.sys_bare >= 0 ? (double)costs.sys_bare : NAN, true, 0,
	        "");
	printf("%u passed, %u failed, %u skipped\n", c_passed, c_failed,
	       c_skipped);
#ifdef HAVE_ZMQ
	if (zctx != NULL) {
		zmq_ctx_term(zctx);
		zctx = NULL;
	}
#endif
}
