/*
 * set-loop.c - a daemon's event loop serving 10,000 connections through
 * one descriptor.
 *
 * WORKERS threads open CONNS connections to a server between them and
 * send requests on all of them; the main thread is the daemon.  Its loop
 * watches ONE descriptor in epoll: polyset_fd of a set that holds the
 * server and the read end of every connection accepted.  When epoll says
 * the set is ready, polyset_wait(..., 0) says which members are: the
 * server (accept what is pending and add each new connection), or a
 * connection (read everything it holds with read_many, answer each
 * request).  A connection that has ended is closed, which takes it out of
 * the set.
 *
 * A member costs no descriptor, so the daemon serves 10,000 connections
 * with a handful open, far below the usual limit of 1,024: with a
 * descriptor per connection it would run out at about 500.  The loop
 * checks every request it gets, each worker every answer; the program
 * exits 0 only if all were right.
 *
 * Usage: set-loop [ROUNDS]  (requests per connection, default 3)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <polysocket/polyset.h>

#define CONNS 10000
#define WORKERS 4
#define PER_WORKER (CONNS / WORKERS)
#define EVENTS 64 /* members per polyset_wait */
#define BATCH 64  /* requests per read_many, connections per accept */
#define PASSES 16 /* polyset_wait calls per epoll wake-up, at most */
#define IDLE_MS 5000

/*
 * A request carries its connection's number and its own; the answer is
 * computed from it, so a worker can tell a right answer from one meant
 * for another request.  No message is a pointer to memory: nothing to
 * free, and none left behind by a connection that closes.
 */
#define SEQ_BITS 16
static void *
request(unsigned conn, unsigned seq)
{
	return (void *)(((uintptr_t)conn << SEQ_BITS) | seq);
}

static void *
answer(void *req)
{
	return (void *)((uintptr_t)req * 3 + 1);
}

/* A worker: its connections, as clients, and how it went. */
struct worker {
	pthread_t thread;
	polyserver *srv;
	unsigned first; /* number of its first connection */
	unsigned rounds;
	polyclient *cl[PER_WORKER];
	polyendpoint ep[PER_WORKER];
};

/* The daemon's side of one connection. */
struct conn {
	polyendpoint ep; /* the server's end: ep.rd brings requests */
	unsigned id;     /* from its first request; CONNS until then */
	unsigned next;   /* the request number expected next */
};

_Noreturn static void
die(const char *what)
{
	perror(what);
	exit(1);
}

_Noreturn static void fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static void
fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "set-loop: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(1);
}

/* Descriptors this process has open, the one that counts them aside. */
static int
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

/*
 * Connects all its clients at once (each connect only queues an attempt;
 * the asynchronous endpoint takes requests before the daemon accepts),
 * then, round after round, sends one request on every connection and
 * reads every answer.  At most one request per connection is unanswered,
 * so the daemon's answers always fit: it never has to wait to write.
 */
static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	unsigned i, r;
	void *msg;

	for (i = 0; i < PER_WORKER; i++) {
		w->cl[i] = polyclient_create(1);
		if (w->cl[i] == NULL ||
		    polyclient_connect(w->cl[i], w->srv) < 0 ||
		    polyclient_endpoint_async(w->cl[i], &w->ep[i]) < 0)
			die("client");
	}
	for (r = 0; r < w->rounds; r++) {
		for (i = 0; i < PER_WORKER; i++)
			if (polypipe_write(w->ep[i].wr,
			                   request(w->first + i, r),
			                   IDLE_MS) < 0)
				die("polypipe_write");
		for (i = 0; i < PER_WORKER; i++) {
			if (polypipe_read(w->ep[i].rd, &msg, IDLE_MS) != 1)
				die("polypipe_read");
			if (msg != answer(request(w->first + i, r)))
				fail("connection %u: wrong answer in round %u",
				     w->first + i, r);
		}
	}
	/* The daemon sees the end of each connection and closes its side. */
	for (i = 0; i < PER_WORKER; i++)
		polyclient_close(w->cl[i]);
	return NULL;
}

/* Takes the connections pending on the server into the set. */
static unsigned
accept_all(polyserver *srv, polyset *set, struct conn *conns, unsigned have)
{
	polyendpoint eps[BATCH];
	ssize_t n, i;

	n = polyserver_accept_many(srv, eps, BATCH, 0);
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n < 0)
		die("polyserver_accept_many");
	for (i = 0; i < n; i++) {
		struct conn *c = &conns[have + i];

		if (have + i >= CONNS)
			fail("more than %u connections (%u)", CONNS,
			     (unsigned)(have + i + 1));
		c->ep = eps[i];
		c->id = CONNS;
		if (polyset_add(set, c->ep.rd, 0, c) < 0)
			die("polyset_add");
	}
	return (unsigned)n;
}

/* Reads what a connection holds and answers each request; returns 0 once
 * the connection has ended, after which the caller closes it. */
