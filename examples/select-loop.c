/*
 * select-loop.c - one thread multiplexing pipes and a server with select().
 *
 * Three producer threads each write the numbers 0 … MESSAGES-1 into a
 * polypipe of their own, then close their write end.  Two client threads
 * connect to a server and write the same numbers on their connections,
 * then close.  The main thread watches the server's accept descriptor and
 * the read descriptor of every pipe in one select() loop: it accepts the
 * clients, takes whatever each readable pipe holds, checks that every
 * source delivered its numbers in order, and stops once all have ended.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

#include <polysocket/polysocket.h>

#define PRODUCERS 3
#define CLIENTS 2
#define SOURCES (PRODUCERS + CLIENTS)
#define MESSAGES 20
#define CAPACITY 4 /* < MESSAGES: senders wait for the loop to catch up */
#define BATCH 8

/* A thread that writes: a producer has its pipe, a client a server. */
struct sender {
	pthread_t thread;
	polypipe *wr;    /* producer: the write end of its pipe */
	polyserver *srv; /* client: where to connect */
	int error;       /* errno of the first failure, or 0 */
};

/* What the loop reads: a producer's pipe, or a connection it accepted
 * (then ep.wr is the server's pipe towards the client). */
struct source {
	polyendpoint ep;
	int fd;         /* polypipe_read_fd(ep.rd): the library's, not ours */
	uintptr_t next; /* the number expected next */
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

/* Takes what a readable source holds; 0 once it has ended. */
static int
source_take(struct source *src, int id)
{
	void *msgs[BATCH];
	ssize_t n, i;

	/* We are the only reader, so a readable descriptor means a message
	 * or the end: EAGAIN cannot happen here. */
	n = polypipe_read_many(src->ep.rd, msgs, BATCH, 0);
	if (n < 0)
		die("polypipe_read_many");
	for (i = 0; i < n; i++, src->next++)
		if ((uintptr_t)msgs[i] != src->next) {
			fprintf(stderr, "source %d: got %ju, expected %ju\n",
			        id, (uintmax_t)(uintptr_t)msgs[i],
			        (uintmax_t)src->next);
			exit(1);
		}
	return n > 0;
}

static void
watch(fd_set *set, int *maxfd, int fd)
{
	if (fd < 0)
		die("descriptor");
	if (fd >= FD_SETSIZE) {
		fprintf(stderr, "descriptor %d is beyond select()\n", fd);
		exit(1);
	}
	FD_SET(fd, set);
	if (fd > *maxfd)
		*maxfd = fd;
}

int
main(void)
{
	struct sender senders[SOURCES];
	struct source srcs[SOURCES];
	polyserver *srv = polyserver_create();
	int accepted = 0, ended = 0, calls = 0, afd, i;

	memset(senders, 0, sizeof senders);
	memset(srcs, 0, sizeof srcs);
	if (srv == NULL || (afd = polyserver_accept_fd(srv)) < 0)
		die("server");
	for (i = 0; i < SOURCES; i++) {
		void *(*fn)(void *) = client_main;

		if (i < PRODUCERS) {
			if (polypipe_create(CAPACITY, &srcs[i].ep.rd,
			                    &senders[i].wr) < 0)
				die("polypipe_create");
			srcs[i].fd = polypipe_read_fd(srcs[i].ep.rd);
			fn = producer_main;
		}
		senders[i].srv = srv;
		if ((errno = pthread_create(&senders[i].thread, NULL, fn,
		                            &senders[i])) != 0)
			die("pthread_create");
	}
	printf("select-loop: %d pipes and a server, one thread\n", PRODUCERS);

	while (ended < SOURCES) {
		/* Only the sources watched in this round are looked at
		 * after select(): one accepted below is not in the set. */
		int watched = PRODUCERS + accepted, maxfd = -1, n;
		struct timeval tv = { .tv_sec = 5 };
		fd_set set;

		FD_ZERO(&set);
		if (accepted < CLIENTS)
			watch(&set, &maxfd, afd);
		for (i = 0; i < watched; i++)
			if (srcs[i].ep.rd != NULL)
				watch(&set, &maxfd, srcs[i].fd);
		n = select(maxfd + 1, &set, NULL, NULL, &tv);
		if (n < 0)
			die("select");
		if (n == 0) {
			fprintf(stderr, "nothing happened for 5 s\n");
			return 1;
		}
		calls++;
		if (accepted < CLIENTS && FD_ISSET(afd, &set)) {
			struct source *src = &srcs[PRODUCERS + accepted];

			if (polyserver_accept(srv, &src->ep, 0) < 0 ||
			    (src->fd = polypipe_read_fd(src->ep.rd)) < 0)
				die("accept");
			printf("  accepted client %d\n", ++accepted);
		}
		for (i = 0; i < watched; i++) {
			struct source *src = &srcs[i];

			if (src->ep.rd == NULL || !FD_ISSET(src->fd, &set) ||
			    source_take(src, i + 1))
				continue;
			printf("  source %d (%s): %ju numbers, then EOF\n",
			       i + 1, i < PRODUCERS ? "pipe" : "connection",
			       (uintmax_t)src->next);
			if (i < PRODUCERS) {
				polypipe_close(src->ep.rd);
				src->ep.rd = NULL;
			} else {
				polyendpoint_close(&src->ep);
			}
			ended++;
		}
	}

	for (i = 0; i < SOURCES; i++) {
		if ((errno = pthread_join(senders[i].thread, NULL)) != 0)
			die("pthread_join");
		if (senders[i].error != 0 || srcs[i].next != MESSAGES) {
			fprintf(stderr, "source %d: %ju of %d numbers (%s)\n",
			        i + 1, (uintmax_t)srcs[i].next, MESSAGES,
			        senders[i].error ? strerror(senders[i].error)
			                         : "some lost");
			return 1;
		}
	}
	polyserver_close(srv);
	printf("ok: %d sources, %d numbers each, %d select() calls\n", SOURCES,
	       MESSAGES, calls);
	return 0;
}
