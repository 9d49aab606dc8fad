/*
 * glib-loop.c - pipes and a server in GLib's main loop.
 *
 * The program of select-loop.c on GLib: three producer threads write the
 * numbers 0 … MESSAGES-1 into pipes of their own, two client threads
 * write them on connections to a server, and the main thread runs a
 * GMainLoop with one g_unix_fd_add() source per descriptor.  Each
 * wake-up drains what the pipe holds with polypipe_read_many, up to BATCH
 * messages in one call and one lock, rather than one message per
 * wake-up: the descriptor is level-triggered, so what a call leaves
 * behind wakes the loop again.  A source is removed once it has ended,
 * and the loop quits when every source has.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib-unix.h>
#include <glib.h>
#include <polysocket/polysocket.h>

#define PRODUCERS 3
#define CLIENTS 2
#define SOURCES (PRODUCERS + CLIENTS)
#define MESSAGES 20
#define CAPACITY 4 /* < MESSAGES: senders wait for the loop to catch up */
#define BATCH 64   /* messages taken per wake-up, at most */

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
	guint tag;      /* of its g_unix_fd_add() source */
	uintptr_t next; /* the number expected next */
};

/* The main loop's state; only the main thread touches it. */
struct loop {
	GMainLoop *main;
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

/* Called while a source's descriptor is readable: takes all it holds,
 * up to BATCH messages.  Returns G_SOURCE_REMOVE once it has ended. */
static gboolean
on_readable(gint fd, GIOCondition cond, gpointer arg)
{
	struct source *src = arg;
	void *msgs[BATCH];
	ssize_t n, i;

	(void)fd;
	(void)cond;
	src->lp->calls++;
	/* We are the only reader, so a readable descriptor means a message
	 * or the end: EAGAIN cannot happen here. */
	n = polypipe_read_many(src->ep.rd, msgs, BATCH, 0);
	if (n < 0)
		die("polypipe_read_many");
	for (i = 0; i < n; i++, src->next++)
		if ((uintptr_t)msgs[i] != src->next) {
			fprintf(stderr, "source %d: got %ju, expected %ju\n",
			        src->id, (uintmax_t)(uintptr_t)msgs[i],
			        (uintmax_t)src->next);
			exit(1);
		}
	if (n > 0)
		return G_SOURCE_CONTINUE;
	printf("  source %d (%s): %ju numbers, then EOF\n", src->id,
	       src->id <= PRODUCERS ? "pipe" : "connection",
	       (uintmax_t)src->next);
	/* Out of the loop before the library closes the descriptor. */
	g_source_remove(src->tag);
	if (src->id <= PRODUCERS)
		polypipe_close(src->ep.rd);
	else
		polyendpoint_close(&src->ep);
	if (++src->lp->ended == SOURCES)
		g_main_loop_quit(src->lp->main);
	return G_SOURCE_REMOVE;
}

/* Gives a source its GSource, to run on_readable while it is readable. */
static void
source_watch(struct source *src)
{
	int fd = polypipe_read_fd(src->ep.rd);

	if (fd < 0)
		die("polypipe_read_fd");
	src->tag = g_unix_fd_add(fd, G_IO_IN, on_readable, src);
}

/* Called while a client is waiting: accepts every client waiting.
 * Returns G_SOURCE_REMOVE once all expected clients are in. */
static gboolean
on_acceptable(gint fd, GIOCondition cond, gpointer arg)
{
	struct loop *lp = arg;

	(void)fd;
	(void)cond;
	lp->calls++;
	while (lp->accepted < CLIENTS) {
		struct source *src = &lp->srcs[PRODUCERS + lp->accepted];

		if (polyserver_accept(lp->srv, &src->ep, 0) < 0) {
			if (errno == EAGAIN)
				return G_SOURCE_CONTINUE; /* more to come */
			die("polyserver_accept");
		}
		source_watch(src);
		printf("  accepted client %d\n", ++lp->accepted);
	}
	return G_SOURCE_REMOVE;
}

int
main(void)
{
	struct sender senders[SOURCES];
	struct loop lp;
	int afd, i;

	memset(senders, 0, sizeof senders);
	memset(&lp, 0, sizeof lp);
	lp.main = g_main_loop_new(NULL, FALSE);
	lp.srv = polyserver_create();
	if (lp.srv == NULL || (afd = polyserver_accept_fd(lp.srv)) < 0)
		die("server");
	g_unix_fd_add(afd, G_IO_IN, on_acceptable, &lp);
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
	printf("glib-loop: %d pipes and a server, GLib %u.%u.%u\n", PRODUCERS,
	       glib_major_version, glib_minor_version, glib_micro_version);

	/* Returns once on_readable quits it: every source has ended. */
	g_main_loop_run(lp.main);

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
	if (lp.accepted != CLIENTS) {
		fprintf(stderr, "only %d of %d clients accepted\n",
		        lp.accepted, CLIENTS);
		return 1;
	}
	polyserver_close(lp.srv);
	g_main_loop_unref(lp.main);
	printf("ok: %d sources, %d numbers each, %d callbacks\n", SOURCES,
	       MESSAGES, lp.calls);
	return 0;
}
