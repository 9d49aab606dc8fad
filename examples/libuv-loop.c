/*
 * libuv-loop.c - pipes and a server in libuv's event loop.
 *
 * The program of select-loop.c on libuv: three producer threads write
 * the numbers 0 … MESSAGES-1 into pipes of their own, two client threads
 * write them on connections to a server, and the main thread runs a
 * uv_loop_t with one uv_poll_t per descriptor.  Each wake-up drains what
 * the pipe holds with polypipe_read_many, up to BATCH messages in one
 * call and one lock, rather than one message per wake-up: the descriptor
 * is level-triggered, so what a call leaves behind wakes the loop again.
 * A handle is stopped and closed once its source has ended, and uv_run
 * returns by itself when no handle is left.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <polysocket/polysocket.h>
#include <uv.h>

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
	uv_poll_t poll;
	uintptr_t next; /* the number expected next */
};

/* The event loop's state; only the main thread touches it. */
struct loop {
	uv_loop_t uv;
	uv_poll_t accept_poll;
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

_Noreturn static void
die_uv(const char *what, int err)
{
	fprintf(stderr, "%s: %s\n", what, uv_strerror(err));
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
 * up to BATCH messages. */
static void
on_readable(uv_poll_t *handle, int status, int events)
{
	struct source *src = handle->data;
	void *msgs[BATCH];
	ssize_t n, i;
	int err;

	(void)events;
	if (status < 0)
		die_uv("uv_poll", status);
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
		return;
	printf("  source %d (%s): %ju numbers, then EOF\n", src->id,
	       src->id <= PRODUCERS ? "pipe" : "connection",
	       (uintmax_t)src->next);
	/* Out of the loop before the library closes the descriptor:
	 * uv_poll_stop takes it out of the backend at once. */
	if ((err = uv_poll_stop(handle)) < 0)
		die_uv("uv_poll_stop", err);
	uv_close((uv_handle_t *)handle, NULL);
	if (src->id <= PRODUCERS)
		polypipe_close(src->ep.rd);
	else
		polyendpoint_close(&src->ep);
	src->lp->ended++;
}

/* Gives a source its handle, to run on_readable while it is readable. */
static void
source_watch(struct source *src)
{
	int fd = polypipe_read_fd(src->ep.rd);
	int err;

	if (fd < 0)
		die("polypipe_read_fd");
	if ((err = uv_poll_init(&src->lp->uv, &src->poll, fd)) < 0)
		die_uv("uv_poll_init", err);
	src->poll.data = src;
	if ((err = uv_poll_start(&src->poll, UV_READABLE, on_readable)) < 0)
		die_uv("uv_poll_start", err);
}

/* Called while a client is waiting: accepts every client waiting. */
static void
on_acceptable(uv_poll_t *handle, int status, int events)
{
	struct loop *lp = handle->data;
	int err;

	(void)events;
	if (status < 0)
		die_uv("uv_poll", status);
	lp->calls++;
	while (lp->accepted < CLIENTS) {
		struct source *src = &lp->srcs[PRODUCERS + lp->accepted];

		if (polyserver_accept(lp->srv, &src->ep, 0) < 0) {
			if (errno == EAGAIN)
				return; /* the others have not come yet */
			die("polyserver_accept");
		}
		source_watch(src);
		printf("  accepted client %d\n", ++lp->accepted);
	}
	/* All expected clients are in. */
	if ((err = uv_poll_stop(handle)) < 0)
		die_uv("uv_poll_stop", err);
	uv_close((uv_handle_t *)handle, NULL);
}

int
main(void)
{
	struct sender senders[SOURCES];
	struct loop lp;
	int afd, err, i;

	memset(senders, 0, sizeof senders);
	memset(&lp, 0, sizeof lp);
	if ((err = uv_loop_init(&lp.uv)) < 0)
		die_uv("uv_loop_init", err);
	lp.srv = polyserver_create();
	if (lp.srv == NULL || (afd = polyserver_accept_fd(lp.srv)) < 0)
		die("server");
	if ((err = uv_poll_init(&lp.uv, &lp.accept_poll, afd)) < 0)
		die_uv("uv_poll_init", err);
	lp.accept_poll.data = &lp;
	if ((err = uv_poll_start(&lp.accept_poll, UV_READABLE,
	                         on_acceptable)) < 0)
		die_uv("uv_poll_start", err);
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
	printf("libuv-loop: %d pipes and a server, libuv %s\n", PRODUCERS,
	       uv_version_string());

	/* Returns 0 once no handle is left: every source has ended. */
	if (uv_run(&lp.uv, UV_RUN_DEFAULT) != 0) {
		fprintf(stderr, "uv_run: handles still active\n");
		return 1;
	}

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
	if ((err = uv_loop_close(&lp.uv)) < 0)
		die_uv("uv_loop_close", err);
	printf("ok: %d sources, %d numbers each, %d callbacks\n", SOURCES,
	       MESSAGES, lp.calls);
	return 0;
}
