/*
 * daemon.c - a small multithreaded daemon built on polysocket.
 *
 * The main thread is the service.  It binds a server to the name "calc"
 * and a second one to "admin", then watches, in one poll() loop, both
 * servers' accept descriptors and the read descriptor of every
 * connection it accepted.  Client threads find the services by name and
 * exchange typed messages with them (struct request, struct reply):
 * three connect and wait for acceptance, one connects asynchronously and
 * writes its requests at once, and one knocks at "admin", which refuses
 * everybody.  Everything a client learns is checked, and the program
 * exits 0 only if all of it was right.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <polysocket/polysocket.h>
#include <polysocket/typed.h>

#define SYNC_CLIENTS 3
#define CLIENTS (SYNC_CLIENTS + 2) /* + the async one + the refused one */
#define REQUESTS 5
#define CAPACITY 8 /* >= REQUESTS: an async client writes them all first */

struct request {
	int a, b;
};

struct reply {
	int sum;
};

POLYPIPE_TYPED(request, struct request);
POLYPIPE_TYPED(reply, struct reply);

struct client {
	pthread_t thread;
	int id;
	enum { SYNC, ASYNC, REFUSED } kind;
	int correct; /* replies that were right */
	int error;   /* errno of the first failure, or 0 */
};

static void
free_msg(void *msg, void *arg)
{
	(void)arg;
	free(msg);
}

/* Sends a request; on success the pipe owns it. */
static int
send_request(polypipe *wr, int a, int b)
{
	struct request *rq = malloc(sizeof *rq);

	if (rq == NULL)
		return -1;
	rq->a = a;
	rq->b = b;
	if (request_write(wr, rq, -1) < 0) {
		free(rq);
		return -1;
	}
	return 0;
}

/* Reads one reply and checks it against the request a + b. */
static int
check_reply(polypipe *rd, struct client *c, int a, int b)
{
	struct reply *rp = NULL;
	int r = reply_read(rd, &rp, -1);

	if (r <= 0) {
		if (r == 0)
			errno = EPIPE;
		return -1;
	}
	if (rp->sum == a + b)
		c->correct++;
	free(rp);
	return 0;
}

static void *
client_main(void *arg)
{
	struct client *c = arg;
	polyclient *cl = polyclient_create(CAPACITY);
	polyendpoint ep;
	int i;

	if (cl == NULL) {
		c->error = errno;
		return NULL;
	}
	if (polyclient_connect_name(cl,
	                            c->kind == REFUSED ? "admin" : "calc") < 0)
		goto fail;
	if (c->kind == ASYNC) {
		/* Write at once: the requests wait in the pipe until the
		 * service accepts the connection. */
		if (polyclient_endpoint_async(cl, &ep) < 0)
			goto fail;
		polypipe_set_destructor(ep.wr, free_msg, NULL);
		for (i = 0; i < REQUESTS; i++)
			if (send_request(ep.wr, c->id, i) < 0)
				goto fail;
		for (i = 0; i < REQUESTS; i++)
			if (check_reply(ep.rd, c, c->id, i) < 0)
				goto fail;
	} else {
		if (polyclient_endpoint(cl, &ep, -1) < 0)
			goto fail;
		polypipe_set_destructor(ep.wr, free_msg, NULL);
		for (i = 0; i < REQUESTS; i++)
			if (send_request(ep.wr, c->id, i) < 0 ||
			    check_reply(ep.rd, c, c->id, i) < 0)
				goto fail;
	}
	polyclient_close(cl);
	return NULL;
fail:
	c->error = errno;
	polyclient_close(cl);
	return NULL;
}

/* The service's side of one connection. */
struct conn {
	polyendpoint ep;
	int served;
};

/* Answers what a connection sent; false once the client has gone. */
static int
serve(struct conn *cn)
{
	struct request *rqs[REQUESTS];
	ssize_t n, i;

	n = request_read_many(cn->ep.rd, rqs, REQUESTS, 0);
	if (n <= 0)
		return n < 0 && errno == EAGAIN;
	for (i = 0; i < n; i++) {
		struct reply *rp = malloc(sizeof *rp);

		if (rp != NULL) {
			rp->sum = rqs[i]->a + rqs[i]->b;
			if (reply_write(cn->ep.wr, rp, -1) < 0)
				free(rp);
		}
		free(rqs[i]);
		cn->served++;
	}
	return 1;
}

