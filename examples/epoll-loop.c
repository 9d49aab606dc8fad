/*
 * epoll-loop.c - one thread multiplexing pipes and a server with epoll.
 *
 * The program of select-loop.c on epoll: three producer threads write the
 * numbers 0 … MESSAGES-1 into pipes of their own, two client threads
 * write them on connections to a server, and the main thread accepts the
 * clients and reads every source in one epoll_wait() loop, checking that
 * each delivers its numbers in order, until all have ended.
 *
 * The descriptors are level-triggered (no EPOLLET), as the library's
 * are: a descriptor stays ready while its pipe holds a message, so the
 * loop reads one message per wake-up and needs no draining loop; what it
 * leaves behind, the next epoll_wait() reports again.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

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

/* What the loop reads: a producer's pipe, or a connection it accepted
 * (then ep.wr is the server's pipe towards the client). */
struct source {
	int id;
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

/* Watches fd, with ptr to say whose it is (NULL: the server's). */
static void
watch(int epfd, int fd, void *ptr)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = ptr };

	if (fd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		die("watch");
}

/* Before the library closes fd, or when it is no longer of interest. */
static void
unwatch(int epfd, int fd)
{
	if (epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL) < 0)
		die("unwatch");
}

/* Takes one message from a readable source; 0 once it has ended. */
static int
source_take(struct source *src)
{
	void *msg;
	int r;

	/* We are the only reader, so a readable descriptor means a message
	 * or the end: EAGAIN cannot happen here. */
	r = polypipe_read(src->ep.rd, &msg, 0);
	if (r < 0)
		die("polypipe_read");
	if (r == 1 && (uintptr_t)msg != src->next++) {
		fprintf(stderr, "source %d: got %ju, expected %ju\n", src->id,
		        (uintmax_t)(uintptr_t)msg, (uintmax_t)src->next - 1);
		exit(1);
	}
	return r;
}

int
main(void)
{
	struct sender senders[SOURCES];
	struct source srcs[SOURCES];
	struct epoll_event evs[SOURCES + 1];
	polyserver *srv = polyserver_create();
	int epfd = epoll_create1(EPOLL_CLOEXEC);
	int accepted = 0, ended = 0, wakeups = 0, reads = 0, afd, i;

	memset(senders, 0, sizeof senders);
	memset(srcs, 0, sizeof srcs);
	if (epfd < 0)
		die("epoll_create1");
	if (srv == NULL || (afd = polyserver_accept_fd(srv)) < 0)
		die("server");
	watch(epfd, afd, NULL);
	for (i = 0; i < SOURCES; i++) {
		void *(*fn)(void *) = client_main;

		srcs[i].id = i + 1;
		if (i < PRODUCERS) {
			if (polypipe_create(CAPACITY, &srcs[i].ep.rd,
			                    &senders[i].wr) < 0)
				die("polypipe_create");
			srcs[i].fd = polypipe_read_fd(srcs[i].ep.rd);
			watch(epfd, srcs[i].fd, &srcs[i]);
			fn = producer_main;
		}
		senders[i].srv = srv;
		if ((errno = pthread_create(&senders[i].thread, NULL, fn,
		                            &senders[i])) != 0)
			die("pthread_create");
	}
	printf("epoll-loop: %d pipes and a server, one thread\n", PRODUCERS);

	while (ended < SOURCES) {
		int n = epoll_wait(epfd, evs, SOURCES + 1, 5000);

		if (n < 0)
			die("epoll_wait");
		if (n == 0) {
			fprintf(stderr, "nothing happened for 5 s\n");
			return 1;
		}
		wakeups++;
		for (i = 0; i < n; i++) {
			struct source *src = evs[i].data.ptr;

			if (src == NULL) {
				/* One client per wake-up, like messages. */
				src = &srcs[PRODUCERS + accepted];
				if (polyserver_accept(srv, &src->ep, 0) < 0)
					die("polyserver_accept");
				src->fd = polypipe_read_fd(src->ep.rd);
				watch(epfd, src->fd, src);
				printf("  accepted client %d\n", ++accepted);
				if (accepted == CLIENTS)
					unwatch(epfd, afd); /* all are in */
				continue;
			}
			reads++;
			if (source_take(src))
				continue;
			printf("  source %d (%s): %ju numbers, then EOF\n",
			       src->id,
			       src->id <= PRODUCERS ? "pipe" : "connection",
			       (uintmax_t)src->next);
			unwatch(epfd, src->fd);
			if (src->id <= PRODUCERS)
				polypipe_close(src->ep.rd);
			else
				polyendpoint_close(&src->ep);
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
	if (close(epfd) < 0)
		die("close");
	printf("ok: %d sources, %d numbers each; %d reads, one per ready "
	       "source, in %d epoll_wait() calls\n",
	       SOURCES, MESSAGES, reads, wakeups);
	return 0;
}
