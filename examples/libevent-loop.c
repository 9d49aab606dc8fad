/*
 * libevent-loop.c - pipes and a server in libevent's event loop.
 *
 * The program of select-loop.c on libevent: three producer threads write
 * the numbers 0 … MESSAGES-1 into pipes of their own, two client threads
 * write them on connections to a server, and the main thread runs an
 * event_base with one persistent read event per descriptor.  The
 * library's descriptors are level-triggered, so each callback takes one
 * message and returns; libevent calls it again while more are there.
 * An event is freed once its source has ended, and the loop returns by
 * itself when no event is left.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <polysocket/polysocket.h>

#define PRODUCERS 3
#define CLIENTS 2
#define SOURCES (PRODUCERS + CLIENTS)
#define MESSAGES 20
#define CAPACITY 4 /* < MESSAGES: senders wait for the loop to catch up */

/* A thread that writes: a producer has its pipe, a client a server. */
struct sender {
	pthread_t thread;
	polypipe *wr;    /* producer: the write end of its pipe */
	polyserver *srv; /* client: where to connect */
	int error;       /* errno of the first failure, or 0 */
};

struct loop;

/* What the loop reads: a producer's pipe, or a connection it accepted
 * (then ep.wr is the server's pipe towards the client). */
struct source {
	struct loop *lp;
	int id;
	polyendpoint ep;
	struct event *ev;
	uintptr_t next; /* the number expected next */
};

/* The event loop's state; only the main thread touches it. */
struct loop {
	struct event_base *base;
	struct event *accept_ev;
	polyserver *srv;
	struct source srcs[SOURCES];
	int accepted, ended;
	int calls; /* callbacks run */
};

_Noreturn static void
die(const char *what)
{
	perror(what);
	exit(1);
}

/* The messages are small numbers carried in the pointer itself (0 is
 * NULL, a valid message), so nothing needs freeing. */
static int
send_numbers(polypipe *wr)
{
	uintptr_t i;

	for (i = 0; i < MESSAGES; i++)
		if (polypipe_write(wr, (void *)i, -1) < 0)
			return -1;
	return 0;
}

static void *
producer_main(void *arg)
{
	struct sender *s = arg;

	if (send_numbers(s->wr) < 0)
		s->error = errno;
	polypipe_close(s->wr); /* the reader sees EOF after the last one */
	return NULL;
}

static void *
client_main(void *arg)
{
	struct sender *s = arg;
	polyclient *cl = polyclient_create(CAPACITY);
	polyendpoint ep;

	if (cl == NULL || polyclient_connect(cl, s->srv) < 0 ||
	    polyclient_endpoint(cl, &ep, -1) < 0 || send_numbers(ep.wr) < 0)
		s->error = errno;
	/* What is still buffered reaches the server, then EOF. */
	polyclient_close(cl);
	return NULL;
}

/* Called while a source's descriptor is readable: one message a call. */
static void
on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct source *src = arg;
	void *msg;
	int r;

	(void)fd;
	(void)what;
	src->lp->calls++;
	/* We are the only reader, so a readable descriptor means a message
	 * or the end: EAGAIN cannot happen here. */
	r = polypipe_read(src->ep.rd, &msg, 0);
	if (r < 0)
		die("polypipe_read");
	if (r == 1) {
		if ((uintptr_t)msg != src->next++) {
			fprintf(stderr, "source %d: got %ju, expected %ju\n",
			        src->id, (uintmax_t)(uintptr_t)msg,
			        (uintmax_t)src->next - 1);
			exit(1);
		}
		return;
	}
	printf("  source %d (%s): %ju numbers, then EOF\n", src->id,
	       src->id <= PRODUCERS ? "pipe" : "connection",
	       (uintmax_t)src->next);
	/* Out of the loop before the library closes the descriptor. */
	event_free(src->ev);
	if (src->id <= PRODUCERS)
		polypipe_close(src->ep.rd);
	else
		polyendpoint_close(&src->ep);
	src->lp->ended++;
}

/* Gives a source its event, to run on_readable while it is readable. */
static void
source_watch(struct source *src)
{
	int fd = polypipe_read_fd(src->ep.rd);

	if (fd < 0)
		die("polypipe_read_fd");
	src->ev = event_new(src->lp->base, fd, EV_READ | EV_PERSIST,
	                    on_readable, src);
	if (src->ev == NULL || event_add(src->ev, NULL) < 0)
		die("event_new");
}

/* Called while a client is waiting: one accept a call, like messages. */
static void
on_acceptable(evutil_socket_t fd, short what, void *arg)
{
	struct loop *lp = arg;
	struct source *src = &lp->srcs[PRODUCERS + lp->accepted];

	(void)fd;
	(void)what;
	lp->calls++;
	if (polyserver_accept(lp->srv, &src->ep, 0) < 0)
		die("polyserver_accept");
	source_watch(src);
	printf("  accepted client %d\n", ++lp->accepted);
	if (lp->accepted == CLIENTS)
		event_free(lp->accept_ev); /* all expected clients are in */
}

int
main(void)
{
	struct sender senders[SOURCES];
	struct loop lp;
	int afd, i;

	memset(senders, 0, sizeof senders);
	memset(&lp, 0, sizeof lp);
	lp.base = event_base_new();
	lp.srv = polyserver_create();
	if (lp.base == NULL)
		die("event_base_new");
	if (lp.srv == NULL || (afd = polyserver_accept_fd(lp.srv)) < 0)
		die("server");
	lp.accept_ev =
	    event_new(lp.base, afd, EV_READ | EV_PERSIST, on_acceptable, &lp);
	if (lp.accept_ev == NULL || event_add(lp.accept_ev, NULL) < 0)
		die("event_new");
	for (i = 0; i < SOURCES; i++) {
		struct source *src = &lp.srcs[i];
		void *(*fn)(void *) = client_main;

		src->lp = &lp;
		src->id = i + 1;
		if (i < PRODUCERS) {
			if (polypipe_create(CAPACITY, &src->ep.rd,
			                    &senders[i].wr) < 0)
				die("polypipe_create");
			source_watch(src);
			fn = producer_main;
		}
		senders[i].srv = lp.srv;
		if ((errno = pthread_create(&senders[i].thread, NULL, fn,
		                            &senders[i])) != 0)
			die("pthread_create");
	}
	printf("libevent-loop: %d pipes and a server, libevent %s (%s)\n",
	       PRODUCERS, event_get_version(), event_base_get_method(lp.base));

	/* Returns 1 once no event is left: every source has ended. */
	if (event_base_dispatch(lp.base) < 0)
		die("event_base_dispatch");

	for (i = 0; i < SOURCES; i++) {
		if ((errno = pthread_join(senders[i].thread, NULL)) != 0)
			die("pthread_join");
		if (senders[i].error != 0 || lp.srcs[i].next != MESSAGES) {
			fprintf(stderr, "source %d: %ju of %d numbers (%s)\n",
			        i + 1, (uintmax_t)lp.srcs[i].next, MESSAGES,
			        senders[i].error ? strerror(senders[i].error)
			                         : "some lost");
			return 1;
		}
	}
	if (lp.ended != SOURCES) {
		fprintf(stderr, "only %d of %d sources ended\n", lp.ended,
		        SOURCES);
		return 1;
	}
	polyserver_close(lp.srv);
	event_base_free(lp.base);
	printf("ok: %d sources, %d numbers each, %d callbacks\n", SOURCES,
	       MESSAGES, lp.calls);
	return 0;
}