int
main(void)
{
	struct client clients[CLIENTS];
	struct conn conns[CLIENTS];
	struct pollfd pfds[2 + CLIENTS];
	polyserver *calc = polyserver_create();
	polyserver *admin = polyserver_create();
	int nconns = 0, closed = 0, refused = 0, served = 0, failures = 0;
	int i, n;

	printf("polysocket %s demonstration daemon\n", polysocket_version());
	if (calc == NULL || admin == NULL ||
	    polyserver_bind(calc, "calc") < 0 ||
	    polyserver_bind(admin, "admin") < 0) {
		perror("service");
		return 1;
	}
	pfds[0] = (struct pollfd){ .fd = polyserver_accept_fd(calc),
		                   .events = POLLIN };
	pfds[1] = (struct pollfd){ .fd = polyserver_accept_fd(admin),
		                   .events = POLLIN };
	if (pfds[0].fd < 0 || pfds[1].fd < 0) {
		perror("accept descriptor");
		return 1;
	}
	printf("service: \"calc\" and \"admin\" bound, main thread in "
	       "poll()\n");

	for (i = 0; i < CLIENTS; i++) {
		clients[i] = (struct client){
			.id = i + 1,
			.kind = i < SYNC_CLIENTS    ? SYNC
			        : i == SYNC_CLIENTS ? ASYNC
			                            : REFUSED,
		};
		if (pthread_create(&clients[i].thread, NULL, client_main,
		                   &clients[i]) != 0) {
			fprintf(stderr, "cannot start client threads\n");
			return 1;
		}
	}

	/* Until every accepted client has gone and the refused one has
	 * been turned away. */
	while (closed < CLIENTS - 1 || refused < 1) {
		if (poll(pfds, 2 + (nfds_t)nconns, 5000) <= 0) {
			fprintf(stderr, "service: nothing happened for 5 s\n");
			return 1;
		}
		if (pfds[0].revents & POLLIN) {
			struct conn *cn = &conns[nconns];

			if (polyserver_accept(calc, &cn->ep, 0) == 0) {
				cn->served = 0;
				pfds[2 + nconns] = (struct pollfd){
					.fd = polypipe_read_fd(cn->ep.rd),
					.events = POLLIN,
				};
				nconns++;
				printf("service: accepted connection %d\n",
				       nconns);
			}
		}
		if (pfds[1].revents & POLLIN) {
			n = polyserver_refuse(admin);
			refused += n;
			printf("service: \"admin\" refused %d attempt%s\n", n,
			       n == 1 ? "" : "s");
		}
		for (i = 0; i < nconns; i++) {
			if (pfds[2 + i].fd < 0 ||
			    !(pfds[2 + i].revents & POLLIN) ||
			    serve(&conns[i]))
				continue;
			printf("service: connection %d closed after %d "
			       "requests\n",
			       i + 1, conns[i].served);
			served += conns[i].served;
			polyendpoint_close(&conns[i].ep);
			pfds[2 + i].fd = -1; /* poll skips it */
			closed++;
		}
	}
	polyserver_close(calc);
	polyserver_close(admin);

	printf("clients:\n");
	for (i = 0; i < CLIENTS; i++) {
		struct client *c = &clients[i];
		int ok;

		pthread_join(c->thread, NULL);
		if (c->kind == REFUSED) {
			ok = c->error == ECONNREFUSED;
			printf("  client %d (polyclient_endpoint) knocked at "
			       "\"admin\": %s\n",
			       c->id, strerror(c->error));
		} else {
			ok = c->error == 0 && c->correct == REQUESTS;
			printf(
			    "  client %d (%s): %d of %d replies correct%s%s\n",
			    c->id,
			    c->kind == SYNC
			        ? "polyclient_endpoint, waited for the accept"
			        : "polyclient_endpoint_async, wrote before "
			          "the accept",
			    c->correct, REQUESTS, c->error ? ", error: " : "",
			    c->error ? strerror(c->error) : "");
		}
		failures += !ok;
	}
	printf("%s: %d connections, %d requests served, %d refused\n",
	       failures == 0 ? "ok" : "FAILED", nconns, served, refused);
	printf("The code of all this: examples/daemon.c\n");
	return failures == 0 ? 0 : 1;
}