static int
serve(struct conn *c, unsigned rounds, unsigned *served)
{
	void *reqs[BATCH];
	uintptr_t v;
	ssize_t n, i;

	n = polypipe_read_many(c->ep.rd, reqs, BATCH, 0);
	if (n == 0)
		return 0;
	if (n < 0 && errno == EAGAIN)
		return 1; /* nothing after all: level-triggered, no harm */
	if (n < 0)
		die("polypipe_read_many");
	for (i = 0; i < n; i++) {
		v = (uintptr_t)reqs[i];
		if (c->id == CONNS)
			c->id = (unsigned)(v >> SEQ_BITS);
		if (reqs[i] != request(c->id, c->next) || c->id >= CONNS ||
		    c->next >= rounds)
			fail("connection %u: unexpected request %u", c->id,
			     (unsigned)(v & ((1u << SEQ_BITS) - 1)));
		c->next++;
		if (polypipe_write(c->ep.wr, answer(reqs[i]), 0) < 0)
			die("polypipe_write (answer)");
	}
	*served += (unsigned)n;
	return 1;
}

int
main(int argc, char **argv)
{
	static struct worker workers[WORKERS];
	struct conn *conns = calloc(CONNS, sizeof *conns);
	unsigned char *seen = calloc(CONNS, 1);
	struct polyset_event evs[EVENTS];
	struct epoll_event ev = { .events = EPOLLIN };
	unsigned rounds = 3, accepted = 0, ended = 0, served = 0, i;
	unsigned long wakeups = 0, waits = 0;
	int epfd, sfd, fds_start, fds_peak = -1, fds_end, pass;
	polyserver *srv = polyserver_create();
	polyset *set = polyset_create();
	struct rlimit rl;
	ssize_t k, e;

	if (argc > 1) {
		rounds = (unsigned)strtoul(argv[1], NULL, 10);
		if (rounds < 1 || rounds >= 1u << SEQ_BITS)
			fail("ROUNDS: 1 to %u (%u given)",
			     (1u << SEQ_BITS) - 1, rounds);
	}
	if (conns == NULL || seen == NULL)
		die("calloc");
	fds_start = open_fds(); /* stdio, and whatever we inherited */
	if (srv == NULL)
		die("polyserver_create");
	if (set == NULL)
		die("polyset_create");
	/* The event loop's one descriptor, and the server in the set. */
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		die("epoll_create1");
	sfd = polyset_fd(set);
	if (sfd < 0)
		die("polyset_fd");
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &ev) < 0)
		die("epoll_ctl");
	if (polyset_add(set, srv, 0, NULL) < 0)
		die("polyset_add (server)");

	for (i = 0; i < WORKERS; i++) {
		workers[i].srv = srv;
		workers[i].first = i * PER_WORKER;
		workers[i].rounds = rounds;
		errno = pthread_create(&workers[i].thread, NULL, worker_main,
		                       &workers[i]);
		if (errno != 0)
			die("pthread_create");
	}

	while (ended < CONNS) {
		int n = epoll_wait(epfd, &ev, 1, IDLE_MS);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("epoll_wait");
		if (n == 0)
			fail("nothing happened for %u ms (%u connections "
			     "open)",
			     IDLE_MS, accepted - ended);
		wakeups++;
		/* Drain the set a few passes, then give epoll's other
		 * descriptors (a real daemon has some) their turn. */
		for (pass = 0; pass < PASSES; pass++) {
			k = polyset_wait(set, evs, EVENTS, 0);
			if (k < 0 && errno == EAGAIN)
				break;
			if (k <= 0)
				die("polyset_wait");
			waits++;
			for (e = 0; e < k; e++) {
				struct conn *c = evs[e].data;

				if (c == NULL) {
					accepted += accept_all(srv, set, conns,
					                       accepted);
					if (accepted == CONNS) {
						/* All in: the daemon at its
						 * fullest. */
						fds_peak = open_fds();
						if (polyset_remove(set, srv) <
						    0)
							die("polyset_remove");
					}
					continue;
				}
				if (serve(c, rounds, &served))
					continue;
				if (c->next != rounds || seen[c->id]++)
					fail("connection %u ended after %u "
					     "requests",
					     c->id, c->next);
				/* Closing a member takes it out of the set. */
				polyendpoint_close(&c->ep);
				ended++;
			}
		}
	}

	for (i = 0; i < WORKERS; i++)
		if ((errno = pthread_join(workers[i].thread, NULL)) != 0)
			die("pthread_join");
	polyset_close(set);
	polyserver_close(srv);
	if (close(epfd) < 0)
		die("close");
	fds_end = open_fds();
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		die("getrlimit");
	printf("set-loop: %u connections, %u requests each, all answered "
	       "right: %u requests\n  in %lu epoll_wait() wake-ups and %lu "
	       "polyset_wait() calls\n",
	       CONNS, rounds, served, wakeups, waits);
	printf("descriptors open: %d at the start, %d while serving all %u "
	       "connections,\n  %d at the end (limit %llu)\n",
	       fds_start, fds_peak, CONNS, fds_end,
	       (unsigned long long)rl.rlim_cur);
	free(seen);
	free(conns);
	if (served != CONNS * rounds)
		fail("%u requests served, %u expected", served,
		     CONNS * rounds);
	/* The epoll descriptor and the set's: nothing per connection. */
	if (fds_start >= 0 && fds_peak > fds_start + 2)
		fail("%d descriptors open for %u connections", fds_peak,
		     CONNS);
	return 0;
}
